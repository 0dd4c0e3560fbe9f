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
