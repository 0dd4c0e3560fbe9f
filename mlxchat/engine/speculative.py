"""Prompt-lookup drafting: guess a row's next tokens from its own earlier text.

An answer that rewrites a passage, edits code or quotes names and numbers repeats spans of
its prompt. The last few tokens of the sequence (prompt + answer so far) are looked up in
the earlier text; the tokens that followed them there are the draft. The model verifies a
draft in one forward pass (`verify.py`) and keeps exactly the tokens it would have chosen.

`PromptLookup` adapts per request:
- the draft length `k` grows by 2 while whole drafts are accepted, shrinks by 1 otherwise
  (the schedule of Hugging Face's assisted generation);
- the shortest n-gram that may match grows while acceptance is low (fewer, surer drafts)
  and shrinks while it is high;
- after a run of rejected drafts the row stops drafting for a while (doubling each time),
  so open-ended prose decodes plainly and pays nothing measurable.

Pure Python, no MLX: unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

NGRAM_MAX = 4
"""The longest n-gram matched (longer matches are tried first)."""

NGRAM_MIN = 2
"""The shortest n-gram matched at first (adapts between 1 and `NGRAM_MAX`)."""

K_START = 4
"""Draft tokens at first."""

K_MAX = 12
"""The most draft tokens of one row in one step."""

MISSES_BEFORE_PAUSE = 3
"""Drafts in a row with nothing accepted before the row pauses drafting."""

PAUSE_START = 4
"""Steps of the first pause (doubles at each further run of misses, up to `PAUSE_MAX`)."""

PAUSE_MAX = 64


class Drafter(Protocol):
    """What `verify.py` asks of a row's drafter (`PromptLookup`, `draft_model.DraftModel`)."""

    tokens: list[int]
    drafted: int
    accepted: int

    def extend(self, tokens: Sequence[int]) -> None: ...

    def draft(self, pending: int | None, limit: int | None = None) -> list[int]: ...

    def record(self, drafted: int, accepted: int) -> None: ...


class DraftPace:
    """What every drafter adapts the same way: its draft length `k` (+2 after a draft kept
    whole, -1 otherwise), its counts, and a pause after a run of drafts with nothing kept
    (longer each time).

    Args:
        k_start: The draft length at first.
        k_max: The most tokens drafted at once.
    """

    def __init__(self, k_start: int, k_max: int) -> None:
        self.k_max = k_max
        self.k = min(k_start, k_max)
        self.drafted = 0
        self.accepted = 0
        self._misses = 0
        self._pause = 0
        self._pause_next = PAUSE_START

    @property
    def paused(self) -> bool:
        """Whether this row drafts nothing for now."""
        return self._pause > 0

    def _skip(self) -> bool:
        """Whether this step drafts nothing (a step of a pause is used up)."""
        if self._pause > 0:
            self._pause -= 1
            return True
        return False

    def record(self, drafted: int, accepted: int) -> None:
        """Adapt to one verified draft: `accepted` of its `drafted` tokens were kept."""
        if drafted <= 0:
            return
        self.drafted += drafted
        self.accepted += accepted
        if accepted == drafted:
            self.k = min(self.k + 2, self.k_max)
        else:
            self.k = max(self.k - 1, 1)
        if accepted:
            self._misses = 0
            self._pause_next = PAUSE_START
            return
        self._misses += 1
        if self._misses >= MISSES_BEFORE_PAUSE:
            self._misses = 0
            self._pause = self._pause_next
            self._pause_next = min(self._pause_next * 2, PAUSE_MAX)

    @property
    def rate(self) -> float:
        """The share of drafted tokens accepted so far (0 when none were drafted)."""
        return self.accepted / self.drafted if self.drafted else 0.0


class PromptLookup(DraftPace):
    """The drafter of one row: an index of its n-grams, its draft length and its counts.

    Args:
        k_max: The most tokens drafted at once.
    """

    def __init__(self, k_max: int = K_MAX) -> None:
        super().__init__(K_START, k_max)
        self.tokens: list[int] = []
        self.n_min = NGRAM_MIN
        # n-gram → where its latest earlier occurrence's continuation starts; an n-gram
        # enters once a token follows it, so the sequence's own suffix never matches itself
        self._index: dict[tuple[int, ...], int] = {}

    def extend(self, tokens: Sequence[int]) -> None:
        """Append tokens of the sequence (prompt, then the answer as it is accepted)."""
        for token in tokens:
            end = len(self.tokens)
            for n in range(1, NGRAM_MAX + 1):
                if end >= n:
                    self._index[tuple(self.tokens[end - n : end])] = end
            self.tokens.append(token)

    def draft(self, pending: int | None, limit: int | None = None) -> list[int]:
        """The tokens guessed to follow the sequence and `pending` (the token about to be
        fed; None when not known yet: then the guess of it is left out of the draft).

        Args:
            pending: The next token of the sequence, or None.
            limit: The most tokens wanted (None: the row's current `k`).
        """
        if self._skip():
            return []
        k = self.k if limit is None else min(self.k, limit)
        if k <= 0:
            return []
        tail = self.tokens if pending is None else [*self.tokens, pending]
        skip = 1 if pending is None else 0
        for n in range(min(NGRAM_MAX, len(tail)), self.n_min - 1, -1):
            start = self._index.get(tuple(tail[len(tail) - n :]))
            if start is None:
                continue
            guess = self.tokens[start + skip : start + skip + k]
            if guess:
                return guess
        return []

    def record(self, drafted: int, accepted: int) -> None:
        """Adapt to one verified draft (`DraftPace`), and the shortest n-gram matched: longer
        while few guesses are kept, shorter while most are."""
        super().record(drafted, accepted)
        if drafted <= 0:
            return
        rate = accepted / drafted
        if rate >= 0.6:
            self.n_min = max(self.n_min - 1, 1)
        elif rate < 0.3:
            self.n_min = min(self.n_min + 1, NGRAM_MAX)
