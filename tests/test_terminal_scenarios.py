"""Scenarios a new user meets in a real terminal, on the real program and the demo model.

Start-up paths are repeated (a race shows in some starts, not all), and keys are sent the
way terminals deliver them: one burst, a few characters at a time, bracketed paste, and a
paste from a terminal without bracketed paste. Every wait is on the screen.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from terminal_harness import Terminal, mlxchat_command
from test_terminal import pytestmark as pytestmark  # tmux and the demo model

from mlxchat.store.history import HISTORY_FILE, History

STARTS = 4
"""How many times each start-up path runs in a row."""

LOAD_TIMEOUT = 90


def model_ready(screen: str) -> bool:
    """The status bar shows a loaded, idle model (or a failure, checked by the caller)."""
    return "● demo │ idle" in screen or "no model" in screen or "could not load" in screen


def saved_chat(tmp_path: Path) -> int:
    with History.open(tmp_path / "data" / HISTORY_FILE) as history:
        chat = history.new_conversation()
        history.add_message(chat, "user", "What is the capital of France?")
        history.add_message(chat, "assistant", "The capital of France is Paris.")
    return chat


def quit_cleanly(term: Terminal) -> None:
    term.type("C-q")
    code = term.wait_exit(30)
    assert code == 0, f"exit code {code}:\n{term.screen()}"
    assert "Traceback" not in term.screen()


@pytest.mark.parametrize("flags", [(), ("-c",), ("--resume", "{id}"), ("--resume",)])
def test_every_start_comes_up_with_the_model(tmp_path: Path, flags: tuple[str, ...]) -> None:
    chat = saved_chat(tmp_path)
    args = [flag.format(id=chat) for flag in flags]
    for attempt in range(STARTS if flags else STARTS // 2):
        term = Terminal(mlxchat_command(tmp_path, *args), width=120, height=40)
        try:
            screen = term.wait_until(model_ready, LOAD_TIMEOUT, "the model loaded")
            assert "● demo │ idle" in screen, f"start {attempt + 1} ({args}):\n{screen}"
            if flags:
                assert "The capital of France is Paris." in screen
            quit_cleanly(term)
        finally:
            term.close()


def source_line(screen: str) -> str:
    """The first line of the translate screen's source pane."""
    rows = screen.splitlines()
    start = next(i for i, row in enumerate(rows) if "Source" in row)
    return rows[start + 1].split("││")[0].strip("│ ")


@pytest.mark.parametrize("timing", ["burst", "paced", "paste", "raw_paste"])
def test_translate_takes_every_key_once_in_order(tmp_path: Path, timing: str) -> None:
    sentence = "Good morning my dear friend."
    term = Terminal(
        mlxchat_command(tmp_path, "translate", "-m", "demo", "-k", "2"), width=120, height=40
    )
    try:
        term.wait_until(lambda s: "● demo │ idle" in s, LOAD_TIMEOUT, "the model loaded")
        term.send(sentence + " ", timing)
        screen = term.wait_until(
            lambda s: source_line(s) == sentence or "Good Good" in s,
            60,
            "the typed words in the source pane",
        )
        assert source_line(screen) == sentence, screen
        term.type("Enter")
        term.wait_until(lambda s: "sentence 1  idle" in s, 120, "the sentence translated")
        term.send("Thank you. ", timing)
        screen = term.wait_until(lambda s: "Thank you." in s, 60, "the second sentence")
        assert source_line(screen) == sentence, screen
        quit_cleanly(term)
    finally:
        term.close()


def flat(screen: str) -> str:
    """The screen's words in one line (a notice wraps wherever its width ends)."""
    return " ".join(screen.replace("▌", " ").split())


def prompt_text(screen: str) -> str:
    """What the chat's prompt box holds (its one line of text)."""
    rows = screen.splitlines()
    footer = max(i for i, row in enumerate(rows) if "●" in row)  # the status bar
    text = rows[footer - 2].split("▌")[0].strip(" ▊▎")  # a notice may cover the right end
    return "" if text == "Message (/ for commands)" else text  # the placeholder


def test_history_recall_steps_over_slash_commands(tmp_path: Path) -> None:
    term = Terminal(mlxchat_command(tmp_path), width=120, height=40)
    try:
        term.wait_until(lambda s: "● demo │ idle" in s, LOAD_TIMEOUT, "the model loaded")
        for command in ("/temp 0", "/system", "/max-tokens 64"):
            term.send(command)
            term.wait_until(lambda s, c=command: prompt_text(s) == c, 10, f"{command} typed")
            term.type("Enter")
            term.wait_until(lambda s: prompt_text(s) == "", 15, f"{command} ran")
        for expected in ("/max-tokens 64", "/system", "/temp 0", "/temp 0"):
            term.type("Up")
            term.wait_until(lambda s, e=expected: prompt_text(s) == e, 10, f"{expected!r}")
        for expected in ("/system", "/max-tokens 64", ""):
            term.type("Down")
            term.wait_until(lambda s, e=expected: prompt_text(s) == e, 10, f"{expected!r}")
        quit_cleanly(term)
    finally:
        term.close()


def test_ctrl_q_while_the_model_loads(tmp_path: Path) -> None:
    for _ in range(3):
        term = Terminal(mlxchat_command(tmp_path), width=120, height=40)
        try:
            term.wait_for("mlxchat", 60)  # painted: the model is still loading
            quit_cleanly(term)
        finally:
            term.close()


LONG_PROMPT = " ".join(f"Sentence number {n} is about the sea and the sky." for n in range(300))


def test_esc_and_ctrl_q_during_prefill(tmp_path: Path) -> None:
    term = Terminal(mlxchat_command(tmp_path), width=120, height=40)
    try:
        term.wait_until(lambda s: "● demo │ idle" in s, LOAD_TIMEOUT, "the model loaded")
        term.send(LONG_PROMPT, "paste")
        term.type("Enter")
        term.wait_for("prefill", 30)
        term.type("Escape")
        term.wait_until(lambda s: "● demo │ idle" in s, 30, "idle again after Esc")
        term.send("Hi", "burst")
        term.wait_until(lambda s: prompt_text(s) == "Hi", 10, "the prompt takes keys again")
        term.type("C-u")
        term.send(LONG_PROMPT, "paste")
        term.type("Enter")
        term.wait_for("prefill", 30)
        quit_cleanly(term)
    finally:
        term.close()


def test_after_esc_translate_says_how_to_type_again(tmp_path: Path) -> None:
    term = Terminal(
        mlxchat_command(tmp_path, "translate", "-m", "demo", "-k", "2"), width=120, height=40
    )
    try:
        term.wait_until(lambda s: "● demo │ idle" in s, LOAD_TIMEOUT, "the model loaded")
        term.type("Escape")
        term.wait_for("Press i (or Tab) to type the source again", 10)
        term.type("i")
        term.wait_for("space sends a word", 10)
        term.send("Good morning. ")
        screen = term.wait_until(lambda s: source_line(s) == "Good morning.", 30, "typed")
        assert "iGood" not in screen
        quit_cleanly(term)
    finally:
        term.close()


def test_copy_says_what_was_sent_and_how_it_arrives_in_tmux(tmp_path: Path) -> None:
    term = Terminal(mlxchat_command(tmp_path), width=120, height=40)
    try:
        term.wait_until(lambda s: "● demo │ idle" in s, LOAD_TIMEOUT, "the model loaded")
        term.send("Say hi.")
        term.wait_until(lambda s: prompt_text(s) == "Say hi.", 10, "typed")
        term.type("Enter")
        term.wait_until(lambda s: "● demo │ idle │" in s and "tok/s" in s, 120, "answered")
        term.send("/copy")
        term.wait_until(lambda s: prompt_text(s) == "/copy", 10, "typed")
        term.type("Enter")
        screen = term.wait_until(lambda s: "OSC 52" in flat(s), 10, "the notice")
        assert "set -g set-clipboard on" in flat(screen)  # this terminal is tmux
        assert "Copied" not in screen
        quit_cleanly(term)
    finally:
        term.close()


def saved_rows(tmp_path: Path) -> list[tuple[int, str, str, str | None]]:
    """(conversation id, role, content, finish reason) of every saved message, in order."""
    with History.open(tmp_path / "data" / HISTORY_FILE) as history:
        return [
            (summary.id, m.role, m.content, m.finish_reason)
            for summary in sorted(history.list_conversations(), key=lambda c: c.id)
            for m in history.get_conversation(summary.id).messages  # type: ignore[union-attr]
        ]


def run_command(term: Terminal, command: str) -> None:
    term.send(command)
    term.wait_until(lambda s: prompt_text(s) == command, 10, f"{command} typed")
    term.type("Enter")
    term.wait_until(lambda s: prompt_text(s) == "", 15, f"{command} ran")


def test_a_new_chat_while_an_answer_streams_runs_beside_it(tmp_path: Path) -> None:
    story = "Write a long story about a dragon and a knight."
    capital = "What is the capital of France?"
    term = Terminal(mlxchat_command(tmp_path), width=120, height=40)
    try:
        term.wait_until(lambda s: "● demo │ idle" in s, LOAD_TIMEOUT, "the model loaded")
        for command in ("/temp 0", "/max-tokens 120"):  # a long answer, the same each run
            run_command(term, command)
        term.send(story)
        term.wait_until(lambda s: prompt_text(s) == story, 10, "the question typed")
        term.type("Enter")
        term.wait_for("● demo │ generating", 30)
        term.type("C-n")  # does not wait for the answer
        screen = term.wait_until(
            lambda s: "goes on in the background" in flat(s), 10, "the background notice"
        )
        assert "dragon" not in screen, screen  # the new chat is empty
        term.send(capital)
        term.wait_until(lambda s: prompt_text(s) == capital, 10, "the second question typed")
        term.type("Enter")
        screen = term.wait_until(
            lambda s: "● demo │ idle │" in s and "tok/s" in s, 60, "the second answer"
        )
        assert "Paris" in screen and "dragon" not in screen and "knight" not in screen, screen
        rows = saved_rows(tmp_path)
        first, second = rows[0][0], rows[-1][0]
        assert [r[1:3] for r in rows if r[0] == first] == [("user", story)]  # still written
        assert [r[1] for r in rows if r[0] == second] == ["user", "assistant"]
        screen = term.wait_until(
            lambda s: "has ended and is saved" in flat(s), 60, "the first answer ended"
        )
        assert "dragon" not in screen and "knight" not in screen, screen
        rows = saved_rows(tmp_path)
        answers = {r[0]: r[2:] for r in rows if r[1] == "assistant"}
        assert set(answers) == {first, second}
        assert "Paris" in answers[second][0] and answers[second][1] == "stop"
        assert len(answers[first][0]) > 200 and answers[first][1] in ("stop", "length")
        quit_cleanly(term)
    finally:
        term.close()


def test_the_message_cursor_copies_and_find_moves_between_hits(tmp_path: Path) -> None:
    chat = saved_chat(tmp_path)
    term = Terminal(mlxchat_command(tmp_path, "--resume", str(chat)), width=120, height=40)
    try:
        term.wait_until(lambda s: "● demo │ idle" in s, LOAD_TIMEOUT, "the model loaded")
        term.wait_for("The capital of France is Paris.", 10)
        term.type("C-Up")  # to the messages: the cursor on the answer
        term.wait_for("↑↓ move · c copy · y code", 10)
        term.type("Up")  # the question
        term.type("c")
        screen = term.wait_until(
            lambda s: "Sent the message (30 characters)" in flat(s), 10, "the copy notice"
        )
        assert "OSC 52" in flat(screen)
        term.type("Escape")  # back to the prompt
        term.wait_until(lambda s: "↑↓ move" not in s, 10, "the keys line gone")
        run_command(term, "/find France")
        term.wait_for("find “France”: 2/2 · n next · N previous", 10)
        term.type("n")  # wraps around to the first hit
        term.wait_for("find “France”: 1/2", 10)
        term.type("Escape")
        term.wait_until(lambda s: "find “France”" not in s, 10, "the find line gone")
        term.send("Hi")
        term.wait_until(lambda s: prompt_text(s) == "Hi", 10, "the prompt takes keys again")
        quit_cleanly(term)
    finally:
        term.close()


def test_r_writes_an_answer_again_and_the_arrows_switch_versions(tmp_path: Path) -> None:
    with History.open(tmp_path / "data" / HISTORY_FILE) as history:
        chat = history.new_conversation()
        history.add_message(chat, "user", "What is the capital of France?")
        first = history.add_message(chat, "assistant", "Lyon, I believe.")
    term = Terminal(mlxchat_command(tmp_path, "--resume", str(chat)), width=120, height=40)
    try:
        term.wait_until(lambda s: "● demo │ idle" in s, LOAD_TIMEOUT, "the model loaded")
        term.wait_for("Lyon, I believe.", 10)
        run_command(term, "/max-tokens 12")
        term.type("C-Up")  # the cursor on the answer
        term.wait_for("↑↓ move · c copy · y code", 10)
        term.type("r")  # the demo writes it again: a second version beside the first
        screen = term.wait_until(
            lambda s: "2/2" in s and "● demo │ idle" in s, 120, "the second version"
        )
        assert "Lyon, I believe." not in screen  # the demo's own words now
        term.type("C-Up")
        term.type("Left")  # the first version again
        term.wait_until(lambda s: "1/2" in s and "Lyon, I believe." in s, 10, "version 1")
        term.type("Right")
        term.wait_until(lambda s: "2/2" in s and "Lyon, I believe." not in s, 10, "version 2")
        quit_cleanly(term)
    finally:
        term.close()
    with History.open(tmp_path / "data" / HISTORY_FILE) as history:
        assert len(history.alternatives(first)) == 2  # both versions are kept
        shown = history.get_conversation(chat).messages  # type: ignore[union-attr]
        assert [m.content for m in shown][-1] != "Lyon, I believe."  # the one last viewed


def last_text_row(screen: str) -> str:
    """The last row of the transcript that holds text (above the prompt box)."""
    rows = screen.splitlines()
    top = min(i for i, row in enumerate(rows) if "▔▔▔" in row)  # the prompt box's top
    return next(row for row in reversed(rows[:top]) if row.strip(" ▌"))


def test_keys_in_one_burst_act_in_order_idle_and_while_streaming(tmp_path: Path) -> None:
    """Keys that arrive together (SSH, macros, a busy UI) act as if typed one by one:
    arrows and Home/End in order with the text, Enter first sends, Tab then a key acts on
    the message, also while an answer streams."""
    term = Terminal(mlxchat_command(tmp_path), width=120, height=40)
    try:
        term.wait_until(lambda s: "● demo │ idle" in s, LOAD_TIMEOUT, "the model loaded")
        run_command(term, "/max-tokens 60")
        term.send("abc")
        term.wait_until(lambda s: prompt_text(s) == "abc", 10, "typed")
        term.type("Left", "Left", "X")  # one write
        term.wait_until(lambda s: prompt_text(s) == "aXbc", 10, "the arrows in order")
        term.type("Home", "Y", "End", "Z", "BSpace", "BSpace", "W")
        term.wait_until(lambda s: prompt_text(s) == "YaXbW", 10, "Home/End/Backspace in order")
        term.type("Enter", "Up", " x")  # sends, recalls it, types after it
        screen = term.wait_until(lambda s: prompt_text(s) == "YaXbW x", 10, "Enter first sends")
        assert "YaXbW" in screen.split("▔▔▔")[0]  # sent: shown in the transcript
        term.wait_for("● demo │ generating", 60)
        term.type("C-u", "Left", "Left", "Q", "Home", "R", "End", "S")  # while it streams
        screen = term.wait_until(lambda s: prompt_text(s) == "RQS", 10, "in order, streaming")
        assert "\\x1b" not in screen and "[D" not in screen
        term.wait_until(lambda s: "● demo │ idle │" in s, 120, "answered")
        answer_end = last_text_row(term.screen())
        term.type("C-u", "Tab", "c")  # Tab goes where Ctrl+Up goes: c copies at once
        term.wait_until(lambda s: "OSC 52" in flat(s), 10, "the copy notice")
        term.type("Escape")
        term.wait_until(lambda s: "↑↓ move" not in s, 10, "back at the prompt")
        term.send("line1")
        term.type("C-j", "C-j", "C-j", "C-j")  # the prompt grows: the view keeps its end
        term.wait_until(lambda s: last_text_row(s) == answer_end, 10, "the answer's end shown")
        subprocess.run(["tmux", "resize-window", "-t", term.name, "-y", "30"], check=True)
        term.wait_until(
            lambda s: len(s.splitlines()) == 30 and last_text_row(s) == answer_end,
            10,
            "the answer's end shown in a shorter window",
        )
        quit_cleanly(term)
    finally:
        term.close()
