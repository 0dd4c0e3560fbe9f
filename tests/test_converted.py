"""Models that start at once, on a real quantized tiny model: the first load converts it to
float32 and keeps the copy (and the tokenizer); the next load maps them and computes the
same logits; a stale or damaged copy is removed with one line and rebuilt."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlxchat.engine import converted, cpu
from mlxchat.models.loader import load_model


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Path:
    """tiny_llama quantized to 4 bits (as a GGUF import or a 4-bit MLX model is)."""
    from mlx_lm import convert

    out = tmp_path_factory.mktemp("quantized") / "tiny-q4"
    convert(str(tiny_llama), str(out), quantize=True, q_group_size=32, q_bits=4)
    return out


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLXCHAT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(converted, "KEEP_AFTER", 0.0)  # keep even a tiny tokenizer
    return tmp_path / "cache"


def logits(model: object, tokenizer: object) -> list[float]:
    import mlx.core as mx

    ids = tokenizer.encode("The quick brown fox jumps")  # type: ignore[attr-defined]
    return model(mx.array([ids]))[0, -1].tolist()  # type: ignore[operator]


def must_not(*_: object, **__: object) -> None:
    raise AssertionError("converted again")


def test_the_second_load_maps_the_kept_copy(
    quantized: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer, info = load_model(str(quantized))
    assert info.dtype == "float32" and info.dequantized
    expected = logits(model, tokenizer)
    assert [source for source, _ in converted.copies()] == [str(quantized.resolve())]
    monkeypatch.setattr(cpu, "apply_cpu_policy", must_not)
    monkeypatch.setattr("mlx_lm.utils.load_tokenizer", must_not)
    again, kept_tokenizer, info = load_model(str(quantized))
    assert info.dtype == "float32" and info.dequantized
    assert logits(again, kept_tokenizer) == expected


def test_a_changed_source_or_a_damaged_copy_is_rebuilt(
    quantized: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model, tokenizer, _ = load_model(str(quantized))
    expected = logits(model, tokenizer)
    weights = converted.copy_dir(quantized) / converted.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-1000])
    with caplog.at_level(logging.WARNING, "mlxchat.engine"):
        model, tokenizer, _ = load_model(str(quantized))
    assert logits(model, tokenizer) == expected
    assert sum("float32 copy" in r.getMessage() for r in caplog.records) == 1
    caplog.clear()
    config = quantized / "config.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 10**9))
    with caplog.at_level(logging.WARNING, "mlxchat.engine"):
        model, tokenizer, _ = load_model(str(quantized))
    assert logits(model, tokenizer) == expected
    changed = [r.getMessage() for r in caplog.records if "source changed" in r.getMessage()]
    assert len(changed) == 2  # the float32 copy and the kept tokenizer
    assert weights.is_file()  # written again


def test_without_the_fast_path_nothing_is_kept(
    quantized: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_model(str(quantized), fast_cpu=False)
    assert all(not (Path(f) / converted.WEIGHTS).exists() for f in converted.copies_dir().glob("*"))


def mlxchat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlxchat", *args], capture_output=True, text=True, check=False
    )


def test_models_lists_and_rm_removes_a_model_with_its_copy(
    tiny_llama: Path, tmp_path: Path
) -> None:
    from test_gguf import write_quantized_gguf

    from mlxchat.models.loader import import_gguf

    source, _ = write_quantized_gguf(tiny_llama, tmp_path / "tiny-q.gguf", "llama")
    imported = import_gguf(source)
    load_model(str(source))  # quantized: converted, and the float32 copy kept
    assert [name for name, _ in converted.copies()] == [imported.path]
    assert "kept for fast starts: 1 model" in mlxchat("models").stdout
    done = mlxchat("models", "rm", str(source), "--yes")
    assert done.returncode == 0 and done.stdout.startswith(f"removed {source.resolve()}")
    assert converted.copies() == [] and not Path(imported.path).exists()
    missing = mlxchat("models", "rm", str(source), "--yes")
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("see `mlxchat models`")
    assert len(missing.stderr.strip().splitlines()) == 1
