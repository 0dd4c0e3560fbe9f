"""The CPU fast path: OpenBLAS preloaded before MLX, float32 weights on the CPU."""

from __future__ import annotations

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

from mlxchat.engine import cpu

ROOT = Path(__file__).resolve().parents[1]
OPENBLAS = cpu._find_openblas() if sys.platform.startswith("linux") else None
needs_openblas = pytest.mark.skipif(OPENBLAS is None, reason="no system OpenBLAS")


def _run(code: str, **env: str) -> dict:
    """Run `code` in a fresh interpreter (MLX not yet imported); it prints one JSON line."""
    environ = {k: v for k, v in os.environ.items() if k != "MLXCHAT_CPU_FAST"}
    environ.update(PYTHONPATH=str(ROOT), **env)
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


PRELOAD = """
import json, sys, time
start = time.perf_counter()
import mlxchat.engine
from mlxchat.engine import cpu
print(json.dumps({"blas": cpu.preloaded_blas(), "seconds": time.perf_counter() - start,
                  "mlx_imported": "mlx.core" in sys.modules}))
"""


@needs_openblas
def test_engine_import_preloads_openblas_quickly_without_mlx() -> None:
    result = _run(PRELOAD)
    assert result["blas"] == OPENBLAS
    assert result["mlx_imported"] is False
    assert result["seconds"] < 0.25  # typically 10-20 ms


def test_preload_switched_off_by_env() -> None:
    assert _run(PRELOAD, MLXCHAT_CPU_FAST="0")["blas"] is None


def test_preload_skipped_when_mlx_cuda_installed(tmp_path: Path) -> None:
    (tmp_path / "mlx_cuda_12-0.32.4.dist-info").mkdir()
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n" + PRELOAD
    assert _run(code)["blas"] is None


def test_preload_skipped_after_mlx_import() -> None:
    code = "import mlx.core\n" + PRELOAD
    assert _run(code)["blas"] is None
    assert cpu.preload_blas() in (None, OPENBLAS)  # here: conftest imported the engine first


MATMUL = """
import json, time
{preload}
import mlx.core as mx
a = mx.random.normal((512, 512)); mx.eval(a)
best = 1e9
for _ in range(5):
    t = time.perf_counter(); mx.eval(a @ a); best = min(best, time.perf_counter() - t)
print(json.dumps({{"seconds": best}}))
"""


@needs_openblas
def test_openblas_makes_mlx_matmul_faster() -> None:
    """The point of the preload: MLX's float32 matmul runs on OpenBLAS (about 35x here)."""
    slow = _run(MATMUL.format(preload=""))["seconds"]
    fast = _run(MATMUL.format(preload="import mlxchat.engine"))["seconds"]
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
    assert ("OpenBLAS" in text) == (cpu.preloaded_blas() is not None)
    assert "float32 (converted at load)" in text
