"""The real `mlxchat serve` command in a subprocess: usage errors, the missing extra, and one
end-to-end answer from the demo model through the official `openai` client."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import openai
import pytest


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlxchat", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or os.environ.copy(),
    )


def test_without_the_serve_extra_it_says_how_to_install(tmp_path: Path) -> None:
    missing = tmp_path / "fastapi"
    missing.mkdir()
    (missing / "__init__.py").write_text("raise ImportError('No module named fastapi')\n")
    env = os.environ | {"PYTHONPATH": str(tmp_path)}
    result = serve(env=env)
    assert result.returncode == 2
    checkout = Path(__file__).resolve().parent.parent  # an editable install: from here
    assert result.stderr == (
        f"mlxchat: error: serving needs the 'serve' extra: cd {checkout} && "
        "pip install -e '.[serve]'\n"
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--max-queue", "-1"], "--max-queue must be 0 or more"),
        (["--progress-interval", "0"], "--progress-interval must be"),
        (["--port", "70000"], "--port must be between 0 and 65535"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args: list[str], words: str) -> None:
    result = serve(*args)
    assert result.returncode == 2
    assert words in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve("--port", str(port))
    assert result.returncode == 2
    assert result.stderr.startswith(f"mlxchat: error: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in result.stderr


def test_another_address_without_a_key_warns() -> None:
    result = serve("--host", "192.0.2.1")  # TEST-NET: never a local address, so it fails too
    lines = result.stderr.splitlines()
    assert lines[0].startswith("mlxchat: warning: listening on 192.0.2.1 without --api-key")
    assert lines[1].startswith("mlxchat: error: cannot listen on 192.0.2.1:8080")


def started_server(model: str, *args: str) -> tuple[subprocess.Popen, openai.OpenAI]:
    """`mlxchat serve -m MODEL --port 0` and an openai client on the address it printed."""
    server = subprocess.Popen(
        [sys.executable, "-m", "mlxchat", "serve", "-m", model, "--port", "0", *args],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    line = server.stderr.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+/v1) ", line)
    assert match, line
    return server, openai.OpenAI(base_url=match.group(1), api_key="-", max_retries=0)


@pytest.mark.demo
def test_demo_model_answers_through_the_openai_client() -> None:
    server, client = started_server("demo")
    try:
        answer = client.chat.completions.create(
            model="demo",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            temperature=0,
            max_tokens=20,
        )
        assert "Paris" in answer.choices[0].message.content
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(20) == 130  # Ctrl+C, as everywhere in mlxchat
    log = server.stderr.read().splitlines()
    assert log[-1] == "mlxchat: interrupted"
    [access] = log[:-1]  # one line per request: client, method, path, status, tokens, time
    assert re.fullmatch(
        r"mlxchat: 127\.0\.0\.1 POST /v1/chat/completions 200 \d+\+\d+ tok \d+\.\d\d s", access
    ), access


def test_quiet_serves_without_an_access_log(tiny_endless: Path) -> None:
    server, client = started_server(str(tiny_endless), "--quiet")
    try:
        assert client.models.list().data
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(20) == 130
    assert server.stderr.read() == "mlxchat: interrupted\n"


def test_ctrl_c_while_an_answer_streams_ends_it_cleanly(tiny_endless: Path) -> None:
    server, client = started_server(str(tiny_endless))
    try:
        stream = client.chat.completions.create(
            model=str(tiny_endless),
            messages=[{"role": "user", "content": "Hello"}],
            max_tokens=100_000,
            stream=True,
        )
        next(iter(stream))  # the answer is streaming
        server.send_signal(signal.SIGINT)
        finishes = [chunk.choices[0].finish_reason for chunk in stream]
        assert finishes[-1] == "cancelled"  # the stream ended with its last chunk, not cut
        code = server.wait(20)
    finally:
        if server.poll() is None:
            server.kill()
    errors = server.stderr.read()
    assert code == 130, errors  # not 134: the process left the engine thread idle
    *access, last = errors.splitlines()
    assert last == "mlxchat: interrupted"
    assert [a.split()[1:5] for a in access] == [
        ["127.0.0.1", "POST", "/v1/chat/completions", "200"]  # the stream cut by Ctrl+C
    ]
