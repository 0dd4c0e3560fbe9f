"""What the terminal sends, split into keys and pasted text (`mlxchat.ui.terminal_input`)."""

from __future__ import annotations

from mlxchat.ui.terminal_input import Pasted, TerminalInput


def feed(*reads: bytes, more: bool = False) -> list[object]:
    terminal = TerminalInput()
    pieces: list[object] = []
    for data in reads:
        pieces += terminal.feed(data, more)
    return pieces


def test_typed_keys_go_to_the_key_parser() -> None:
    assert feed(b"hello", b"\r", b"\x1b[A", b"\x11") == ["hello", "\r", "\x1b[A", "\x11"]


def test_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    assert feed(b"a\x98\xff", b"\xc3", b"\xa9") == ["a\ufffd\ufffd", "\xe9"]


def test_a_bracketed_paste_is_text_whatever_it_holds() -> None:
    paste = b"\x1b[200~red \x1b[31mtext\x1b[0m, quit \x11, palette \x10\r\nend\x1b[201~"
    assert feed(paste) == [Pasted("red \\x1b[31mtext\\x1b[0m, quit \\x11, palette \\x10\nend")]


def test_paste_markers_split_across_reads() -> None:
    reads = (b"k\x1b[20", b"0~one\x1b", b"[201", b"~two")
    assert feed(*reads, more=True) == ["k", Pasted("one"), "two"]


def test_an_escape_at_the_end_of_the_input_is_the_escape_key() -> None:
    assert feed(b"\x1b") == ["\x1b"]


def test_lines_in_one_read_are_a_paste_without_bracketed_paste() -> None:
    assert feed(b"first line\rsecond line\r") == [Pasted("first line\nsecond line"), "\r"]
    assert feed(b"first\rsecond\r", more=True) == [Pasted("first\nsecond\n")]
    assert feed(b"quit \x11\rpalette \x10\r") == [Pasted("quit \\x11\npalette \\x10"), "\r"]


def test_a_key_right_after_a_paste_without_brackets_stays_a_key() -> None:
    assert feed(b"first\rsecond\r\x1b") == [Pasted("first\nsecond\n"), "\x1b"]
    assert feed(b"one\rtwo\x1b[A") == [Pasted("one\n"), "two\x1b[A"]


def test_a_long_run_of_keys_is_a_paste_but_mouse_reports_are_not() -> None:
    assert feed(b"x" * 80) == [Pasted("x" * 80)]
    moves = b"\x1b[<35;10;5M" * 4
    assert feed(moves + b"\r" + moves) == [(moves + b"\r" + moves).decode()]


def test_keys_that_arrive_together_stay_keys_in_order() -> None:
    """Over SSH, from a macro or while the app is busy, keys come bunched in one read: an
    Enter first, or next to arrows and Home/End, is the Enter key, not a pasted line."""
    assert feed(b"\r\x1b[A x") == ["\r\x1b[A x"]
    assert feed(b"\x1b[D\x1b[DX") == ["\x1b[D\x1b[DX"]
    assert feed(b"\x1bOD\x1bOD\rX") == ["\x1bOD\x1bOD\rX"]
    assert feed(b"\x1b[A\x1b[B\x1b[D\x1b[C\x1b[1~\x1b[4~\r") == [
        "\x1b[A\x1b[B\x1b[D\x1b[C\x1b[1~\x1b[4~\r"
    ]
    assert feed(b"hi\r\x1b[A") == ["hi\r\x1b[A"]
    assert feed(b"\rhello", more=True) == ["\rhello"]
    assert feed(b"two words\r", more=True) == [Pasted("two words\n")]  # still a paste
