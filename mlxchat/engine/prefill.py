"""Prompts prefilled a chunk per batch step, shortest first, in chunks that keep a step short.

Why not mlx-lm's prompt batch: `BatchGenerator` prefills every joining prompt together, as
one padded batch. A short prompt that joins while a long one is prefilled is padded to the
long one's chunk and its cache to the long one's length: each of its steps costs a long
chunk, its own tokens pay attention over the long prompt's keys, and splitting it off to
decode deep-copies the whole prompt batch's cache. Measured on the demo (2-core CPU): with
a 4,200-word document prefilling, a short request sent 5 s later got its first token after
14.3 s; behind a context-filling prompt, 41-120 s (0.8 s alone).

Here each prompt is prefilled on its own cache (a batch of one, no padding), and a step
does a budget of prompt tokens (`budget`, the prefill step size) over the prompts waiting,
shortest first: a short prompt is prefilled in the step after it arrives, and decodes
from the next, between two chunks of the long one. The chunk size adapts as the prompt
grows: attention makes a token at position 8k several times dearer than at 0, so a chunk
is cut to what a full-budget chunk costs at the start of a prompt (measured, per model),
and no step holds the other rows for longer than one such chunk.

Engine thread only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
from mlx_lm.generate import generation_stream

MIN_CHUNK = 16
"""The smallest chunk a prompt is cut to (smaller ones waste the matrix products)."""

QUICK_CHUNK = 0.05
"""Seconds under which a full-budget chunk is never cut (it holds nobody up)."""


@dataclass
class Prefill:
    """One prompt being prefilled into its own cache.

    Attributes:
        cache: The row's KV cache (a list of per-layer caches, batch of one).
        tokens: The tokens to put in it (the prompt's last token is left for decoding).
        done: How many are in it so far.
        seconds_per_token: The last chunk's cost per token (None: none ran yet).
    """

    cache: list[Any]
    tokens: list[int]
    done: int = 0
    seconds_per_token: float | None = None

    @property
    def left(self) -> int:
        """Tokens still to prefill."""
        return len(self.tokens) - self.done


class Prefiller:
    """Plans and runs each step's prefill chunks.

    Args:
        model: The model.
        budget: Prompt tokens per step (all prompts together), the largest chunk.
    """

    def __init__(self, model: Any, budget: int) -> None:
        self.model = model
        self.budget = max(budget, 1)
        self.cheapest: float | None = None
        """The lowest cost per token seen in a chunk of at least half the budget."""

    def chunk(self, prefill: Prefill) -> int:
        """The chunk size for `prefill` now: the budget, cut so that the chunk costs what
        a full-budget chunk costs at the start of a prompt."""
        size = self.budget
        cost = prefill.seconds_per_token
        if self.cheapest is not None and cost and cost * self.budget > QUICK_CHUNK:
            target = max(self.cheapest * self.budget, QUICK_CHUNK)
            size = int(target / cost)
            size = max(min(size, self.budget), min(MIN_CHUNK, self.budget))
        return min(size, prefill.left)

    def plan(self, waiting: list[Prefill]) -> list[tuple[Prefill, int]]:
        """This step's chunks: shortest prompt first, until the budget is spent (the first
        prompt always gets a chunk)."""
        plan: list[tuple[Prefill, int]] = []
        left = self.budget
        for prefill in sorted((p for p in waiting if p.left > 0), key=lambda p: p.left):
            size = min(self.chunk(prefill), left)
            if size <= 0 or (plan and size < min(MIN_CHUNK, prefill.left)):
                break
            plan.append((prefill, size))
            left -= size
        return plan

    def run(self, prefill: Prefill, size: int) -> None:
        """Put the next `size` tokens of `prefill` in its cache."""
        start = time.perf_counter()
        chunk = mx.array(prefill.tokens[prefill.done : prefill.done + size])[None]
        with mx.stream(generation_stream):
            self.model(chunk, cache=prefill.cache)
            mx.eval([c.state for c in prefill.cache])
        mx.clear_cache()
        seconds = time.perf_counter() - start
        prefill.done += size
        prefill.seconds_per_token = seconds / size
        if 2 * size >= self.budget and (
            self.cheapest is None or prefill.seconds_per_token < self.cheapest
        ):
            self.cheapest = prefill.seconds_per_token
