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
from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

from mlxchat.engine.session import common_prefix

PREFILL_CHUNK = 512
"""Longest token run given to the model in one call."""


class Cancelled(Exception):
    """Raised by `CachedModel.feed` when `should_stop` returns True."""


class CachedModel:
    """A model plus a KV cache that holds a known token prefix, edited by trimming.

    Attributes:
        ids: The tokens whose keys/values are in the cache, in order.
        tokens_computed: Tokens run through the model so far.
        calls: Model calls so far (each computes all the weights once, however few tokens).
        recompute: True once the cache had to be rebuilt because it could not be trimmed.
    """

    def __init__(self, model: Any, should_stop: Callable[[], bool] | None = None) -> None:
        self.model = model
        self.should_stop = should_stop
        self.cache = make_prompt_cache(model)
        self.ids: list[int] = []
        self.logits: mx.array | None = None
        self.tokens_computed = 0
        self.calls = 0
        self.recompute = False

    def truncate(self, length: int) -> None:
        """Keep only the first `length` cached tokens (rebuild if the cache can't trim)."""
        extra = len(self.ids) - length
        if extra <= 0:
            return
        self.logits = None
        if can_trim_prompt_cache(self.cache):
            trim_prompt_cache(self.cache, extra)
            del self.ids[length:]
            return
        self.recompute = True
        keep = self.ids[:length]
        self.cache = make_prompt_cache(self.model)
        self.ids = []
        if keep:
            self.feed(keep, need_logits=False)

    def feed(self, tokens: list[int], need_logits: bool = True) -> mx.array | None:
        """Run `tokens` through the model after the cached ones; return last logits (1, V).

        With `need_logits` False only the cache is computed (MLX is lazy: the output
        projection, a large share of a short call, is never run) and None is returned.
        """
        if not tokens:
            raise ValueError("feed needs at least one token")
        logits = None
        for start in range(0, len(tokens), PREFILL_CHUNK):
            if self.should_stop is not None and self.should_stop():
                raise Cancelled
            chunk = tokens[start : start + PREFILL_CHUNK]
            last = start + PREFILL_CHUNK >= len(tokens)
            with mx.stream(generation_stream):
                out = self.model(mx.array(chunk)[None], cache=self.cache)
                logits = out[:, -1, :]
            if last and need_logits:
                mx.eval(logits)
            else:
                mx.eval([c.state for c in self.cache])
            self.ids.extend(chunk)
            self.tokens_computed += len(chunk)
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
