"""A KV cache that holds a known token prefix, shortened by trimming (`TrimmableCache`), and
the one kept across chat turns so each turn prefills only what is new (`CacheSession`).
The incremental translator's `CachedModel` is a `TrimmableCache` too."""

from __future__ import annotations

from typing import Any

from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

TAKE_OVER_SLACK = 64
"""Tokens at the end of a cached entry a prompt may leave and still take the entry over (a
chat's next turn differs from the cached answer by its end-of-turn tokens), and at most a
quarter of the entry (the prompt cache in RAM and on disk)."""


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class TrimmableCache:
    """A model's KV cache and the exact tokens it holds, shortened by trimming.

    Attributes:
        ids: The tokens whose keys/values are in the cache, in order.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.cache: list[Any] = make_prompt_cache(model)
        self.ids: list[int] = []

    def reset(self) -> None:
        """Forget everything (a fresh cache)."""
        self.cache = make_prompt_cache(self.model)
        self.ids = []

    def shorten(self, length: int) -> list[int] | None:
        """Keep only the first `length` tokens, trimming the rest off the cache.

        Returns:
            None when the cache holds them now; where it cannot be trimmed (e.g. a rotating
            cache past its window) it starts afresh and the tokens it lost are returned.
        """
        extra = len(self.ids) - length
        if extra <= 0:
            return None
        if can_trim_prompt_cache(self.cache):
            trim_prompt_cache(self.cache, extra)
            del self.ids[length:]
            return None
        lost = self.ids[:length]
        self.reset()
        return lost


class CacheSession(TrimmableCache):
    """A chat's cache across turns.

    `prepare(prompt)` keeps the longest prefix the cache shares with the new prompt and
    returns the tokens still to prefill; `record(tokens)` notes what generation fed into it.

    Attributes:
        reused: Prompt tokens the last `prepare` found in the cache (the server's
            `usage.prompt_tokens_details.cached_tokens`).
    """

    reused: int = 0

    def prepare(self, prompt: list[int]) -> list[int]:
        """Make the cache hold a prefix of `prompt`; return the tokens left to prefill."""
        keep = common_prefix(self.ids, prompt)
        if keep == len(prompt):
            keep -= 1  # the model must see at least one token to produce logits
        if self.shorten(keep) is not None:  # not trimmable: prefill it all
            keep = 0
        self.reused = keep
        return prompt[keep:]

    def record(self, fed: list[int]) -> None:
        """Note that `fed` tokens went into the cache; reconcile with the cache's offset."""
        self.ids.extend(fed)
        offset = self.offset
        if offset is None:
            return
        if offset > len(self.ids) and can_trim_prompt_cache(self.cache):
            trim_prompt_cache(self.cache, offset - len(self.ids))
        elif offset < len(self.ids):
            del self.ids[offset:]

    @property
    def offset(self) -> int | None:
        """Tokens the cache actually holds (None for caches that do not say)."""
        return getattr(self.cache[0], "offset", None) if self.cache else None
