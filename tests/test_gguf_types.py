"""GGUF tensor types: the converted values equal llama.cpp's dequantization (gguf-py).

Blocks are random bytes with chosen float16 scales (`test_gguf_archs.quant_bytes`), so
every bit pattern of the quantized values and 6-bit scales shows up.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf.quants import dequantize
from test_gguf_archs import float_tensor, quant_bytes

from mlxchat.engine import cpu
from mlxchat.engine.types import ModelLoadError
from mlxchat.models import gguf, gguf_archs, gguf_tensors
from mlxchat.models.gguf_tensors import TYPE_NAMES

AFFINE = [TYPE_NAMES[t] for t in gguf_tensors.AFFINE_TYPES]
WIDENED = [TYPE_NAMES[t] for t in gguf_tensors.DEQUANT_TYPES]
TYPE_IDS = {name: t for t, name in TYPE_NAMES.items()}
ROWS, COLS = 6, 512


def _random(qtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random blocks of `qtype` (ROWS x COLS values) and llama.cpp's float32 values."""
    raw = quant_bytes(np.random.default_rng(seed), qtype, ROWS, COLS, 0.05)
    return raw, dequantize(raw, GGMLQuantizationType[qtype])


@pytest.mark.parametrize("qtype", AFFINE)
def test_affine_types_hold_the_exact_values(qtype: str) -> None:
    raw, ref = _random(qtype)
    t = gguf_tensors.convert(raw, TYPE_IDS[qtype], (ROWS, COLS))
    assert t.quantized and t.scales is not None and t.biases is not None
    assert t.weight.dtype == np.uint32 and t.weight.shape == (ROWS, COLS * t.bits // 32)
    np.testing.assert_array_equal(gguf_tensors.unpack(t), ref)
    # MLX reads the same layout: its own dequantization (in float32) gives the same values,
    # and so does the CPU fast path's unpacking.
    w, s, b = mx.array(t.weight), mx.array(t.scales), mx.array(t.biases)
    f32 = mx.float32
    mlx_values = mx.dequantize(w, s.astype(f32), b.astype(f32), t.group_size, t.bits)
    np.testing.assert_array_equal(np.array(mlx_values), ref)
    assert t.group_size is not None and t.bits is not None
    cpu_values = cpu._affine_dequantize(w, s, b, t.group_size, t.bits)
    np.testing.assert_array_equal(np.array(cpu_values), ref)


@pytest.mark.parametrize("qtype", WIDENED)
def test_widened_types_are_float16_of_the_exact_values(qtype: str) -> None:
    raw, ref = _random(qtype)
    t = gguf_tensors.convert(raw, TYPE_IDS[qtype], (ROWS, COLS))
    assert not t.quantized and t.weight.dtype == np.float16
    np.testing.assert_array_equal(t.weight, ref.astype(np.float16))
    err = np.abs(gguf_tensors.unpack(t) - ref)
    assert err.max() <= 2**-11 * np.abs(ref).max()


def test_widened_values_too_large_for_float16_stay_float32() -> None:
    raw, _ = _random("Q6_K")
    raw[:, 208:210] = np.array([30000.0], np.float16).view(np.uint8)  # d of every block
    t = gguf_tensors.convert(raw, TYPE_IDS["Q6_K"], (ROWS, COLS))
    assert t.weight.dtype == np.float32
    np.testing.assert_array_equal(t.weight, dequantize(raw, GGMLQuantizationType.Q6_K))


def test_scales_are_float16_only_where_exact() -> None:
    """Legacy types' scales are float16 values already; Q4_K's d*sc need float32."""
    for qtype, dtype in [("Q4_0", np.float16), ("Q8_0", np.float16), ("Q4_K", np.float32)]:
        raw, _ = _random(qtype)
        t = gguf_tensors.convert(raw, TYPE_IDS[qtype], (ROWS, COLS))
        assert t.scales is not None and t.scales.dtype == dtype, qtype


def test_float_types() -> None:
    rng = np.random.default_rng(0)
    values = float_tensor(rng, "F32", (4, 64), 1.0)
    t = gguf_tensors.convert(values.view(np.uint8), TYPE_IDS["F32"], (4, 64))
    np.testing.assert_array_equal(t.weight, values)
    half = values.astype(np.float16)
    t = gguf_tensors.convert(half.view(np.uint8), TYPE_IDS["F16"], (4, 64))
    assert t.weight.dtype == np.float16
    np.testing.assert_array_equal(t.weight, half)
    bf16 = float_tensor(rng, "BF16", (4, 64), 1e30)  # far outside float16's range
    t = gguf_tensors.convert(bf16, TYPE_IDS["BF16"], (4, 64))
    assert t.bfloat16
    ref = dequantize(bf16, GGMLQuantizationType.BF16)
    np.testing.assert_array_equal(gguf_tensors.unpack(t), ref)
    as_mlx = mx.array(t.weight).view(mx.bfloat16).astype(mx.float32)
    np.testing.assert_array_equal(np.array(as_mlx), ref)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
def test_pack_is_mlx_layout(bits: int) -> None:
    u = np.random.default_rng(bits).integers(0, 2**bits, (3, 128)).astype(np.uint8)
    packed = mx.array(gguf_tensors.pack(u, bits))
    ones, zeros = mx.ones((3, 4)), mx.zeros((3, 4))
    np.testing.assert_array_equal(np.array(mx.dequantize(packed, ones, zeros, 32, bits)), u)
    q, s, b = mx.quantize(mx.array(u.astype(np.float32)), 32, bits)
    del s, b
    assert q.shape == packed.shape


# ---------------------------------------------------------------------------------------
# Files: truncation and unsupported types, for every block layout


def _write(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> Path:
    import gguf as gguf_py

    w = gguf_py.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("gpt2")
    for name, (qtype, data) in tensors.items():
        raw = {} if qtype == "F32" else {"raw_dtype": GGMLQuantizationType[qtype]}
        w.add_tensor(name, data, **raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("qtype", ["Q4_K", "Q6_K", "IQ4_XS", "IQ2_XXS"])
def test_truncated_tensor_data_is_reported(qtype: str, tmp_path: Path) -> None:
    if qtype == "IQ2_XXS":  # unsupported, still checked for truncation (66 bytes a block)
        raw = np.random.default_rng(0).integers(0, 256, (8, 2 * 66), dtype=np.uint8)
    else:
        raw = quant_bytes(np.random.default_rng(0), qtype, 8, 512, 0.05)
    path = _write(tmp_path / "t.gguf", {"token_embd.weight": (qtype, raw)})
    data = path.read_bytes()
    gguf.read_header(path)
    (tmp_path / "short.gguf").write_bytes(data[:-100])
    with pytest.raises(ModelLoadError, match="extends past the end"):
        gguf.read_header(tmp_path / "short.gguf")


def test_unsupported_type_names_the_type(tmp_path: Path) -> None:
    raw = np.random.default_rng(0).integers(0, 256, (8, 2 * 66), dtype=np.uint8)
    path = _write(tmp_path / "iq2.gguf", {"token_embd.weight": ("IQ2_XXS", raw)})
    with pytest.raises(ModelLoadError) as err:
        gguf.check_supported(path, gguf.read_header(path))
    assert "token_embd.weight has GGUF type IQ2_XXS" in str(err.value)
    assert "Q4_K, Q5_K, Q3_K, IQ4_NL, IQ4_XS, Q6_K, Q2_K" in str(err.value)


# ---------------------------------------------------------------------------------------
# Llama 3 RoPE frequency factors


class _Header:
    architecture = "llama"

    def __init__(self, values: dict[str, object]) -> None:
        self.values = values

    def arch_value(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)


def test_llama3_rope_freqs_become_rope_scaling() -> None:
    config = {"hidden_size": 256, "num_attention_heads": 4, "rope_theta": 500000.0}
    freqs = gguf_archs.llama3_factors(64, 500000.0, 8.0, 1.0, 4.0, 8192)
    assert freqs.max() > 1.0 and 1.0 in freqs and len(set(freqs.tolist())) > 3  # all regimes
    scaling = gguf_archs._llama3_scaling(_Header({}), config, freqs)  # type: ignore[arg-type]
    assert scaling == {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    other = gguf_archs.llama3_factors(64, 500000.0, 8.0, 1.0, 2.0, 8192)
    with pytest.raises(ModelLoadError, match="not Llama 3's"):
        gguf_archs._llama3_scaling(_Header({}), config, other)  # type: ignore[arg-type]
    with_metadata = _Header({"rope.scaling.high_freq_factor": 2.0})
    assert gguf_archs._llama3_scaling(with_metadata, config, other)["high_freq_factor"] == 2.0  # type: ignore
    ones = np.ones(32, np.float32)
    assert gguf_archs._llama3_scaling(_Header({}), config, ones) is None  # type: ignore[arg-type]
