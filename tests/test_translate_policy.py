"""Wait-k schedule and decisions, source segmentation, and the prompt's token layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlxchat.translate.policy import (
    Action,
    next_action,
    obeys_wait_k,
    source_finished,
    wait_k_delays,
    wait_k_schedule,
)
from mlxchat.translate.prompt import PLACEHOLDER, build_layout, default_messages
from mlxchat.translate.segment import arrivals, ends_sentence, split_sentences, split_words


def test_schedule_is_min_of_k_plus_t_minus_one_and_source_length() -> None:
    assert [wait_k_schedule(t, 3, 5) for t in range(1, 7)] == [3, 4, 5, 5, 5, 5]
    assert [wait_k_schedule(t, 1, None) for t in range(1, 4)] == [1, 2, 3]
    assert wait_k_schedule(1, 10, 4) == 4
    with pytest.raises(ValueError):
        wait_k_schedule(1, 0, 4)
    with pytest.raises(ValueError):
        wait_k_schedule(0, 2, 4)


def test_next_action_reads_until_k_then_alternates() -> None:
    k, n = 2, 4
    read = written = 0
    trace = []
    while written < 6:
        action = next_action(k, read, written, n)
        trace.append(action.value[0])
        if action is Action.READ:
            read += 1
        else:
            written += 1
    assert "".join(trace) == "rrwrwrwwww"
    assert read == n


def test_next_action_with_unknown_length_never_writes_past_k_lag() -> None:
    # Source still arriving: after 3 words with k = 3 only one target word may be written.
    assert next_action(3, 3, 0, None) is Action.WRITE
    assert next_action(3, 3, 1, None) is Action.READ
    # Once finished (|x| = 3), everything left is written.
    assert next_action(3, 3, 1, 3) is Action.WRITE
    assert next_action(3, 3, 7, 3) is Action.WRITE


def test_source_finished() -> None:
    assert not source_finished(3, None)
    assert not source_finished(2, 3)
    assert source_finished(3, 3)


def test_obeys_wait_k() -> None:
    assert obeys_wait_k(wait_k_delays(3, 5, 7), 3, 5)
    assert not obeys_wait_k([3, 3, 5], 3, 5)
    assert obeys_wait_k([], 3, 5)


def test_split_words_is_whitespace_only() -> None:
    assert split_words("  Hello,\tworld!\n  ok ") == ["Hello,", "world!", "ok"]
    assert split_words("   ") == []


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Paris.", True),
        ("really?!", True),
        ('"Stop!"', True),
        ("(done.)", True),
        ("Dr.", False),
        ("e.g.", False),
        ("3.5", False),
        ("word", False),
        ("终。", True),
    ],
)
def test_ends_sentence(word: str, expected: bool) -> None:
    assert ends_sentence(word) is expected


def test_split_sentences() -> None:
    text = "Hello there. Dr. Smith is here!\nNo punctuation line\n\nLast one? yes"
    assert split_sentences(text) == [
        ["Hello", "there."],
        ["Dr.", "Smith", "is", "here!"],
        ["No", "punctuation", "line"],
        ["Last", "one?"],
        ["yes"],
    ]
    assert split_sentences("  \n ") == []


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> object:
    from mlx_lm.tokenizer_utils import load
    from tiny_models import write_tokenizer

    path: Path = tmp_path_factory.mktemp("tok")
    write_tokenizer(path)
    return load(path)


def test_layout_concatenation_equals_full_render(tiny_tokenizer: object) -> None:
    layout = build_layout(tiny_tokenizer, "English", "French")
    words = ["The", "quick", "brown", "fox,", "what", "is", "it?", "100", "cats."]
    assert layout.head_text.endswith("English:")
    assert layout.tail_text.startswith("<|im_end|>")
    assert layout.tail_text.endswith("<|im_start|>assistant\n")
    assert layout.matches_full_render(words)
    # The piecewise ids are also what the chat template itself tokenizes to.
    messages = default_messages("English", "French")
    messages[-1]["content"] = messages[-1]["content"].replace(PLACEHOLDER, " " + " ".join(words))
    templated = tiny_tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    assert layout.ids([layout.encode_word(w) for w in words]) == list(templated)


def test_layout_word_ids_decode_with_leading_space(tiny_tokenizer: object) -> None:
    layout = build_layout(tiny_tokenizer, "German", "Italian")
    assert "German" in layout.head_text and "Italian" in layout.head_text
    for word in ["cat", "Paris.", "100", "été"]:
        assert tiny_tokenizer.decode(layout.encode_word(word)) == " " + word


def test_layout_rejects_template_without_placeholder(tiny_tokenizer: object) -> None:
    with pytest.raises(ValueError):
        build_layout(tiny_tokenizer, messages=[{"role": "user", "content": "no source here"}])


class PieceTokenizer:
    """Decodes ids by joining fixed text pieces (enough for the word rule)."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def decode(self, ids: list[int]) -> str:
        return "".join(self.pieces[i] for i in ids)


@pytest.mark.parametrize(
    ("word", "candidate", "expected"),
    [
        ([], " le", False),  # nothing yet: the first token always joins
        (["Le"], " chat", True),  # a leading space starts the next word
        (["ch"], "at", False),  # a continuation joins
        (["\n"], "Le", False),  # leading whitespace stays with the word it precedes
        ([" ", "\n"], " Le", False),
        (["fin", ".\n"], "Le", True),  # a token ending in a line break closes the word
        (["Le"], "\n", True),
        (["东"], "京", True),  # each CJK character is its own unit
        (["Paris"], "是", True),
        (["东京"], "。", True),
        (["东"], " ", True),
    ],
)
def test_word_boundary_rule(word: list[str], candidate: str, expected: bool) -> None:
    from mlxchat.translate.decoding import starts_new_word

    pieces = sorted({*word, candidate})
    tokenizer = PieceTokenizer(pieces)
    ids = [pieces.index(p) for p in word]
    assert starts_new_word(tokenizer, ids, pieces.index(candidate)) is expected


def test_arrivals_give_each_word_with_its_place_and_sentence_end() -> None:
    words = [(a.sentence, a.index, a.word, a.last, a.due) for a in arrivals([["A", "b."], ["C"]])]
    assert words == [(0, 0, "A", False, None), (0, 1, "b.", True, None), (1, 0, "C", True, None)]


def test_arrivals_at_a_pace_are_due_one_gap_apart() -> None:
    dues = [a.due or 0.0 for a in arrivals([["one", "two"], ["three"]], wpm=120)]
    assert dues[0] > 0
    assert [round(due - dues[0], 6) for due in dues] == [0.0, 0.5, 1.0]
