"""The CPU fast path: OpenBLAS loaded before MLX (pip, system, bundled), float32 weights."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from mlx_lm.utils import load_model as mlx_load_model

from mlxchat.engine import blas, cpu

ROOT = Path(__file__).resolve().parents[1]
LINUX = sys.platform.startswith("linux")
PIP = blas.pip_candidates() if LINUX else []
SYSTEM = blas.system_candidates() if LINUX else []
needs_pip = pytest.mark.skipif(not PIP, reason=f"{blas.PIP_PACKAGE} is not installed")
needs_openblas = pytest.mark.skipif(not (PIP or SYSTEM), reason="no OpenBLAS on this machine")
linux_only = pytest.mark.skipif(not LINUX, reason="the BLAS is chosen on Linux only")


def _run(code: str, **env: str) -> dict:
    """Run `code` in a fresh interpreter (MLX not yet imported); it prints one JSON line."""
    environ = {k: v for k, v in os.environ.items() if k not in ("MLXCHAT_CPU_FAST", "MLXCHAT_BLAS")}
    environ.update(PYTHONPATH=str(ROOT), **env)
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


SETUP = """
import dataclasses, json, sys, time
{before}
start = time.perf_counter()
from mlxchat.engine import blas, cpu
{patch}
result = dataclasses.asdict(cpu.setup_process())
result.update(seconds=time.perf_counter() - start, mlx_imported="mlx.core" in sys.modules,
              described=cpu.describe_blas())
print(json.dumps(result))
"""


def _setup(before: str = "", patch: str = "", **env: str) -> dict:
    return _run(SETUP.format(before=before, patch=patch), **env)


@needs_pip
def test_setup_loads_the_pip_openblas_without_importing_mlx(tmp_path: Path) -> None:
    result = _setup(MLXCHAT_CACHE_DIR=str(tmp_path))
    assert result["kind"] == "pip" and result["path"] == PIP[0]
    assert result["mlx_imported"] is False
    assert result["config"].startswith("OpenBLAS ") and result["version"]
    assert result["corename"] and result["threads"] >= 1
    assert result["described"].startswith(f"OpenBLAS {result['version']} (")
    assert result["seconds"] < 2  # typically 0.1 s (loading a 41 MB library)


@needs_pip
def test_gfortran_links_only_in_the_cache_dir(tmp_path: Path) -> None:
    """Without a system libgfortran.so.5, mlx-cpu's bundled one is linked in the cache dir."""
    cache = tmp_path / "cache"
    result = _setup(MLXCHAT_CACHE_DIR=str(cache))
    assert result["kind"] == "pip"
    import ctypes.util

    made = sorted(p.name for p in cache.glob("blas/*/*"))
    if ctypes.util.find_library("gfortran") is None:  # this machine needs the links
        assert "libgfortran.so.5" in made and Path(PIP[0]).name in made
        assert all(p.is_symlink() for p in cache.glob("blas/*/*"))
        assert _setup(MLXCHAT_CACHE_DIR=str(cache))["kind"] == "pip"  # reuses the folder
    else:
        assert made == []


@linux_only
def test_switched_off_by_env() -> None:
    result = _setup(MLXCHAT_CPU_FAST="0")
    assert result["kind"] == "bundled" and result["path"] is None
    assert "MLXCHAT_CPU_FAST=0" in result["described"]


@linux_only
def test_bundled_by_choice() -> None:
    result = _setup(MLXCHAT_BLAS="bundled")
    assert result["kind"] == "bundled"
    assert result["described"] == "bundled reference BLAS (MLXCHAT_BLAS=bundled)"


@linux_only
def test_missing_library_falls_back_to_bundled(tmp_path: Path) -> None:
    missing = str(tmp_path / "libopenblas.so.0")
    result = _setup(MLXCHAT_BLAS=missing)
    assert result["kind"] == "bundled"
    assert missing in result["note"] and "No such file" in result["note"]


@linux_only
def test_library_that_fails_to_load_falls_back_to_bundled(tmp_path: Path) -> None:
    broken = tmp_path / "libopenblas.so.0"
    broken.write_bytes(b"this is not a shared library\n" * 100)
    result = _setup(MLXCHAT_BLAS=str(broken))
    assert result["kind"] == "bundled" and str(broken) in result["note"]
    assert result["mlx_imported"] is False


@linux_only
def test_a_blas_that_is_not_openblas_is_refused() -> None:
    """mlx-cpu's own reference BLAS loads fine but is not what the fast path wants."""
    reference = next(p for p in blas.bundled_gfortran()[0].parent.glob("libblas*"))
    result = _setup(MLXCHAT_BLAS=str(reference))
    assert result["kind"] == "bundled"
    assert "not an OpenBLAS that MLX can use" in result["note"]


@needs_pip
def test_a_broken_pip_library_falls_back_to_the_system_one(tmp_path: Path) -> None:
    """pip first, then system: here the pip candidate is broken and the real one plays system."""
    broken = tmp_path / "libopenblasp-r0.3.99.so"
    broken.write_bytes(b"\0" * 4096)
    patch = (
        f"blas.pip_candidates = lambda: [{str(broken)!r}]\n"
        f"blas.system_candidates = lambda: [{PIP[0]!r}]"
    )
    result = _setup(patch=patch, MLXCHAT_CACHE_DIR=str(tmp_path / "cache"))
    assert result["kind"] == "system" and result["path"] == PIP[0]
    assert str(broken) in result["note"]


@linux_only
def test_nothing_found_falls_back_to_bundled() -> None:
    patch = "blas.pip_candidates = lambda: []\nblas.system_candidates = lambda: []"
    result = _setup(patch=patch)
    assert result["kind"] == "bundled" and result["note"] == "no OpenBLAS found"


@needs_openblas
def test_thread_count_follows_the_environment() -> None:
    assert _setup(OPENBLAS_NUM_THREADS="1")["threads"] == 1
    assert _setup()["threads"] == blas.default_threads() == max(1, blas.usable_cpus() - 1)


@linux_only
def test_skipped_when_mlx_cuda_installed(tmp_path: Path) -> None:
    (tmp_path / "mlx_cuda_12-0.32.4.dist-info").mkdir()
    result = _setup(before=f"sys.path.insert(0, {str(tmp_path)!r})")
    assert result["kind"] == "bundled" and result["note"] == "mlx-cuda installed"


@linux_only
def test_too_late_after_mlx_import_says_so() -> None:
    result = _setup(before="import mlx.core")
    assert result["kind"] == "bundled"
    assert "MLX was imported before" in result["described"]
    assert cpu.setup_process() is cpu.setup_process()  # once per process


def test_machine_busy_from_the_load_average(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (11.0, 12.0, 11.0))
    assert cpu.machine_busy()
    monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 1.2, 0.5))  # this process alone
    assert not cpu.machine_busy()


def test_usable_cpus_follow_the_cgroup_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert blas.cgroup_cpu_quota(str(tmp_path)) == pytest.approx(1.5)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert blas.cgroup_cpu_quota(str(tmp_path)) is None
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert blas.cgroup_cpu_quota(str(tmp_path)) == pytest.approx(1.0)
    assert 1 <= blas.usable_cpus() <= (os.cpu_count() or 1)


MATMUL = """
import json, time
from mlxchat.engine.cpu import setup_process
setup_process()
import mlx.core as mx
a = mx.random.normal((512, 512)); mx.eval(a)
best = 1e9
for _ in range(5):
    t = time.perf_counter(); mx.eval(a @ a); best = min(best, time.perf_counter() - t)
print(json.dumps({"seconds": best}))
"""


@needs_openblas
def test_openblas_makes_mlx_matmul_faster() -> None:
    """The point of the preload: MLX's float32 matmul runs on OpenBLAS (20-40x here).

    One OpenBLAS thread: on a busy machine two threads can wait on each other for longer
    than the product takes."""
    slow = _run(MATMUL, MLXCHAT_BLAS="bundled")["seconds"]
    fast = _run(MATMUL, OPENBLAS_NUM_THREADS="1")["seconds"]
    assert slow / fast > 3, (slow, fast)


# ---------------------------------------------------------------------------------------
# apply_cpu_policy


def _quantized(tiny: Path, bits: int = 4) -> nn.Module:
    model, _ = mlx_load_model(tiny)
    nn.quantize(model, group_size=32, bits=bits)
    mx.eval(model.parameters())
    return model


def _logits(model: nn.Module) -> np.ndarray:
    return np.array(model(mx.array([[3, 14, 15, 92, 65, 35]])).astype(mx.float32))


def _kinds(model: nn.Module) -> set[str]:
    return {type(m).__name__ for _, m in model.named_modules()}


@pytest.mark.parametrize("bits", [4, 8])
def test_policy_dequantizes_to_float32(tiny_llama: Path, bits: int) -> None:
    model = _quantized(tiny_llama, bits)
    expected = _logits(model)  # float32 scales: MLX's quantized kernels compute exactly
    assert cpu.apply_cpu_policy(model, True) is True
    assert not _kinds(model) & {"QuantizedLinear", "QuantizedEmbedding"}
    assert {v.dtype for _, v in tree_flatten(model.parameters())} == {mx.float32}
    np.testing.assert_allclose(_logits(model), expected, atol=1e-4, rtol=1e-4)


def test_policy_casts_half_precision(tiny_llama: Path) -> None:
    model, _ = mlx_load_model(tiny_llama)
    model.set_dtype(mx.bfloat16)
    assert cpu.apply_cpu_policy(model, True) is True
    assert {v.dtype for _, v in tree_flatten(model.parameters())} == {mx.float32}


def test_policy_leaves_float32_alone(tiny_llama: Path) -> None:
    model, _ = mlx_load_model(tiny_llama)
    assert cpu.apply_cpu_policy(model, True) is False


def test_policy_switches(tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _quantized(tiny_llama)
    assert cpu.apply_cpu_policy(model, False) is False
    monkeypatch.setenv("MLXCHAT_CPU_FAST", "0")
    assert cpu.apply_cpu_policy(model, True) is False
    monkeypatch.delenv("MLXCHAT_CPU_FAST")
    monkeypatch.setattr(cpu, "_total_ram", lambda: 1_000_000)  # too big for this "machine"
    assert cpu.apply_cpu_policy(model, True) is False
    assert "QuantizedLinear" in _kinds(model)


def test_policy_never_on_gpu(tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "on_cpu", lambda: False)
    model = _quantized(tiny_llama)
    assert cpu.apply_cpu_policy(model, True) is False
    assert "QuantizedLinear" in _kinds(model)


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
def test_affine_dequantize_matches_mlx(bits: int) -> None:
    w = mx.random.normal((48, 128), key=mx.random.key(bits))
    q, scales, biases = mx.quantize(w, group_size=32, bits=bits)
    expected = mx.dequantize(q, scales, biases, group_size=32, bits=bits)
    got = cpu._affine_dequantize(q, scales, biases, 32, bits)
    assert got.dtype == mx.float32 and got.shape == w.shape
    np.testing.assert_allclose(np.array(got), np.array(expected), atol=1e-5)


def test_describe_cpu_path() -> None:
    text = cpu.describe_cpu_path(True)
    assert text.startswith("CPU (MLX ")
    assert ("OpenBLAS" in text) == cpu.setup_process().is_openblas
    assert "float32 (converted at load)" in text


# ---------------------------------------------------------------------------------------
# OpenBLAS threads per phase, and the engine's answers against raw mlx-lm


def test_threads_follow_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = cpu.setup_process()
    if not chosen.is_openblas:
        assert cpu.threads_for() == 0
        return
    monkeypatch.setattr(cpu, "machine_busy", lambda: False)
    assert cpu.threads_for() == chosen.threads == blas.default_threads()
    monkeypatch.setattr(cpu, "machine_busy", lambda: True)
    assert cpu.threads_for() == 1
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")  # the user's choice holds
    assert cpu.threads_for() == 0


def _greedy_raw(model: nn.Module, tokenizer: object, prompt: list[int], n: int) -> list[int]:
    from mlx_lm.generate import stream_generate

    return [r.token for r in stream_generate(model, tokenizer, mx.array(prompt), max_tokens=n)]


def _engine_matches_raw(name: str, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlxchat.engine.engine import Engine
    from mlxchat.engine.generation import encode_prompt
    from mlxchat.engine.types import SamplingParams
    from mlxchat.models.loader import load_model

    prompt = "Write a short poem about the sea, then explain it."
    model, tokenizer, _ = load_model(name)
    tokens = encode_prompt(tokenizer, prompt, True)
    chosen = cpu.setup_process()
    blas.set_threads(chosen.threads)
    expected = _greedy_raw(model, tokenizer, tokens, n)
    switching = chosen.is_openblas and not blas.user_threads()
    if switching:  # as on a machine with more CPUs: 2 threads unless busy
        monkeypatch.setattr(blas, "_loaded", dataclasses.replace(chosen, threads=2))
    calls: list[int] = []
    busy = [True]
    monkeypatch.setattr(cpu, "machine_busy", lambda: busy[0])
    monkeypatch.setattr(blas, "set_threads", lambda k: calls.append(k) or blas_set(k))
    engine = Engine()
    engine.load_sync(name)
    params = SamplingParams(temp=0.0, max_tokens=n)
    results = []
    try:
        for now in (True, False):  # a busy machine (1 thread), then a quiet one
            busy[0] = now
            results.append(engine.generate_sync(prompt, params))
    finally:
        engine.close()
    for result in results:
        # the engine does not hand out the EOS token that ends an answer; mlx-lm does
        eos = 0 if result.finish_reason == "length" else 1
        assert result.tokens == expected[: len(expected) - eos]
    if switching:
        assert calls == ([] if chosen.threads == 1 else [1]) + [2]
    blas_set(chosen.threads)


blas_set = blas.set_threads


def test_engine_greedy_tokens_match_raw_mlx_lm(
    tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _engine_matches_raw(str(tiny_llama), 40, monkeypatch)


@pytest.mark.demo
def test_engine_greedy_tokens_match_raw_mlx_lm_on_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real model in float32, on 1 OpenBLAS thread and on all: the same tokens."""
    _engine_matches_raw("demo", 48, monkeypatch)
