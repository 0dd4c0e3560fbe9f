"""A model with a KV cache that holds a known token prefix, edited by trimming.

`CachedModel.sync(sequence)` makes the cache hold exactly `sequence`: it keeps the longest
common prefix (``trim_prompt_cache``), runs only the rest through the model and returns
the logits after the last token. Caches that cannot be trimmed (`can_trim_prompt_cache`
false, e.g. a rotating cache past its window) are rebuilt from scratch instead, and
`recompute` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlx.core as mx
from mlx_lm.generate import generation_stream
from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache

from mlxchat.engine import cpu
from mlxchat.engine.session import TrimmableCache, common_prefix

PREFILL_CHUNK = 512
"""Longest token run given to the model in one call."""

PAD_MULTIPLE = 16
"""On the CPU, model calls of `PAD_RANGE` tokens are padded to a multiple of this."""

PAD_RANGE = range(9, 32)


def cpu_padding() -> bool:
    """Whether short model calls are padded: on the CPU, where OpenBLAS runs a matrix
    product of 16 rows in about 70 % of the time of one of 12, and of 32 rows in the time
    of 20 (measured: SmolLM2-135M, OpenBLAS 0.3.21, 2 cores)."""
    return mx.default_device() == mx.cpu


def padding_for(length: int, cache: list[Any], enabled: bool) -> int:
    """Padding tokens for a model call of `length` tokens into `cache`.

    Appended after the real tokens (attention is causal: their results do not change) and
    trimmed off the cache after the call; 0 when off, not worth it, or the cache can't trim.
    """
    if not enabled or length not in PAD_RANGE or not can_trim_prompt_cache(cache):
        return 0
    return -length % PAD_MULTIPLE


def run_model(
    model: Any, tokens: list[int], cache: list[Any], *, pad: bool, need_logits: bool = True
) -> tuple[mx.array, int]:
    """Run `tokens` into `cache` in one call (padded when `padding_for` says so).

    Returns the logits after the last token, shape (1, V) (evaluated only with
    `need_logits`; else only the cache is computed: MLX is lazy, so the output projection,
    a large share of a short call, is never run) and the number of tokens computed.
    """
    padding = padding_for(len(tokens), cache, pad)
    cpu.prepare_model_call((generation_stream,))
    with mx.stream(generation_stream):
        out = model(mx.array(tokens + tokens[-1:] * padding)[None], cache=cache)
        logits = out[:, len(tokens) - 1, :]
    mx.eval(logits if need_logits else [c.state for c in cache])
    if padding:
        trim_prompt_cache(cache, padding)
    return logits, len(tokens) + padding


class Cancelled(Exception):
    """Raised by `CachedModel.feed` when `should_stop` returns True."""


class CachedModel(TrimmableCache):
    """A model plus a KV cache that holds a known token prefix, edited by trimming.

    Attributes:
        ids: The tokens whose keys/values are in the cache, in order.
        logits: The logits after the last token, when they were computed.
        tokens_computed: Tokens run through the model so far (padding included).
        calls: Model calls so far (each computes all the weights once, however few tokens).
        recompute: True once the cache had to be rebuilt because it could not be trimmed.
    """

    def __init__(
        self,
        model: Any,
        should_stop: Callable[[], bool] | None = None,
        *,
        pad: bool | None = None,
    ) -> None:
        super().__init__(model)
        self.should_stop = should_stop
        self.pad = cpu_padding() if pad is None else pad
        """Pad calls to a multiple of `PAD_MULTIPLE` tokens (causal: the real tokens'
        results do not change) and trim the padding off the cache afterwards."""
        self.logits: mx.array | None = None
        self.tokens_computed = 0
        self.calls = 0
        self.recompute = False

    def truncate(self, length: int) -> None:
        """Keep only the first `length` cached tokens (rebuild if the cache can't trim)."""
        if len(self.ids) <= length:
            return
        self.logits = None
        lost = self.shorten(length)
        if lost is not None:
            self.recompute = True
            if lost:
                self.feed(lost, need_logits=False)

    def feed(self, tokens: list[int], need_logits: bool = True) -> mx.array | None:
        """Run `tokens` through the model after the cached ones; return last logits (1, V).

        With `need_logits` False only the cache is computed (see `run_model`) and None is
        returned.
        """
        if not tokens:
            raise ValueError("feed needs at least one token")
        logits = None
        for start in range(0, len(tokens), PREFILL_CHUNK):
            if self.should_stop is not None and self.should_stop():
                raise Cancelled
            chunk = tokens[start : start + PREFILL_CHUNK]
            last = start + PREFILL_CHUNK >= len(tokens)
            logits, computed = run_model(
                self.model, chunk, self.cache, pad=self.pad, need_logits=last and need_logits
            )
            self.ids.extend(chunk)
            self.tokens_computed += computed
            self.calls += 1
        self.logits = logits if need_logits else None
        return self.logits

    def sync(self, sequence: list[int], need_logits: bool = True) -> mx.array | None:
        """Make the cache hold exactly `sequence`; return the logits after its last token."""
        common = common_prefix(self.ids, sequence)
        if common == len(sequence):
            have_logits = self.logits is not None or not need_logits
            if common == len(self.ids) and have_logits:
                return self.logits
            if need_logits:
                common -= 1  # logits at the end are needed: recompute the last token
        self.truncate(common)
        start = len(self.ids)
        if start < len(sequence):
            return self.feed(sequence[start:], need_logits)
        return self.logits
