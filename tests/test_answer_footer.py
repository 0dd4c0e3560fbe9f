"""The line under an answer, the same live and when a saved chat is resumed."""

from __future__ import annotations

from mlxchat.ui.display import answer_footer


def test_a_finished_answer_shows_its_numbers() -> None:
    assert answer_footer("stop", "12 tok · 18.4 tok/s") == "12 tok · 18.4 tok/s"
    assert answer_footer("error", "12 tok") == "12 tok"  # a saved failed answer: its numbers


def test_a_stopped_answer_says_so() -> None:
    assert answer_footer("cancelled", "3 tok") == "stopped · 3 tok"
    assert answer_footer("cancelled", "") == "stopped"
    assert answer_footer("cancelled", "", empty=True) == "stopped before any text"


def test_a_cut_answer_names_the_limit_when_known() -> None:
    assert answer_footer("length", "256 tok") == "cut at the token limit · 256 tok"
    assert answer_footer("length", "256 tok", limit=256) == (
        "cut at the token limit (256; /max-tokens N) · 256 tok"
    )
    assert answer_footer("length", "", limit=8) == "cut at the token limit (8; /max-tokens N)"
