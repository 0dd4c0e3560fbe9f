"""Draft-model drafting: a small model of the same family guesses a row's next tokens.

`DraftModel` has `PromptLookup`'s interface (`extend`, `draft`, `record`, `rate`, the
counts), so `verify.py` verifies its drafts the same way. Each row keeps its own single-row
KV cache of the draft model. The cache is fed lazily: `draft` first cuts it back to the
longest prefix it shares with the row's accepted tokens + the pending token (a rejected
draft's tail goes), feeds what is missing, then writes up to k greedy tokens. So after any
step the cache holds exactly tokens that precede the next pending one; a mistake in this
bookkeeping would cost acceptance, never correctness (the main model verifies every token).
A long prompt is fed `CATCH_UP` tokens per step, the row drafting nothing meanwhile. After
a run of drafts with nothing kept the row pauses drafting, as prompt lookup does.

`check_pair` refuses a draft model whose tokenizer differs from the main model's: one line.

Engine thread only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mlx.core as mx
from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

from mlxchat.engine.speculative import DraftPace
from mlxchat.engine.types import ModelLoadError

K_START = 3
"""Draft tokens at first."""

K_MAX = 8
"""The most draft tokens of one row in one step."""

CATCH_UP = 512
"""The most tokens of the sequence fed to the draft model in one step while it catches up
with a long prompt (the row drafts nothing until it has): the other rows of the batch wait
for at most one such chunk."""


class DraftModel(DraftPace):
    """The draft-model drafter of one row.

    Args:
        model: The draft model (shared by every row; only the cache is the row's).
        k_max: The most tokens drafted at once.
    """

    def __init__(self, model: Any, k_max: int = K_MAX) -> None:
        super().__init__(K_START, k_max)
        self.model = model
        self.cache: list[Any] = make_prompt_cache(model)
        self.tokens: list[int] = []
        self._fed: list[int] = []  # the tokens in `cache`, in order
        self._valid = 0  # `_fed[:_valid]` is known to agree with the sequence

    @property
    def needs_pending(self) -> bool:
        """Whether `draft` will use the pending token (the batch then reads it when it is not
        known, a sync): not while paused or catching up with a long prompt."""
        return not self.paused and len(self.tokens) + 1 - len(self._fed) <= CATCH_UP

    def extend(self, tokens: Sequence[int]) -> None:
        """Append tokens of the sequence (prompt, then the answer as it is accepted)."""
        self.tokens.extend(tokens)

    def draft(self, pending: int | None, limit: int | None = None) -> list[int]:
        """Up to k greedy tokens of the draft model after the sequence and `pending`.

        Args:
            pending: The next token of the sequence (None: not known; only a long prompt's
                next chunk is fed).
            limit: The most tokens wanted (None: the row's current `k`).
        """
        if self._skip():
            return []
        k = self.k if limit is None else min(self.k, limit)
        if k <= 0:
            return []
        sequence = self.tokens if pending is None else [*self.tokens, pending]
        self._rewind(sequence)
        if len(sequence) - len(self._fed) > CATCH_UP:  # a long prompt: one chunk per step
            self._feed(sequence[len(self._fed) : len(self._fed) + CATCH_UP])
            return []
        if pending is None:
            return []
        logits = self._feed(sequence[len(self._fed) :])
        guess: list[int] = []
        while True:
            token: int = mx.argmax(logits[0, -1]).item()  # type: ignore[assignment]
            guess.append(token)
            if len(guess) == k:
                return guess
            logits = self._feed([token])

    def _rewind(self, sequence: list[int]) -> None:
        """Cut the cache back to the longest prefix it shares with `sequence`."""
        common = self._valid
        end = min(len(self._fed), len(sequence) - 1)  # the pending token is always fed
        while common < end and self._fed[common] == sequence[common]:
            common += 1
        if common < len(self._fed):
            trim_prompt_cache(self.cache, len(self._fed) - common)
            del self._fed[common:]
        self._valid = common

    def _feed(self, tokens: list[int]) -> mx.array:
        """Run the draft model over `tokens`; their logits."""
        logits = self.model(mx.array([tokens]), cache=self.cache)
        mx.eval(logits)
        self._fed.extend(tokens)
        return logits


def check_pair(
    main: str, main_tokenizer: Any, draft: str, draft_tokenizer: Any, draft_model: Any = None
) -> None:
    """Refuse a draft model whose tokenizer is not the main model's, or whose cache cannot
    be rewound (recurrent layers).

    Raises:
        ModelLoadError: One line naming both models and how their vocabularies differ.
    """
    if draft_model is not None and not can_trim_prompt_cache(make_prompt_cache(draft_model)):
        raise ModelLoadError(
            f"draft model '{draft}' cannot draft: its cache cannot be rewound; pick a "
            "transformer model of the same family"
        )
    mine, theirs = main_tokenizer.get_vocab(), draft_tokenizer.get_vocab()
    differs = mine != theirs
    if not differs:
        differs = set(main_tokenizer.eos_token_ids) != set(draft_tokenizer.eos_token_ids)
    if differs:
        raise ModelLoadError(
            f"draft model '{draft}' does not share the tokenizer of '{main}' "
            f"(vocabulary {len(theirs)} vs {len(mine)}); pick a draft model of the same family"
        )
