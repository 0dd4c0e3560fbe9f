"""A generated token's log probability and its most likely alternatives (per row).

Engine thread only.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from mlxchat.engine.types import RequestOptions, TokenLogprob

MAX_TOP = 20
"""The most alternatives a request may ask for (OpenAI's limit)."""


def token_logprob(
    tokenizer: Any, logprobs: mx.array | None, token: int | None, options: RequestOptions
) -> TokenLogprob | None:
    """`token`'s log probability in the row's distribution `logprobs` (after constraints
    and penalties), with `options.top_logprobs` alternatives; None when not asked."""
    if not options.logprobs or logprobs is None or token is None:
        return None
    row = logprobs.reshape(-1)
    top: tuple[tuple[str, float], ...] = ()
    k = min(max(options.top_logprobs, 0), MAX_TOP, row.size)
    if k:
        ids = mx.argpartition(-row, kth=k - 1)[:k]
        values = row[ids]
        order = mx.argsort(-values)
        top_ids: list[int] = ids[order].tolist()  # type: ignore[assignment]
        top_values: list[float] = values[order].tolist()  # type: ignore[assignment]
        top = tuple(
            (_text(tokenizer, i), _finite(v)) for i, v in zip(top_ids, top_values, strict=True)
        )
    return TokenLogprob(_text(tokenizer, token), _finite(row[token].item()), top)  # type: ignore[arg-type]


def _text(tokenizer: Any, token: int) -> str:
    return str(tokenizer.decode([token]))


def _finite(value: float) -> float:
    """JSON has no -inf: a token the constraint ruled out gets the lowest float instead."""
    return max(float(value), -9999.0)
