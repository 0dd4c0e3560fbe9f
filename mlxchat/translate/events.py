"""Events streamed by the simultaneous translators (plain dataclasses, no MLX, no UI).

Every event carries the common state (`TranslationEvent`), so a consumer that only wants
the text can concatenate ``event.text`` over the whole stream, and a side panel can show
words read/written, the lag and the delays from whichever event arrived last.

Order within one segment: `SourceRead` for each source word, interleaved with
`TranslationChunk` (one per committed target token) and `TargetWord` (when a target word
is complete), then one `SegmentDone`. `Notice` may appear anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlxchat.engine.types import FinishReason, Stats


@dataclass(kw_only=True)
class TranslationEvent:
    """State shared by all translation events.

    Attributes:
        segment: Index of the sentence (segment) being translated, from 0.
        text: Target text to append to the display (may be empty).
        word_complete: True when this event closes a target word.
        source_words_read: Source words read in this segment.
        target_words_generated: Target words completed in this segment.
        delays: Source words read when each completed target word was written.
        tokens_computed: Tokens run through the model since the translator started.
        stats: Running generation numbers (prompt/generation tokens and speeds, ttft, memory).
    """

    segment: int = 0
    text: str = ""
    word_complete: bool = False
    source_words_read: int = 0
    target_words_generated: int = 0
    delays: tuple[int, ...] = ()
    tokens_computed: int = 0
    stats: Stats = field(default_factory=Stats)

    @property
    def lag(self) -> int:
        """Current lag in words: source words read minus target words written."""
        return self.source_words_read - self.target_words_generated


@dataclass(kw_only=True)
class SourceRead(TranslationEvent):
    """A source word was read (it is part of the prompt from the next model call on)."""

    word: str = ""


@dataclass(kw_only=True)
class TranslationChunk(TranslationEvent):
    """A target token was committed; `text` is the newly displayable text."""

    token: int = -1


@dataclass(kw_only=True)
class TargetWord(TranslationEvent):
    """A target word is complete (``word_complete`` is True).

    Attributes:
        word: The word, stripped of surrounding whitespace.
        delay: Source words read when it was written (its entry in `delays`).
        metrics: Live AL/LAAL/AP/DAL, with |X| = source words read so far.
        cut: The word was cut at `max_tokens_per_word` tokens (runaway output); it is the
            segment's last word.
    """

    word: str = ""
    delay: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    word_complete: bool = True
    cut: bool = False


@dataclass(kw_only=True)
class SegmentDone(TranslationEvent):
    """A segment (sentence) is finished; carries its final translation and metrics.

    Attributes:
        source: The source words joined by single spaces.
        translation: The whole target text of the segment (the concatenated `text`).
        source_words: The source words.
        target_words: The completed target words.
        target_tokens: Every committed target token id, in order.
        alignment: (target word, source words read when it was written) per target word.
        metrics: AL/LAAL/AP/DAL with the true |X| (``nan`` if nothing was written).
        finish_reason: "stop" (end of answer), "length" (a cap), "cancelled" or "error".
        time_to_first_word: Seconds from the first source word to the first target word.
        mean_word_wait: Mean seconds from reading the source word a target word waited
            for to showing that word.
        recompute: True if the cache could not be trimmed and prompts were recomputed.
    """

    source: str = ""
    translation: str = ""
    source_words: tuple[str, ...] = ()
    target_words: tuple[str, ...] = ()
    target_tokens: tuple[int, ...] = ()
    alignment: tuple[tuple[str, int], ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    finish_reason: FinishReason = "stop"
    time_to_first_word: float = float("nan")
    mean_word_wait: float = float("nan")
    recompute: bool = False


@dataclass(kw_only=True)
class Notice(TranslationEvent):
    """Something the user should know, e.g. the fallback to full recomputation."""

    message: str = ""
