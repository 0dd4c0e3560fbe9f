"""Turn `SamplingParams` into mlx-lm samplers and logits processors."""

from __future__ import annotations

from typing import Any

import mlx.core as mx
from mlx_lm.sample_utils import make_logits_processors, make_sampler

from mlxchat.engine.types import SamplingParams


def build_sampler(params: SamplingParams) -> Any:
    """An mlx-lm sampler for `params` (greedy when `temp` is 0); seeds MLX if asked."""
    if params.seed is not None:
        mx.random.seed(params.seed)
    return make_sampler(
        temp=params.temp,
        top_p=params.top_p if 0.0 < params.top_p < 1.0 else 0.0,
        min_p=params.min_p,
        top_k=params.top_k,
    )


def build_logits_processors(params: SamplingParams) -> list[Any]:
    """mlx-lm logits processors for the repetition penalty (empty when it is off)."""
    if params.repetition_penalty in (None, 1.0):
        return []
    return make_logits_processors(
        repetition_penalty=params.repetition_penalty,
        repetition_context_size=params.repetition_context_size,
    )


def validate(params: SamplingParams) -> None:
    """Raise `ValueError` with a one-line reason when a setting is out of range."""
    if params.max_tokens < 1:
        raise ValueError(f"max-tokens must be at least 1 (got {params.max_tokens})")
    if params.temp < 0:
        raise ValueError(f"temp must be 0 or more (got {params.temp})")
    if not 0.0 <= params.top_p <= 1.0:
        raise ValueError(f"top-p must be between 0 and 1 (got {params.top_p})")
    if not 0.0 <= params.min_p <= 1.0:
        raise ValueError(f"min-p must be between 0 and 1 (got {params.min_p})")
    if params.top_k < 0:
        raise ValueError(f"top-k must be 0 (off) or more (got {params.top_k})")
    if params.repetition_penalty is not None and params.repetition_penalty <= 0:
        raise ValueError(f"repetition-penalty must be positive (got {params.repetition_penalty})")
