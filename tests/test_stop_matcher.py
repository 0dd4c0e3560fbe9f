"""The stop-string matcher: text that might start a stop string is held back, never shown."""

from __future__ import annotations

from mlxchat.engine.generation import StopMatcher


def feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    shown = ""
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        shown += text
        if stopped:
            return shown, True
    return shown + matcher.flush(), False


def test_without_stops_text_passes_through() -> None:
    assert StopMatcher(["", ""]).feed("hello <") == ("hello <", False)


def test_a_stop_split_across_pieces_is_found_and_not_shown() -> None:
    assert feed_all(StopMatcher(["<end>"]), ["Hi <", "en", "d> more"]) == ("Hi ", True)


def test_a_possible_start_is_held_then_released() -> None:
    matcher = StopMatcher(["<end>"])
    assert matcher.feed("a <e") == ("a ", False)
    assert matcher.feed("x") == ("<ex", False)


def test_held_text_comes_out_at_the_end() -> None:
    assert feed_all(StopMatcher(["STOP"]), ["go ST"]) == ("go ST", False)


def test_the_earliest_of_several_stops_wins() -> None:
    assert feed_all(StopMatcher(["bb", "a"]), ["xbbya"]) == ("x", True)
