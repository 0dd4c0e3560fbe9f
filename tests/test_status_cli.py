"""What the CLI says about speed: prefill progress and the slow-BLAS hint on `generate -v`,
the `models` header; and when the engine gives the hint."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlxchat.engine import blas, cpu
from mlxchat.engine.blas_hint import SLOW_BLAS_HINT
from mlxchat.engine.engine import Engine


def mlxchat(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlxchat", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_generate_verbose_shows_prefill_progress(tiny_llama: Path) -> None:
    prompt = "The quick brown fox jumps over the lazy dog. " * 10
    proc = mlxchat("generate", "-m", str(tiny_llama), "-p", prompt, "--max-tokens", "4", "-v")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    first = next(line for line in lines if line.startswith("prefill "))
    total = int(re.fullmatch(r"prefill 0/(\d+)", first).group(1))
    assert total > 100
    assert re.search(rf"^4 tokens, .* \| prompt {total} tokens", proc.stderr, re.M)
    assert (SLOW_BLAS_HINT in proc.stderr) == (not blas.load().is_openblas)


def test_generate_without_verbose_stays_quiet(tiny_llama: Path) -> None:
    proc = mlxchat("generate", "-m", str(tiny_llama), "-p", "Hello", "--max-tokens", "4")
    assert proc.returncode == 0, proc.stderr
    assert "prefill" not in proc.stderr and SLOW_BLAS_HINT not in proc.stderr


def test_models_has_a_header_line() -> None:
    proc = mlxchat("models")
    assert proc.returncode == 0, proc.stderr
    header, first = proc.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "KIND", "SIZE", "PATH"]
    assert first.startswith("demo ")
    assert header.index("KIND") == first.index("demo", 1)  # the columns line up
    assert "demo-translate: gemma-3-270m, Gemma Terms of Use" in proc.stdout  # its license


def test_engine_gives_the_hint_only_on_the_reference_blas(
    tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine()
    try:
        info = engine.load_sync(str(tiny_llama))
        assert info.notice == ("" if blas.load().is_openblas else SLOW_BLAS_HINT)
        monkeypatch.setenv(cpu.ENV_SWITCH, "0")  # the fast path turned off on purpose
        assert engine.load_sync(str(tiny_llama)).notice == ""
    finally:
        engine.close()
