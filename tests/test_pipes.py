"""The real `mlxchat` without a terminal, with bytes that are not UTF-8, and with a reader
that stops reading (`| head`): one clear line or a quiet end, never a traceback or a spin."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, mlxchat

DATA = Path(__file__).parent / "data"
COMMAND = [sys.executable, "-m", "mlxchat"]


def run_on_pty(*args: str, stdin: int | None, timeout: float = 60) -> tuple[int, str]:
    """Run mlxchat with stdout and stderr on a fresh pty and no controlling terminal."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*COMMAND, *args],
            stdin=stdin,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,  # no /dev/tty to fall back on
        )
        os.close(terminal)
        output = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not select.select([controller], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the child has gone and the pty is closed
                break
            if not chunk:
                break
            output += chunk
        else:
            proc.kill()
            raise AssertionError(f"still running after {timeout} s; output: {output[-500:]!r}")
        return proc.wait(timeout=10), output.decode("utf-8", "replace")
    finally:
        os.close(controller)


@pytest.mark.parametrize("stdin", ["hi\n", ""])
def test_chat_with_piped_stdin_and_stdout_says_it_needs_a_terminal(stdin: str) -> None:
    proc = mlxchat("--model", "demo", stdin=stdin, timeout=30)
    assert_one_line_error(proc, "the chat needs a terminal")
    assert "mlxchat generate" in proc.stderr
    assert proc.stdout == ""


def test_chat_with_stdin_from_dev_null_on_a_terminal_says_it_needs_one() -> None:
    code, output = run_on_pty("--model", "demo", stdin=subprocess.DEVNULL)
    assert code == 2, output
    assert output.strip().startswith("mlxchat: error: the chat needs a terminal"), output
    assert len(output.strip().splitlines()) == 1, output


def test_translate_screen_without_a_keyboard_says_use_plain_or_json() -> None:
    with open(DATA / "sentences.en.txt", "rb") as source:
        code, output = run_on_pty("translate", "--model", "demo", stdin=source.fileno())
    assert code == 2, output
    assert "the translate screen needs a terminal" in output
    assert "--plain or --json" in output
    assert len(output.strip().splitlines()) == 1, output


def test_generate_with_invalid_utf8_on_stdin_names_the_byte() -> None:
    proc = subprocess.run(
        [*COMMAND, "generate", "-m", "demo"], input=b"a\x98\xff", capture_output=True, timeout=60
    )
    proc.stderr = proc.stderr.decode()
    assert_one_line_error(proc, "stdin: line 1 is not valid UTF-8 (byte 2)")


def test_generate_with_invalid_utf8_in_the_prompt_flag() -> None:
    proc = subprocess.run(
        [*COMMAND, "generate", "-m", "demo", "-p", b"caf\xe9"], capture_output=True, timeout=60
    )
    proc.stderr = proc.stderr.decode()
    assert_one_line_error(proc, "--prompt is not valid UTF-8 (character 4)")


def read_then_close(args: list[str], amount: int) -> tuple[int, bytes, str]:
    """Start mlxchat writing into a pipe, read `amount` bytes, close the pipe, wait."""
    proc = subprocess.Popen(
        [*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy()
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(amount)
    proc.stdout.close()
    errors = proc.stderr.read().decode()
    return proc.wait(timeout=60), head, errors


def test_generate_into_a_closed_pipe_ends_quietly(tiny_endless: Path) -> None:
    args = ["generate", "-m", str(tiny_endless), "-p", "Go", "--max-tokens", "100000"]
    code, head, errors = read_then_close(args, 5)
    assert len(head) == 5
    assert (code, errors) == (0, "")


def test_translate_json_into_a_closed_pipe_ends_quietly(tiny_llama: Path, tmp_path: Path) -> None:
    talk = tmp_path / "talk.txt"
    talk.write_text((DATA / "sentences.en.txt").read_text() * 5)
    args = ["translate", "--json", "-m", str(tiny_llama), "-i", str(talk)]
    code, head, errors = read_then_close([*args, "--max-new-words", "4"], 200)
    assert head.startswith(b'{"type": "source"')
    assert (code, errors) == (0, "")
