"""GGUF import: fixtures written the way llama.cpp writes real files, checked against the source.

The fixtures are tiny random llama/qwen2 models (tests/tiny_models.py) written to GGUF with
llama.cpp's conventions: GGUF tensor names, `llama` Q/K rows permuted for interleaved RoPE,
the tokenizer as `tokenizer.ggml.*` arrays. The imported model must give the source model's
logits, and its tokenizer the source tokenizer's ids.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm import load as mlx_load
from mlx_lm.utils import load_model as mlx_load_model
from mlx_lm.utils import load_tokenizer

from mlxchat.engine import cpu
from mlxchat.engine.types import ModelLoadError
from mlxchat.models import gguf

# GGML type ids used by the fixtures.
F32, F16, Q4_0, Q4_1, Q5_0, Q8_0, IQ2_XXS, BF16 = 0, 1, 2, 3, 6, 8, 16, 30

_LAYER = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_TOP = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}

TEXTS = [
    "Hello, how are you today?",
    "The capital of France is Paris. 12345 + 678 = 13023",
    "def add(a, b):\n    return a + b\n\n\n",
    "Le chat est sur la table — ça va? 東京 🙂",
    "<|im_start|>user\nWhat is this?<|im_end|>\n",
    "   leading spaces and trailing   ",
]


# ---------------------------------------------------------------------------------------
# Writing fixtures


def gguf_name(hf_name: str) -> str:
    """The GGUF tensor name llama.cpp gives a Hugging Face/mlx-lm parameter name."""
    module, _, suffix = hf_name.rpartition(".")
    if module.startswith("model.layers."):
        _, _, index, rest = module.split(".", 3)
        return f"blk.{index}.{_LAYER[rest]}.{suffix}"
    return f"{_TOP[module]}.{suffix}"


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's `permute` for Q/K of the llama architecture (HF halves -> interleaved)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def source_tensors(src: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The source model's weights (float32 numpy, HF names) and its config."""
    config = json.loads((src / "config.json").read_text())
    weights = {
        k: np.array(v.astype(mx.float32))
        for k, v in mx.load(str(src / "model.safetensors")).items()
    }
    return weights, config


def gguf_tensors(src: Path, arch: str) -> dict[str, np.ndarray]:
    """Source weights under GGUF names, permuted as llama.cpp does for `llama` files."""
    weights, config = source_tensors(src)
    out = {}
    for name, w in weights.items():
        if arch == "llama" and ".q_proj." in name:
            w = permute(w, config["num_attention_heads"])
        elif arch == "llama" and ".k_proj." in name:
            w = permute(w, config["num_key_value_heads"])
        out[gguf_name(name)] = w
    return out


def gguf_metadata(src: Path, arch: str, pre: str) -> dict[str, Any]:
    """Metadata as llama.cpp's converter writes it (typed as numpy scalars/arrays)."""
    config = json.loads((src / "config.json").read_text())
    tok_json = json.loads((src / "tokenizer.json").read_text())
    tok_config = json.loads((src / "tokenizer_config.json").read_text())
    vocab: dict[str, int] = dict(tok_json["model"]["vocab"])
    special = set()
    for added in tok_json["added_tokens"]:
        vocab[added["content"]] = added["id"]
        if added["special"]:
            special.add(added["content"])
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert [vocab[t] for t in tokens] == list(range(len(tokens)))
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok_json["model"]["merges"]]
    u32, f32 = np.uint32, np.float32
    md: dict[str, Any] = {
        "general.architecture": arch,
        "general.name": f"tiny-{arch}",
        "general.file_type": u32(0),
        f"{arch}.context_length": u32(config["max_position_embeddings"]),
        f"{arch}.embedding_length": u32(config["hidden_size"]),
        f"{arch}.block_count": u32(config["num_hidden_layers"]),
        f"{arch}.feed_forward_length": u32(config["intermediate_size"]),
        f"{arch}.attention.head_count": u32(config["num_attention_heads"]),
        f"{arch}.attention.head_count_kv": u32(config["num_key_value_heads"]),
        f"{arch}.rope.freq_base": f32(config["rope_theta"]),
        f"{arch}.attention.layer_norm_rms_epsilon": f32(config["rms_norm_eps"]),
        f"{arch}.rope.dimension_count": u32(config["hidden_size"] // config["num_attention_heads"]),
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": pre,
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": np.array([3 if t in special else 1 for t in tokens], np.int32),
        "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.eos_token_id": u32(vocab[tok_config["eos_token"]]),
        "tokenizer.ggml.padding_token_id": u32(vocab[tok_config["pad_token"]]),
        "tokenizer.ggml.add_bos_token": np.bool_(False),
        "tokenizer.chat_template": tok_config["chat_template"],
    }
    return md


def _mx_metadata(md: dict[str, Any]) -> dict[str, Any]:
    return {k: mx.array(v) if isinstance(v, np.generic | np.ndarray) else v for k, v in md.items()}


def write_float_gguf(
    src: Path, out: Path, arch: str, *, pre: str = "gpt2", f16: bool = False
) -> Path:
    """Write `src` as an F32 (or F16 matrices) GGUF file with `mx.save_gguf`."""
    tensors = {}
    for name, w in gguf_tensors(src, arch).items():
        a = mx.array(w)
        tensors[name] = a.astype(mx.float16) if f16 and w.ndim == 2 else a
    mx.save_gguf(str(out), tensors, _mx_metadata(gguf_metadata(src, arch, pre)))
    return out


# --- a raw GGUF v3 writer for quantized tensors (mx.save_gguf writes only float/int types)


def _kv(key: str, value: Any) -> bytes:
    def s(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    if isinstance(value, str):
        return s(key) + struct.pack("<I", 8) + s(value)
    if isinstance(value, list):
        return s(key) + struct.pack("<IIQ", 9, 8, len(value)) + b"".join(s(v) for v in value)
    if isinstance(value, np.ndarray):
        assert value.dtype == np.int32
        return s(key) + struct.pack("<IIQ", 9, 5, len(value)) + value.tobytes()
    types = {np.uint32: (4, "I"), np.int32: (5, "i"), np.float32: (6, "f"), np.bool_: (7, "?")}
    vtype, fmt = types[type(value)]
    return s(key) + struct.pack("<I", vtype) + struct.pack("<" + fmt, value)


def write_raw_gguf(
    out: Path, metadata: dict[str, Any], tensors: dict[str, tuple[int, tuple[int, ...], bytes]]
) -> Path:
    """Write a GGUF v3 file; `tensors` maps name -> (GGML type, numpy-order shape, raw bytes)."""
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    header += b"".join(_kv(k, v) for k, v in metadata.items())
    offset, blobs = 0, []
    for name, (ttype, shape, data) in tensors.items():
        encoded = name.encode()
        header += struct.pack("<Q", len(encoded)) + encoded + struct.pack("<I", len(shape))
        header += b"".join(struct.pack("<Q", d) for d in reversed(shape))
        header += struct.pack("<IQ", ttype, offset)
        padded = data + b"\0" * (-len(data) % 32)
        blobs.append(padded)
        offset += len(padded)
    header += b"\0" * (-len(header) % 32)
    out.write_bytes(header + b"".join(blobs))
    return out


def quantize(w: np.ndarray, ttype: int) -> tuple[bytes, np.ndarray]:
    """Quantize rows of `w` like ggml (blocks of 32); return the bytes and dequantized values."""
    x = w.astype(np.float32).reshape(-1, 32)
    if ttype == Q8_0:
        d = (np.abs(x).max(axis=1) / 127).astype(np.float16)
        q = np.round(x / np.where(d == 0, 1, d.astype(np.float32))[:, None]).astype(np.int8)
        raw = np.concatenate([d.view(np.uint8).reshape(-1, 2), q.view(np.uint8)], axis=1)
        deq = q.astype(np.float32) * d.astype(np.float32)[:, None]
    elif ttype in (Q4_0, Q4_1):
        if ttype == Q4_0:
            extreme = x[np.arange(len(x)), np.abs(x).argmax(axis=1)]
            d32, m32 = extreme / -8, np.zeros(len(x), np.float32)
            q = np.minimum(15, np.trunc(x / np.where(d32 == 0, 1, d32)[:, None] + 8.5))
        else:
            m32 = x.min(axis=1)
            d32 = (x.max(axis=1) - m32) / 15
            q = np.minimum(
                15, np.trunc((x - m32[:, None]) / np.where(d32 == 0, 1, d32)[:, None] + 0.5)
            )
        q = q.astype(np.uint8)
        d, m = d32.astype(np.float16), m32.astype(np.float16)
        packed = q[:, :16] | (q[:, 16:] << 4)
        parts = [d.view(np.uint8).reshape(-1, 2)]
        if ttype == Q4_1:
            parts.append(m.view(np.uint8).reshape(-1, 2))
        raw = np.concatenate([*parts, packed], axis=1)
        offset = m.astype(np.float32) if ttype == Q4_1 else -8 * d.astype(np.float32)
        deq = q.astype(np.float32) * d.astype(np.float32)[:, None] + offset[:, None]
    else:
        raise ValueError(ttype)
    return raw.tobytes(), deq.reshape(w.shape)


def write_quantized_gguf(src: Path, out: Path, arch: str) -> tuple[Path, dict[str, np.ndarray]]:
    """A mixed-quantization file like real ones: Q8_0 embeddings, Q4_0/Q4_1 layers, F32 norms.

    Returns the path and the dequantized weights under HF names (the reference).
    """
    weights, config = source_tensors(src)
    heads = {".q_proj.": config["num_attention_heads"], ".k_proj.": config["num_key_value_heads"]}
    reference, tensors = {}, {}
    for i, (name, w) in enumerate(sorted(weights.items())):
        stored = w
        for part, n in heads.items():
            if arch == "llama" and part in name:
                stored = permute(w, n)  # rows only: quantizing commutes with it
        if w.ndim == 2:
            ttype = Q8_0 if "embed" in name or "lm_head" in name else (Q4_0, Q4_1)[i % 2]
            raw = quantize(stored, ttype)[0]
            reference[name] = quantize(w, ttype)[1]
        else:
            ttype, raw, reference[name] = F32, stored.astype(np.float32).tobytes(), w
        tensors[gguf_name(name)] = (ttype, w.shape, raw)
    metadata = gguf_metadata(src, arch, "gpt2")
    metadata["general.file_type"] = np.uint32(3)
    return write_raw_gguf(out, metadata, tensors), reference


def write_bf16_gguf(src: Path, out: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A llama file with BF16 matrices (F32 norms); returns it and the BF16 values as float32."""
    config = json.loads((src / "config.json").read_text())
    heads = {".q_proj.": config["num_attention_heads"], ".k_proj.": config["num_key_value_heads"]}
    reference, tensors = {}, {}
    for name, w in source_tensors(src)[0].items():
        if w.ndim == 2:
            top = (w.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
            reference[name] = (top.astype(np.uint32) << 16).view(np.float32)
            stored, ttype = top, BF16
        else:
            reference[name] = stored = w.astype(np.float32)
            ttype = F32
        for part, n in heads.items():
            if part in name:
                stored = permute(stored, n)
        tensors[gguf_name(name)] = (ttype, w.shape, stored.tobytes())
    return write_raw_gguf(out, gguf_metadata(src, "llama", "gpt2"), tensors), reference


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty mlxchat cache for the test."""
    monkeypatch.setenv("MLXCHAT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


@pytest.fixture(scope="module")
def llama_f32(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_float_gguf(
        tiny_llama, tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf", "llama"
    )


def _logits(model: Any, ids: list[int]) -> np.ndarray:
    return np.array(model(mx.array([ids])).astype(mx.float32))


IDS = [5, 17, 42, 99, 3, 250, 7, 7, 120, 64, 31, 200]


def _convert(path: Path, cache: Path) -> Path:
    out = gguf.convert_cached(path)
    assert out.parent == cache
    return out


# ---------------------------------------------------------------------------------------
# Logits


def test_llama_f32_matches_source_logits(tiny_llama: Path, llama_f32: Path, cache: Path) -> None:
    converted = _convert(llama_f32, cache)
    ref_model, _ = mlx_load_model(tiny_llama)
    model, config = mlx_load_model(converted)
    assert "quantization" not in config and config["tie_word_embeddings"] is False
    ref = _logits(ref_model, IDS)
    np.testing.assert_allclose(_logits(model, IDS), ref, atol=1e-4, rtol=1e-5)


def test_llama_without_unpermute_would_differ(tiny_llama: Path, llama_f32: Path) -> None:
    """The fixture really is permuted: loading its tensors as they are changes the logits."""
    weights = mx.load(str(llama_f32))
    ref_model, _ = mlx_load_model(tiny_llama)
    raw_model, _ = mlx_load_model(tiny_llama)
    q = weights["blk.0.attn_q.weight"]
    raw_model.model.layers[0].self_attn.q_proj.weight = q
    assert not np.allclose(_logits(raw_model, IDS), _logits(ref_model, IDS), atol=1e-3)


def test_qwen2_f32_matches_source_logits(tiny_qwen: Path, tmp_path: Path, cache: Path) -> None:
    path = write_float_gguf(tiny_qwen, tmp_path / "tiny-qwen.gguf", "qwen2", pre="qwen2")
    converted = _convert(path, cache)
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["tie_word_embeddings"] is True
    ref_model, _ = mlx_load_model(tiny_qwen)
    model, _ = mlx_load_model(converted)
    np.testing.assert_allclose(_logits(model, IDS), _logits(ref_model, IDS), atol=1e-4, rtol=1e-5)


def test_f16_tensors(tiny_llama: Path, tmp_path: Path, cache: Path) -> None:
    path = write_float_gguf(tiny_llama, tmp_path / "f16.gguf", "llama", f16=True)
    model, _ = mlx_load_model(_convert(path, cache))
    ref_model, _ = mlx_load_model(tiny_llama)
    np.testing.assert_allclose(_logits(model, IDS), _logits(ref_model, IDS), atol=0.05, rtol=0.01)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_quantized_file_stays_quantized_and_matches(
    arch: str, tiny_llama: Path, tiny_qwen: Path, tmp_path: Path, cache: Path
) -> None:
    src = tiny_llama if arch == "llama" else tiny_qwen
    path, reference = write_quantized_gguf(src, tmp_path / f"q-{arch}.gguf", arch)
    converted = _convert(path, cache)
    model, config = mlx_load_model(converted)
    quant = config["quantization"]
    assert quant["group_size"] == 32 and quant["bits"] == 4
    assert quant["model.embed_tokens"] == {"group_size": 32, "bits": 8}
    layer = model.model.layers[0]
    assert type(layer.self_attn.q_proj).__name__ == "QuantizedLinear"
    assert type(model.model.embed_tokens).__name__ == "QuantizedEmbedding"
    ref_model, _ = mlx_load_model(src)
    ref_model.load_weights([(k, mx.array(v)) for k, v in reference.items()])
    ref = _logits(ref_model, IDS)
    # As stored, MLX computes quantized layers with float16 scales: close, not exact.
    np.testing.assert_allclose(_logits(model, IDS), ref, atol=0.1, rtol=0.05)
    # Unpacked to float32, the converted tensors hold exactly the values of the file.
    cpu.dequantize_float32(model)
    np.testing.assert_allclose(_logits(model, IDS), ref, atol=1e-4, rtol=1e-5)


def test_bf16_tensors(tiny_llama: Path, tmp_path: Path, cache: Path) -> None:
    path, reference = write_bf16_gguf(tiny_llama, tmp_path / "bf16.gguf")
    model, _ = mlx_load_model(_convert(path, cache))
    assert model.model.layers[0].mlp.up_proj.weight.dtype == mx.bfloat16  # kept as stored
    ref_model, _ = mlx_load_model(tiny_llama)
    ref_model.load_weights([(k, mx.array(v)) for k, v in reference.items()])
    assert cpu.apply_cpu_policy(model, True)  # float32: BF16 values are exact in it
    np.testing.assert_allclose(_logits(model, IDS), _logits(ref_model, IDS), atol=1e-4, rtol=1e-5)


# ---------------------------------------------------------------------------------------
# Tokenizer and chat template


@pytest.mark.parametrize("pre", ["gpt2", "smollm", "qwen2", "llama-bpe"])
def test_tokenizer_matches_source(pre: str, tiny_llama: Path, tmp_path: Path, cache: Path) -> None:
    """Same ids as the source tokenizer set up with the HF pre-tokenizer of that family."""
    src = tmp_path / "src"
    src.mkdir()
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (src / f).write_text((tiny_llama / f).read_text())
    tok_json = json.loads((src / "tokenizer.json").read_text())
    tok_json["pre_tokenizer"] = _hf_pre_tokenizer(pre)
    if pre == "llama-bpe":
        tok_json["model"]["ignore_merges"] = True
    (src / "tokenizer.json").write_text(json.dumps(tok_json))
    (src / "config.json").write_text((tiny_llama / "config.json").read_text())
    (src / "model.safetensors").write_bytes((tiny_llama / "model.safetensors").read_bytes())
    path = write_float_gguf(src, tmp_path / "t.gguf", "llama", pre=pre)
    converted = _convert(path, cache)
    ref = load_tokenizer(src)
    tok = load_tokenizer(converted)
    for text in TEXTS:
        ids = ref.encode(text)
        assert tok.encode(text) == ids, text
        assert tok.decode(ids) == ref.decode(ids)
    assert tok.eos_token_ids == ref.eos_token_ids == {2}


def _hf_pre_tokenizer(pre: str) -> dict[str, Any]:
    """Pre-tokenizers as the Hugging Face tokenizer.json files of these families spell them."""
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True}
    if pre == "gpt2":
        return {**byte_level, "use_regex": True}
    if pre == "smollm":
        digits = {"type": "Digits", "individual_digits": True}
        return {"type": "Sequence", "pretokenizers": [digits, {**byte_level, "use_regex": True}]}
    qwen = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
        r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    if pre == "llama-bpe":
        qwen = qwen.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
    split = {"type": "Split", "pattern": {"Regex": qwen}, "behavior": "Isolated", "invert": False}
    return {"type": "Sequence", "pretokenizers": [split, {**byte_level, "use_regex": False}]}


def test_chat_template_and_special_tokens(tiny_llama: Path, llama_f32: Path, cache: Path) -> None:
    converted = _convert(llama_f32, cache)
    _, ref = mlx_load(str(tiny_llama))
    _, tok = mlx_load(str(converted))
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    for add in (True, False):
        a = tok.apply_chat_template(messages, add_generation_prompt=add, tokenize=False)
        assert a == ref.apply_chat_template(messages, add_generation_prompt=add, tokenize=False)
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert tok.encode(prompt) == ref.encode(prompt)
    assert tok.encode("<|im_start|>")[0] == 1  # a special token is one id, not split
    config = json.loads((converted / "tokenizer_config.json").read_text())
    assert config["eos_token"] == "<|im_end|>" and config["add_bos_token"] is False


def test_add_bos_token(tiny_llama: Path, tmp_path: Path, cache: Path) -> None:
    md = _mx_metadata(gguf_metadata(tiny_llama, "llama", "gpt2"))
    md["tokenizer.ggml.bos_token_id"] = mx.array(1, dtype=mx.uint32)
    md["tokenizer.ggml.add_bos_token"] = mx.array(True)
    path = tmp_path / "bos.gguf"
    tensors = {k: mx.array(v) for k, v in gguf_tensors(tiny_llama, "llama").items()}
    mx.save_gguf(str(path), tensors, md)
    tok = load_tokenizer(_convert(path, cache))
    plain = load_tokenizer(tiny_llama).encode("Hello there")
    assert tok.encode("Hello there") == [1, *plain]


# ---------------------------------------------------------------------------------------
# Cache behaviour


def test_cache_reuses_and_reconverts_changed_file(
    llama_f32: Path, tmp_path: Path, cache: Path
) -> None:
    src = tmp_path / "copy.gguf"
    src.write_bytes(llama_f32.read_bytes())
    events: list[str] = []
    first = gguf.convert_cached(src, on_progress=lambda p: events.append(p.message))
    assert events and events[-1] == "Converted"
    events.clear()
    assert gguf.convert_cached(src, on_progress=lambda p: events.append(p.message)) == first
    assert events == []  # cached: no work
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    second = gguf.convert_cached(src)
    assert second != first and (second / "config.json").is_file()
    assert not first.exists()  # the stale conversion of the same source is gone
    info = gguf.read_source_info(second)
    assert info is not None and info["source"] == str(src.resolve())
    assert [p.name for p in cache.iterdir()] == [second.name]


# ---------------------------------------------------------------------------------------
# Bad input


def _assert_cache_empty(cache: Path) -> None:
    assert not cache.exists() or list(cache.iterdir()) == []


def test_truncated_file_leaves_nothing(llama_f32: Path, tmp_path: Path, cache: Path) -> None:
    data = llama_f32.read_bytes()
    for size in (len(data) - 100, len(data) // 2, 1000, 10):
        bad = tmp_path / f"trunc-{size}.gguf"
        bad.write_bytes(data[:size])
        with pytest.raises(ModelLoadError, match=r"trunc-\d+\.gguf is not a valid GGUF file: "):
            gguf.convert_cached(bad)
        _assert_cache_empty(cache)


def test_not_a_gguf_file(tmp_path: Path, cache: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("these are not the weights you are looking for\n" * 3)
    with pytest.raises(ModelLoadError, match="notes.gguf is not a valid GGUF file: .*magic"):
        gguf.convert_cached(bad)
    _assert_cache_empty(cache)


def test_unsupported_architecture(tiny_llama: Path, tmp_path: Path, cache: Path) -> None:
    md = _mx_metadata(gguf_metadata(tiny_llama, "llama", "gpt2"))
    md["general.architecture"] = "mamba"
    path = tmp_path / "mamba.gguf"
    mx.save_gguf(str(path), {"token_embd.weight": mx.zeros((4, 32))}, md)
    with pytest.raises(ModelLoadError) as err:
        gguf.convert_cached(path)
    assert str(err.value) == (
        "mamba.gguf: GGUF architecture 'mamba' is not supported; "
        "supported: llama, qwen2, qwen3, gemma, gemma2, gemma3, phi3"
    )
    _assert_cache_empty(cache)


def test_unsupported_tensor_type(tiny_llama: Path, tmp_path: Path, cache: Path) -> None:
    md = gguf_metadata(tiny_llama, "llama", "gpt2")
    tensors = {"token_embd.weight": (IQ2_XXS, (4, 256), bytes(4 * 66))}
    path = write_raw_gguf(tmp_path / "iq2.gguf", md, tensors)
    with pytest.raises(ModelLoadError) as err:
        gguf.convert_cached(path)
    message = str(err.value)
    assert message.startswith("iq2.gguf: tensor token_embd.weight has GGUF type IQ2_XXS, ")
    assert message.endswith(
        "supported types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q3_K, "
        "IQ4_NL, IQ4_XS, Q6_K, Q2_K"
    )
    _assert_cache_empty(cache)


def test_unsupported_tokenizer(tiny_llama: Path, tmp_path: Path, cache: Path) -> None:
    md = _mx_metadata(gguf_metadata(tiny_llama, "llama", "gpt2"))
    md["tokenizer.ggml.model"] = "t5"
    path = tmp_path / "t5.gguf"
    mx.save_gguf(str(path), {"token_embd.weight": mx.zeros((4, 32))}, md)
    expected = (
        r"t5.gguf: tokenizer model 't5' is not supported; only byte-level BPE \('gpt2'\) "
        r"and SentencePiece \('llama'\) tokenizers are"
    )
    with pytest.raises(ModelLoadError, match=expected):
        gguf.convert_cached(path)
    _assert_cache_empty(cache)


def test_unexpected_tensor(tiny_llama: Path, tmp_path: Path, cache: Path) -> None:
    md = _mx_metadata(gguf_metadata(tiny_llama, "llama", "gpt2"))
    tensors = {k: mx.array(v) for k, v in gguf_tensors(tiny_llama, "llama").items()}
    tensors["blk.0.ffn_gate_exps.weight"] = mx.zeros((2, 32, 32))
    path = tmp_path / "moe.gguf"
    mx.save_gguf(str(path), tensors, md)
    with pytest.raises(ModelLoadError, match="moe.gguf: unexpected tensor blk.0.ffn_gate_exps"):
        gguf.convert_cached(path)
    _assert_cache_empty(cache)


def test_header_reader(llama_f32: Path) -> None:
    header = gguf.read_header(llama_f32)
    assert header.version == 3 and header.architecture == "llama"
    assert header.metadata["llama.block_count"] == 2
    assert header.array_lengths["tokenizer.ggml.tokens"] > 100
    assert header.tensors["token_embd.weight"][0] == F32
