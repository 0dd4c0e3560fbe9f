"""Source segmentation: whitespace words, and sentences translated as separate segments.

A word is a maximal run of non-whitespace characters (``str.split()``), punctuation
included, which is what SimulEval counts for text input. A sentence ends at a word whose
last character (ignoring closing quotes and brackets) is ``.``, ``!``, ``?``, ``…`` or
their full-width forms, unless the word is a common abbreviation; a line break also ends
one. `arrivals` gives the words of a known source in order, paced at so many words a minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

SENTENCE_END = frozenset(".!?…。！？")
CLOSERS = "\"'”’»)]}"
ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "e.g.", "i.e.", "etc.", "vs.", "cf.", "no."}
)


def split_words(text: str) -> list[str]:
    """Whitespace-separated words, in order (no empty strings)."""
    return text.split()


def ends_sentence(word: str) -> bool:
    """Whether `word` closes a sentence (``"Paris."`` yes, ``"Dr."`` and ``"3.5"`` no)."""
    if word.lower() in ABBREVIATIONS:
        return False
    stripped = word.rstrip(CLOSERS)
    return bool(stripped) and stripped[-1] in SENTENCE_END


def split_sentences(text: str) -> list[list[str]]:
    """Split `text` into sentences, each a non-empty list of words.

    Line breaks always end a sentence; within a line, a word for which `ends_sentence`
    holds does.
    """
    sentences: list[list[str]] = []
    for line in text.splitlines():
        current: list[str] = []
        for word in split_words(line):
            current.append(word)
            if ends_sentence(word):
                sentences.append(current)
                current = []
        if current:
            sentences.append(current)
    return sentences


@dataclass(frozen=True)
class Arrival:
    """One source word of a known text, as it is fed to a translation.

    Attributes:
        sentence: Its sentence's number (0-based).
        index: Its place in the sentence (0-based).
        word: The word.
        last: Whether it ends the sentence.
        due: When it arrives (`time.perf_counter()` clock), or None when not paced.
    """

    sentence: int
    index: int
    word: str
    last: bool
    due: float | None


def arrivals(sentences: Sequence[Sequence[str]], wpm: float | None = None) -> Iterator[Arrival]:
    """The words of `sentences` in order; with `wpm`, one due every 60/`wpm` seconds from the
    first (which is due when the iteration starts). Waiting until `due` is the caller's."""
    gap = 60.0 / wpm if wpm else 0.0
    start = time.perf_counter()
    count = 0
    for number, words in enumerate(sentences):
        for index, word in enumerate(words):
            due = start + count * gap if gap else None
            count += 1
            yield Arrival(number, index, word, index == len(words) - 1, due)
