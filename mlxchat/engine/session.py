"""A prompt cache kept across chat turns, so each turn prefills only what is new."""

from __future__ import annotations

from typing import Any

from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class CacheSession:
    """A model's KV cache and the exact tokens it holds.

    `prepare(prompt)` keeps the longest prefix the cache shares with the new prompt (trimming
    the rest when the cache is trimmable, recomputing from scratch otherwise) and returns the
    tokens still to prefill; `record(tokens)` notes what generation fed into the cache.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.cache: list[Any] = make_prompt_cache(model)
        self.tokens: list[int] = []

    def reset(self) -> None:
        """Forget everything (a fresh cache)."""
        self.cache = make_prompt_cache(self.model)
        self.tokens = []

    def prepare(self, prompt: list[int]) -> list[int]:
        """Make the cache hold a prefix of `prompt`; return the tokens left to prefill."""
        keep = common_prefix(self.tokens, prompt)
        if keep == len(prompt):
            keep -= 1  # the model must see at least one token to produce logits
        if keep < len(self.tokens):
            if can_trim_prompt_cache(self.cache):
                trim_prompt_cache(self.cache, len(self.tokens) - keep)
                self.tokens = self.tokens[:keep]
            else:
                self.reset()
                keep = 0
        return prompt[keep:]

    def record(self, fed: list[int]) -> None:
        """Note that `fed` tokens went into the cache; reconcile with the cache's offset."""
        self.tokens.extend(fed)
        offset = self.offset
        if offset is None:
            return
        if offset > len(self.tokens) and can_trim_prompt_cache(self.cache):
            trim_prompt_cache(self.cache, offset - len(self.tokens))
        elif offset < len(self.tokens):
            del self.tokens[offset:]

    @property
    def offset(self) -> int | None:
        """Tokens the cache actually holds (None for caches that do not say)."""
        return getattr(self.cache[0], "offset", None) if self.cache else None
