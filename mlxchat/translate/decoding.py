"""Pieces shared by the incremental translator and the naive oracle.

Token choice (sampling with EOS masking), the target word-boundary rule and
append-only text streaming. Keeping them in one place guarantees both implementations use
the same policy, the same tokens and the same word rule; they differ only in how they
compute logits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import mlx.core as mx
from mlx_lm.sample_utils import make_logits_processors, make_sampler

from mlxchat.engine.types import Stats
from mlxchat.translate.settings import WaitKSettings


class TokenChooser:
    """Turns last-position logits into the next token, as mlx-lm's `generate_step` does.

    Logits processors (repetition penalty) see the whole token sequence so far; EOS ids are
    masked out while the answer may not end; then the sampler picks from log-probs (argmax
    when temp is 0). With `stop_at_newline`, a line-break token is an end token too: where
    an end is not allowed it is masked and the choice made again.
    """

    MAX_RESAMPLES = 16

    def __init__(self, settings: WaitKSettings, tokenizer: Any) -> None:
        sampling = settings.sampling
        self.sampler = make_sampler(sampling.temp, sampling.top_p, sampling.min_p)
        self.processors = make_logits_processors(
            repetition_penalty=sampling.repetition_penalty,
            repetition_context_size=sampling.repetition_context_size,
        )
        self.tokenizer = tokenizer
        self.eos_ids = sorted(eos_token_ids(tokenizer))
        self.stop_at_newline = settings.stop_at_newline
        self._mask: mx.array | None = None
        self._line_breaks: dict[int, bool] = {}

    def _eos_mask(self, vocab_size: int) -> mx.array:
        if self._mask is None or self._mask.shape[-1] != vocab_size:
            mask = [0.0] * vocab_size
            for i in self.eos_ids:
                if 0 <= i < vocab_size:
                    mask[i] = -float("inf")
            self._mask = mx.array(mask)
        return self._mask

    def is_line_break(self, token: int) -> bool:
        """Whether the token's text contains a line break."""
        if token not in self._line_breaks:
            self._line_breaks[token] = "\n" in self.tokenizer.decode([token])
        return self._line_breaks[token]

    def ends(self, token: int, allow_end: bool) -> bool:
        """Whether `token` (returned by `choose` with the same `allow_end`) ends the answer."""
        if token in self.eos_ids:
            return True
        return allow_end and self.stop_at_newline and self.is_line_break(token)

    def choose(
        self, logits: mx.array, context: Sequence[int], allow_end: bool, has_text: bool = True
    ) -> int:
        """Pick the next token from `logits` of shape (1, vocab).

        Args:
            logits: Last-position logits.
            context: Every token id of the sequence so far (for the repetition penalty).
            allow_end: The answer may end here (the source is finished).
            has_text: The target already has visible text (else a line break may not end it).
        """
        if self.processors:
            tokens = mx.array(list(context))
            for processor in self.processors:
                logits = processor(tokens, logits)
        if not allow_end and self.eos_ids:
            logits = logits + self._eos_mask(logits.shape[-1])
        token = self._sample(logits)
        if not self.stop_at_newline or (allow_end and has_text):
            return token
        for _ in range(self.MAX_RESAMPLES):
            if not self.is_line_break(token):
                break
            logits = mx.where(mx.arange(logits.shape[-1]) == token, -float("inf"), logits)
            token = self._sample(logits)
        return token

    def _sample(self, logits: mx.array) -> int:
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        return int(self.sampler(logprobs).item())


def eos_token_ids(tokenizer: Any) -> set[int]:
    """The tokenizer's end-of-sequence ids (mlx-lm wrapper's set, or the HF eos id)."""
    ids = getattr(tokenizer, "eos_token_ids", None)
    if ids:
        return {int(i) for i in ids}
    eos = getattr(tokenizer, "eos_token_id", None)
    return set() if eos is None else {int(eos)}


def is_unspaced_char(ch: str) -> bool:
    """Whether `ch` belongs to a script written without spaces (CJK ideographs, kana, CJK
    and full-width punctuation), where each character counts as a word."""
    cp = ord(ch)
    return (
        0x3000 <= cp <= 0x9FFF
        or 0xF900 <= cp <= 0xFAFF
        or 0xFF00 <= cp <= 0xFFEF
        or (0x20000 <= cp <= 0x3FFFF)
    )


def starts_new_word(tokenizer: Any, word_ids: Sequence[int], candidate: int) -> bool:
    """Whether `candidate` begins a new target word after the tokens `word_ids`.

    True when the current word already has visible text and either the candidate's text
    starts with whitespace or the word's text ends with whitespace (tokens such as ``".\\n"``).
    Leading whitespace-only tokens stay with the word they precede. For scripts written
    without spaces (`is_unspaced_char`) every character is a unit: a boundary falls before
    and after each such character (a token holding several stays one unit).
    """
    if not word_ids:
        return False
    word_text = tokenizer.decode(list(word_ids))
    if not word_text.strip():
        return False
    last = word_text[-1]
    if last.isspace() or is_unspaced_char(last):
        return True
    delta = tokenizer.decode([*word_ids, candidate])[len(word_text) :]
    return bool(delta) and (delta[0].isspace() or is_unspaced_char(delta[0]))


class TextStream:
    """Append-only display text for a growing token list.

    Text is released only when decoding the tokens so far extends what was already shown
    and does not end in an incomplete UTF-8 sequence, so nothing shown is ever rewritten.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.tokens: list[int] = []
        self.shown = ""

    def add(self, token: int) -> str:
        """Append a token; return the newly displayable text (possibly empty)."""
        self.tokens.append(token)
        return self._release(final=False)

    def flush(self) -> str:
        """Release whatever can still be shown at the end of the segment."""
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        text = self.tokenizer.decode(self.tokens)
        if (not final and text.endswith("\ufffd")) or not text.startswith(self.shown):
            return ""
        delta = text[len(self.shown) :]
        self.shown = text
        return delta


class StatsClock:
    """Accumulates prompt/decode timings into a `Stats` and snapshots it for events."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self.now = now
        self.started = now()
        self.writable: float | None = None
        """When the policy first allowed a WRITE (the k-th word read): the time to the
        first target token counts from there, not from the session's start (a typist's
        pauses before the k-th word are not the model's)."""
        self.stats = Stats()
        self.prompt_time = 0.0
        self.decode_time = 0.0

    def add_prompt(self, tokens: int, seconds: float) -> None:
        """Count `tokens` prefilled (source words, tail + target re-appends) in `seconds`."""
        self.stats.prompt_tokens += tokens
        self.prompt_time += seconds
        if self.prompt_time > 0:
            self.stats.prompt_tps = self.stats.prompt_tokens / self.prompt_time

    def add_decode(self, seconds: float) -> None:
        """Count time spent decoding target tokens (forward passes and sampling)."""
        self.decode_time += seconds

    def may_write(self) -> None:
        """The policy allows a WRITE now (noted once)."""
        if self.writable is None:
            self.writable = self.now()

    def add_generated(self, context_tokens: int) -> None:
        """Count one committed target token."""
        if self.stats.generation_tokens == 0:
            self.stats.ttft = self.now() - (self.writable or self.started)
        self.stats.generation_tokens += 1
        if self.decode_time > 0:
            self.stats.generation_tps = self.stats.generation_tokens / self.decode_time
        self.stats.context_tokens = context_tokens

    def snapshot(self, context_tokens: int | None = None) -> Stats:
        """A copy of the current stats with memory numbers filled in."""
        if context_tokens is not None:
            self.stats.context_tokens = context_tokens
        self.stats.peak_memory = mx.get_peak_memory() / 1e9
        self.stats.active_memory = mx.get_active_memory() / 1e9
        return Stats(**vars(self.stats))
