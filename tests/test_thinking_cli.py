"""`mlxchat generate` with a model that thinks: reasoning on stderr (dim on a terminal),
the answer alone on stdout, `--hide-reasoning`, `--json` reasoning events, `--no-think`."""

from __future__ import annotations

import io
import json
from pathlib import Path

from test_cli import assert_one_line_error, mlxchat

from mlxchat.cli.reasoning import DIM, ReasoningWriter
from mlxchat.text import sanitize

ASK = ["-p", "Tell me about the fox.", "--max-tokens", "14", "--thinking-budget", "4"]


def test_reasoning_to_stderr_answer_to_stdout(tiny_thinking: Path) -> None:
    shown = mlxchat("generate", "-m", str(tiny_thinking), *ASK)
    assert shown.returncode == 0, shown.stderr
    hidden = mlxchat("generate", "-m", str(tiny_thinking), *ASK, "--hide-reasoning")
    assert hidden.stdout == shown.stdout and shown.stdout.strip()
    assert "think>" not in shown.stdout + shown.stderr
    events = [
        json.loads(line)
        for line in mlxchat(
            "generate", "-m", str(tiny_thinking), *ASK, "--json"
        ).stdout.splitlines()
    ]
    reasoning = "".join(e["text"] for e in events if e["type"] == "reasoning")
    answer = "".join(e["text"] for e in events if e["type"] == "chunk")
    assert reasoning.strip() and sanitize(reasoning).strip() in shown.stderr
    assert sanitize(reasoning).strip() not in hidden.stderr
    assert sanitize(answer).strip() == shown.stdout.strip()
    assert len([e for e in events if e["type"] == "reasoning" and e["token"] is not None]) == 4


def test_no_think_answers_at_once(tiny_thinking: Path) -> None:
    proc = mlxchat("generate", "-m", str(tiny_thinking), *ASK, "--no-think", "--json")
    kinds = {json.loads(line)["type"] for line in proc.stdout.splitlines()}
    assert "chunk" in kinds and "reasoning" not in kinds


def test_a_negative_budget_is_one_line() -> None:
    assert_one_line_error(
        mlxchat("generate", "-p", "hi", "--thinking-budget", "-1"), "--thinking-budget"
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_reasoning_is_dim_on_a_terminal_and_its_line_is_closed() -> None:
    err = _Terminal()
    writer = ReasoningWriter(err)
    writer.write("hmm")
    writer.end()
    assert err.getvalue() == f"{DIM}hmm\x1b[0m\n"
    plain = io.StringIO()
    ReasoningWriter(plain).write("hmm")
    assert plain.getvalue() == "hmm"
