"""Source segmentation: whitespace words, and sentences translated as separate segments.

A word is a maximal run of non-whitespace characters (``str.split()``), punctuation
included, which is what SimulEval counts for text input. A sentence ends at a word whose
last character (ignoring closing quotes and brackets) is ``.``, ``!``, ``?``, ``…`` or
their full-width forms, unless the word is a common abbreviation; a line break also ends
one.
"""

from __future__ import annotations

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
