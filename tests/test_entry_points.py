"""Every entry point loads the fast BLAS before MLX and says which one it got.

Each command runs for real in a fresh process (the BLAS is chosen before MLX is first
imported, so an in-process test would only see the test runner's choice): `generate -v`,
`translate --plain -v`, the chat (headless, reading the loaded model's backend line, which
its status/about views show), and the Python API (`Engine()`). A server calls
`mlxchat.engine.cpu.setup_process()` the same way; its test belongs with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import mlxchat

from mlxchat.engine import blas

LINUX = sys.platform.startswith("linux")
HAVE_OPENBLAS = LINUX and bool(blas.pip_candidates() or blas.system_candidates())
pytestmark = pytest.mark.skipif(not HAVE_OPENBLAS, reason="no OpenBLAS on this machine")


def backend_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if " on CPU (MLX " in line]
    assert len(lines) == 1, stderr
    return lines[0]


def python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def test_generate_verbose_names_openblas(tiny_llama: Path) -> None:
    proc = mlxchat("generate", "-m", str(tiny_llama), "-p", "Hello", "--max-tokens", "3", "-v")
    assert proc.returncode == 0, proc.stderr
    line = backend_line(proc.stderr)
    assert "OpenBLAS 0." in line and " thread" in line, line


def test_translate_plain_verbose_names_openblas(tiny_llama: Path, tmp_path: Path) -> None:
    """The command that lost the fast path when its modules imported MLX first."""
    source = tmp_path / "source.txt"
    source.write_text("The cat is on the table.\n")
    args = ("translate", "--plain", "-v", "-m", str(tiny_llama), "-i", str(source))
    proc = mlxchat(*args, "--max-new-words", "3")
    assert proc.returncode == 0, proc.stderr
    assert "OpenBLAS 0." in backend_line(proc.stderr)


CHAT = """
import sys
from textual.app import App

run = App.run


def headless(self, *args, **kwargs):
    async def report(pilot):
        while self.engine.model_info is None:
            await pilot.pause(0.05)
        print("BACKEND", self.engine.model_info.backend, flush=True)
        self.exit(0)

    return run(self, headless=True, auto_pilot=report)


App.run = headless
sys.argv = ["mlxchat", "-m", {model!r}]
import mlxchat.cli.terminal

mlxchat.cli.terminal.require_terminal = lambda message: None  # headless: no terminal needed
from mlxchat.cli import main

main()
"""


def test_chat_backend_names_openblas(tiny_llama: Path) -> None:
    """Bare `mlxchat` (the chat), headless: the loaded model's backend line."""
    proc = python(CHAT.format(model=str(tiny_llama)))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BACKEND ")]
    assert lines and "OpenBLAS 0." in lines[0], proc.stdout + proc.stderr


API = """
{before}
from mlxchat.engine.engine import Engine

engine = Engine()
info = engine.load_sync({model!r})
print("BACKEND", info.backend, flush=True)
"""


def test_python_api_engine_sets_up_the_process(tiny_llama: Path) -> None:
    proc = python(API.format(before="", model=str(tiny_llama)))
    assert proc.returncode == 0, proc.stderr
    assert "OpenBLAS 0." in proc.stdout, proc.stdout


def test_python_api_after_mlx_import_says_why_not(tiny_llama: Path) -> None:
    proc = python(API.format(before="import mlx.core", model=str(tiny_llama)))
    assert proc.returncode == 0, proc.stderr
    assert "bundled reference BLAS (MLX was imported before" in proc.stdout, proc.stdout


def test_setup_process_for_other_entry_points() -> None:
    """What a server (or any script) calls first; then MLX computes on OpenBLAS."""
    code = (
        "from mlxchat.engine.cpu import setup_process, describe_cpu_path\n"
        "setup_process()\n"
        "import mlx.core as mx\n"
        "print(describe_cpu_path())\n"
    )
    proc = python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("CPU (MLX ") and "OpenBLAS 0." in proc.stdout
