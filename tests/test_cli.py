"""The real `mlxchat` command in a subprocess: output, exit codes, error lines."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def mlxchat(
    *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlxchat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, proc.stderr


def test_version() -> None:
    proc = mlxchat("--version")
    assert proc.returncode == 0
    assert re.fullmatch(r"mlxchat \d+\.\d+\.\d+\n", proc.stdout)


def test_help_does_not_import_mlx_or_textual() -> None:
    code = (
        "import sys; from mlxchat.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED', [m for m in ('mlx.core', 'textual', 'mlx_lm') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "generate" in proc.stdout
    assert "LOADED []" in proc.stdout


def test_generate_streams_text(tiny_llama: Path) -> None:
    proc = mlxchat("generate", "-m", str(tiny_llama), "-p", "Hello there", "--max-tokens", "30")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip()) > 5
    assert not RAW_CONTROL.search(proc.stdout), "raw control characters reached stdout"


def test_generate_reads_stdin_and_verbose_prints_stats(tiny_llama: Path) -> None:
    proc = mlxchat(
        "generate", "-m", str(tiny_llama), "--max-tokens", "12", "--verbose", stdin="Hello"
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"12 tokens, [\d.]+ tok/s \| prompt \d+ tokens", proc.stderr)
    assert "TTFT" in proc.stderr and "length" in proc.stderr


def test_generate_json_is_ndjson_matching_the_text(tiny_llama: Path) -> None:
    args = ("generate", "-m", str(tiny_llama), "-p", "Hello there", "--max-tokens", "20")
    plain = mlxchat(*args)
    proc = mlxchat(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    chunks = [e for e in events if e["type"] == "chunk"]
    assert events[-1]["type"] == "done"
    assert events[-1]["stats"]["generation_tokens"] == 20
    assert events[-1]["finish_reason"] == "length"
    text = "".join(c["text"] for c in chunks)
    from mlxchat.text import sanitize

    assert sanitize(text) == plain.stdout.rstrip("\n")


def test_ignore_chat_template_changes_the_prompt(tiny_llama: Path) -> None:
    args = ("generate", "-m", str(tiny_llama), "-p", "Hello", "--max-tokens", "5", "-v")
    templated = mlxchat(*args)
    raw = mlxchat(*args, "--ignore-chat-template")
    prompt_tokens = [
        int(re.search(r"prompt (\d+) tokens", p.stderr).group(1)) for p in (templated, raw)
    ]
    assert prompt_tokens[0] > prompt_tokens[1]


def test_ctrl_c_keeps_partial_output_and_exits_130(tiny_endless: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlxchat", "generate", "-m", str(tiny_endless), "-p", "Go"]
        + ["--max-tokens", "100000", "--ignore-chat-template"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.read(20)  # generation has started
    time.sleep(0.2)
    assert proc.poll() is None, "generation ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert len(first + rest) > 20
    assert "Traceback" not in err and "interrupted" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("generate", "-m", "/no/such/model", "-p", "hi"), "/no/such/model"),
        (
            ("generate", "-p", "hi", "--max-tokens", "0"),
            "--max-tokens must be a whole number ≥ 1, got 0",
        ),
        (("generate", "-p", "   "), "the prompt is empty"),
        (("generate", "-p", "hi", "--temp", "-2"), "--temp must be a number from 0 to 5, got -2"),
        (("locate", "nowhere"), "unknown location 'nowhere'"),
    ],
)
def test_bad_input_is_one_clear_line(args: tuple[str, ...], needle: str) -> None:
    assert_one_line_error(mlxchat(*args), needle)


def test_directory_without_config_json(tmp_path: Path) -> None:
    assert_one_line_error(mlxchat("generate", "-m", str(tmp_path), "-p", "hi"), "config.json")


def test_bad_flag_exits_2() -> None:
    proc = mlxchat("generate", "--max-tokens", "many", "-p", "hi")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "max-tokens" in proc.stderr


def test_locate_prints_the_overridden_paths(tmp_path: Path) -> None:
    assert mlxchat("locate", "data").stdout.strip() == os.environ["MLXCHAT_DATA_DIR"]
    first = mlxchat("locate", "config")
    path = Path(first.stdout.strip())
    assert path == Path(os.environ["MLXCHAT_CONFIG_DIR"]) / "config.toml"
    assert first.stderr == "mlxchat: created a commented default config file\n"
    assert path.read_text().startswith("# mlxchat settings (TOML).")
    again = mlxchat("locate", "config")  # it is there now: just the path
    assert (again.returncode, again.stdout.strip(), again.stderr) == (0, str(path), "")
    every = mlxchat("locate")  # no argument: the four, each with its path
    assert every.returncode == 0 and every.stdout.splitlines() == [
        f"config  {path}",
        f"data    {os.environ['MLXCHAT_DATA_DIR']}",
        f"themes  {Path(os.environ['MLXCHAT_CONFIG_DIR']) / 'themes'}",
        f"cache   {os.environ['MLXCHAT_CACHE_DIR']}",
    ]


@pytest.mark.demo
def test_demo_model_knows_the_capital_of_france() -> None:
    proc = mlxchat("generate", "-m", "demo", "-p", "What is the capital of France?", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Paris" in proc.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--resume", "abc"], "--resume takes a chat id (a number, see /history), not 'abc'"),
        (["--resume", "0"], "--resume takes a chat id"),
        (["-c", "--resume", "3"], "give either --continue or --resume ID, not both"),
    ],
)
def test_bad_resume_is_one_line(args: list[str], needle: str) -> None:
    assert_one_line_error(mlxchat(*args, timeout=30), needle)


@pytest.mark.parametrize(
    ("args", "fixed"),
    [
        (["--resume"], ["--resume", "latest"]),
        (["--resume", "-m", "demo"], ["--resume", "latest", "-m", "demo"]),
        (["--resume", "12"], ["--resume", "12"]),
        (["-m", "x", "--", "--resume"], ["-m", "x", "--", "--resume"]),
        (["generate", "-p", "--resume"], ["generate", "-p", "--resume"]),
    ],
)
def test_bare_resume_means_the_latest_chat(args: list[str], fixed: list[str]) -> None:
    from mlxchat.cli.app import resume_target, with_resume_value

    assert with_resume_value(args) == fixed
    assert resume_target("latest", False) == resume_target(None, True) == "latest"
    assert resume_target("12", False) == 12
    assert resume_target(None, False) is None


@pytest.mark.demo
def test_generate_json_has_no_empty_chunk_before_done() -> None:
    proc = mlxchat("generate", "-m", "demo", "-p", "Say hello.", "--max-tokens", "40", "--json")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1]["type"] == "done" and events[-1]["finish_reason"] == "stop"
    assert all(e["text"] or e["token"] is not None for e in events if e["type"] == "chunk")
