"""Convert a GGUF file into a cached MLX model directory that `mlx_lm.load` reads.

Supported: the `llama` and `qwen2` architectures, tensors of type F32, F16, BF16 (read as
float16), Q4_0, Q4_1 and Q8_0, and byte-level BPE tokenizers (`tokenizer.ggml.model ==
"gpt2"`). Quantized tensors stay quantized in the output (MLX affine 4/8-bit, group size 32,
exactly the values in the file); the CPU fast path dequantizes them in memory at load time
when that is faster (see `cpu.py`), and Metal/CUDA keep the small, fast quantized form.

GGUF `llama` files store the Q and K projections permuted for interleaved RoPE; they are
permuted back to the Hugging Face layout, so the output is an ordinary llama directory.
`qwen2` files are stored unpermuted (NEOX RoPE) and are copied as they are.

The output goes to a temporary folder that is renamed into place, so a failed conversion
leaves nothing behind in the cache.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import shutil
import struct
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxchat import locations
from mlxchat.engine.types import LoadProgress, ModelLoadError

if TYPE_CHECKING:
    import mlx.core as mx
    from tokenizers import Tokenizer

ProgressFn = Callable[[LoadProgress], None]

CONVERTER_VERSION = 1
"""Bump when the output format changes, so cached conversions are made again."""

SOURCE_FILE = "mlxchat-gguf.json"
"""Written into every converted directory: where it came from and how."""

SUPPORTED_ARCHITECTURES = ("llama", "qwen2")
_TMP_PREFIX = ".converting-"

_TYPE_NAMES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS",
    17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
    23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M",
    30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}  # fmt: skip
# Tensor types MLX reads correctly: id -> (elements per block, bytes per block).
_SUPPORTED_TYPES = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 8: (32, 34)}
SUPPORTED_TYPE_NAMES = tuple(_TYPE_NAMES[t] for t in _SUPPORTED_TYPES)

_GROUP_SIZE = 32  # every GGML type MLX keeps quantized uses blocks of 32

# Value types of GGUF metadata: id -> struct format (8: string, 9: array).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?"}
_SCALARS |= {10: "Q", 11: "q", 12: "d"}

_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_TENSOR_RE = re.compile(r"(?:blk\.(\d+)\.)?(\w+)\.(weight|bias|scales|biases)")

# Pre-tokenizer split patterns, as in llama.cpp's llama-vocab.cpp and the HF tokenizers.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA3_SPLIT = _QWEN2_SPLIT.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
_PRE_QWEN2 = ("qwen2", "deepseek-r1-qwen")
_PRE_LLAMA3 = ("llama3", "llama-bpe", "smaug-bpe", "falcon3")
_PRE_DIGITS = ("smollm", "starcoder", "refact", "codeshell")


@dataclass
class GGUFHeader:
    """What the start of a GGUF file says, read without loading any tensor.

    Attributes:
        version: The GGUF format version (2 or 3).
        metadata: Scalar metadata values (arrays are left out; see `array_lengths`).
        array_lengths: The number of elements of each array-valued metadata key.
        tensors: Tensor name -> (GGML type id, shape in GGML order).
    """

    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    array_lengths: dict[str, int] = field(default_factory=dict)
    tensors: dict[str, tuple[int, tuple[int, ...]]] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        """The `general.architecture` value, or "" when missing."""
        return str(self.metadata.get("general.architecture", ""))

    def arch_value(self, key: str, default: Any = None) -> Any:
        """The metadata value `<architecture>.<key>`, or `default`."""
        return self.metadata.get(f"{self.architecture}.{key}", default)


class _Reader:
    """Sequential little-endian reads from a buffer; running past the end raises ValueError."""

    def __init__(self, buf: mmap.mmap | bytes) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buf):
            raise ValueError("the header ends early (truncated file?)")
        (value,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.unpack("Q")
        if self.pos + n > len(self.buf):
            raise ValueError("the header ends early (truncated file?)")
        text = bytes(self.buf[self.pos : self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return text

    def skip_array(self, vtype: int, count: int) -> None:
        if vtype == 8:
            for _ in range(count):
                n = self.unpack("Q")  # read first: `self.pos += ...` would read pos before
                self.pos += n
        elif vtype in _SCALARS:
            self.pos += struct.calcsize("<" + _SCALARS[vtype]) * count
        elif vtype == 9:
            for _ in range(count):
                self.skip_array(self.unpack("I"), self.unpack("Q"))
        else:
            raise ValueError(f"unknown metadata value type {vtype}")
        if self.pos > len(self.buf):
            raise ValueError("the header ends early (truncated file?)")


def read_header(path: Path) -> GGUFHeader:
    """Read and check the header of a GGUF file (metadata and tensor table, no tensor data).

    Raises:
        ModelLoadError: The file is not a complete, readable GGUF file.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 24:
                raise ValueError(f"it is only {size} bytes long")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse_header(buf, size)
    except OSError as e:
        raise ModelLoadError(f"cannot read {path}: {e.strerror or e}") from e
    except (ValueError, struct.error, OverflowError) as e:
        raise ModelLoadError(f"{path} is not a valid GGUF file: {e}") from e


def _parse_header(buf: mmap.mmap, size: int) -> GGUFHeader:
    r = _Reader(buf)
    if bytes(buf[:4]) != b"GGUF":
        raise ValueError("it does not start with the GGUF magic bytes")
    r.pos = 4
    version = r.unpack("I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported (only 2 and 3)")
    header = GGUFHeader(version=version)
    n_tensors, n_kv = r.unpack("Q"), r.unpack("Q")
    for _ in range(n_kv):
        key, vtype = r.string(), r.unpack("I")
        if vtype == 8:
            header.metadata[key] = r.string()
        elif vtype == 9:
            etype, count = r.unpack("I"), r.unpack("Q")
            header.array_lengths[key] = count
            r.skip_array(etype, count)
        elif vtype in _SCALARS:
            header.metadata[key] = r.unpack(_SCALARS[vtype])
        else:
            raise ValueError(f"unknown metadata value type {vtype} for {key}")
    offsets: dict[str, int] = {}
    for _ in range(n_tensors):
        name = r.string()
        shape = tuple(r.unpack("Q") for _ in range(r.unpack("I")))
        header.tensors[name] = (r.unpack("I"), shape)
        offsets[name] = r.unpack("Q")
    alignment = int(header.metadata.get("general.alignment", 32)) or 32
    data_start = -(-r.pos // alignment) * alignment
    for name, (ttype, shape) in header.tensors.items():
        if ttype not in _SUPPORTED_TYPES:
            continue  # reported by check_supported, with a better message
        block, block_bytes = _SUPPORTED_TYPES[ttype]
        count = 1
        for d in shape:
            count *= d
        if data_start + offsets[name] + count // block * block_bytes > size:
            raise ValueError(f"tensor {name!r} extends past the end (truncated download?)")
    return header


def check_supported(path: Path, header: GGUFHeader) -> None:
    """Raise ModelLoadError unless mlxchat can convert this architecture, tokenizer and types."""
    arch = header.architecture
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelLoadError(
            f"{path.name}: GGUF architecture {arch or '(none)'!r} is not supported; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    for name, (ttype, _) in header.tensors.items():
        if ttype not in _SUPPORTED_TYPES:
            tname = _TYPE_NAMES.get(ttype, f"type {ttype}")
            raise ModelLoadError(
                f"{path.name}: tensor {name} has GGUF type {tname}, which MLX cannot read; "
                f"supported types: {', '.join(SUPPORTED_TYPE_NAMES)}"
            )
    tok_model = header.metadata.get("tokenizer.ggml.model", "")
    if tok_model != "gpt2":
        raise ModelLoadError(
            f"{path.name}: tokenizer model {tok_model or '(none)'!r} is not supported; "
            "only byte-level BPE ('gpt2') tokenizers are"
        )
    if "rope_freqs.weight" in header.tensors:
        raise ModelLoadError(
            f"{path.name}: Llama-3-style RoPE frequency factors (rope_freqs) are not supported"
        )


# ---------------------------------------------------------------------------------------
# Cache


def cache_key(path: Path) -> str:
    """A short key that changes when the file (path, size, mtime) or the converter changes."""
    st = path.stat()
    raw = f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{CONVERTER_VERSION}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def cached_dir(path: Path) -> Path:
    """Where the conversion of `path` lives (or will live) in the cache."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)[:80] or "model"
    return locations.models_dir() / f"{stem}-{cache_key(path)}"


def convert_cached(path: str | Path, on_progress: ProgressFn | None = None) -> Path:
    """Return the MLX directory for a GGUF file, converting it first if needed.

    Older conversions of the same source path (the file changed since) are removed.

    Raises:
        ModelLoadError: The file is missing, not GGUF, or not supported.
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise ModelLoadError(f"{src} does not exist or is not a file")
    dest = cached_dir(src)
    if (dest / "config.json").is_file():
        return dest
    convert_gguf(src, dest, on_progress=on_progress)
    _remove_stale(src, keep=dest)
    return dest


def read_source_info(model_dir: Path) -> dict[str, Any] | None:
    """The conversion record of a converted directory, or None when it has none."""
    try:
        return json.loads((model_dir / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _remove_stale(src: Path, keep: Path) -> None:
    """Remove older conversions of `src` and leftovers of conversions killed midway."""
    resolved = str(src.resolve())
    for d in keep.parent.iterdir():
        if d == keep or not d.is_dir():
            continue
        if d.name.startswith(_TMP_PREFIX):
            if time.time() - d.stat().st_mtime > 3600:  # not one still being written
                shutil.rmtree(d, ignore_errors=True)
            continue
        info = read_source_info(d)
        if info and info.get("source") == resolved:
            shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Conversion


def convert_gguf(src: Path, dest: Path, *, on_progress: ProgressFn | None = None) -> Path:
    """Convert the GGUF file `src` into an MLX model directory `dest` (atomically).

    Args:
        src: The .gguf file.
        dest: The directory to create; if it already exists it is returned untouched.
        on_progress: Called with LoadProgress updates.

    Returns:
        `dest`.

    Raises:
        ModelLoadError: The file is not valid GGUF or uses something unsupported.
    """
    import mlx.core as mx

    def report(message: str, fraction: float) -> None:
        if on_progress is not None:
            on_progress(LoadProgress(model=src.name, message=message, fraction=fraction))

    report(f"Reading {src.name}", 0.0)
    header = read_header(src)
    check_supported(src, header)
    report("Loading tensors", 0.1)
    try:
        tensors, meta = mx.load(str(src), return_metadata=True)
    except (RuntimeError, ValueError) as e:
        raise ModelLoadError(f"{src} is not a valid GGUF file: {e}") from e
    report("Converting tensors", 0.5)
    weights, quant = _convert_tensors(src, header, tensors)
    del tensors
    config = _model_config(header, weights, quant)
    report("Building the tokenizer", 0.7)
    tokenizer, tok_config, eos_ids = build_tokenizer(header, meta)
    config["eos_token_id"] = eos_ids[0] if len(eos_ids) == 1 else eos_ids
    if header.metadata.get("tokenizer.ggml.bos_token_id") is not None:
        config["bos_token_id"] = int(header.metadata["tokenizer.ggml.bos_token_id"])

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as any other
    try:
        report("Writing the MLX model", 0.8)
        mx.save_safetensors(str(tmp / "model.safetensors"), weights, metadata={"format": "mlx"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        tokenizer.save(str(tmp / "tokenizer.json"))
        (tmp / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2))
        st = src.stat()
        source = {
            "source": str(src.resolve()),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "converter_version": CONVERTER_VERSION,
            "architecture": header.architecture,
            "name": header.metadata.get("general.name", src.stem),
            "context_length": header.arch_value("context_length"),
        }
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2))
        try:
            tmp.rename(dest)
        except OSError:
            if not (dest / "config.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # converted meanwhile by someone else
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report("Converted", 1.0)
    return dest


def _convert_tensors(
    src: Path, header: GGUFHeader, tensors: dict[str, mx.array]
) -> tuple[dict[str, mx.array], dict[str, int]]:
    """Rename GGUF tensors to mlx-lm names; returns weights and module path -> quantized bits."""
    import mlx.core as mx

    weights: dict[str, mx.array] = {}
    bits: dict[str, int] = {}
    for name, value in tensors.items():
        m = _TENSOR_RE.fullmatch(name)
        layer, base, suffix = m.groups() if m else (None, "", "")
        table = _LAYER_NAMES if layer is not None else _TOP_NAMES
        if base not in table:
            raise ModelLoadError(
                f"{src.name}: unexpected tensor {name}; only dense llama/qwen2 models "
                "(no mixture of experts, no extra tensors) are supported"
            )
        module = f"model.layers.{layer}.{table[base]}" if layer is not None else table[base]
        weights[f"{module}.{suffix}"] = value
        if suffix == "scales":  # packed uint32 columns * 32 bits = input features * bits
            packed = tensors[name.removesuffix(".scales") + ".weight"].shape[-1]
            bits[module] = packed * 32 // (value.shape[-1] * _GROUP_SIZE)
    bf16 = [n for n, (t, _) in header.tensors.items() if _TYPE_NAMES[t] == "BF16"]
    if any(mx.isinf(tensors[n]).any().item() for n in bf16 if n in tensors):
        raise ModelLoadError(f"{src.name}: BF16 values overflow float16 when MLX reads them")
    if header.architecture == "llama":
        heads = int(header.arch_value("attention.head_count"))
        kv_heads = int(header.arch_value("attention.head_count_kv", heads))
        for key, value in list(weights.items()):
            if ".self_attn.q_proj." in key:
                weights[key] = _unpermute(value, heads)
            elif ".self_attn.k_proj." in key:
                weights[key] = _unpermute(value, kv_heads)
    return weights, bits


def _unpermute(w: mx.array, n_head: int) -> mx.array:
    """Undo llama.cpp's Q/K row permutation (interleaved RoPE -> Hugging Face halves)."""
    rest = w.shape[1:]
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *rest).swapaxes(1, 2).reshape(w.shape)


def _model_config(
    header: GGUFHeader, weights: dict[str, mx.array], bits: dict[str, int]
) -> dict[str, Any]:
    """The mlx-lm config.json for the converted model."""
    arch = header.architecture
    md = header.arch_value
    heads = int(md("attention.head_count"))
    hidden = int(md("embedding_length"))
    embed = weights["model.embed_tokens.weight"]
    vocab = embed.shape[0]
    config: dict[str, Any] = {
        "model_type": arch,
        "hidden_size": hidden,
        "num_hidden_layers": int(md("block_count")),
        "intermediate_size": int(md("feed_forward_length")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(md("attention.head_count_kv", heads)),
        "rms_norm_eps": float(md("attention.layer_norm_rms_epsilon", 1e-6)),
        "rope_theta": float(md("rope.freq_base", 10000.0 if arch == "llama" else 1000000.0)),
        "vocab_size": vocab,
        "tie_word_embeddings": "lm_head.weight" not in weights,
    }
    if md("context_length") is not None:
        config["max_position_embeddings"] = int(md("context_length"))
    if arch == "llama":
        head_dim = md("attention.key_length")
        if head_dim is not None and int(head_dim) != hidden // heads:
            config["head_dim"] = int(head_dim)
        config["attention_bias"] = "model.layers.0.self_attn.q_proj.bias" in weights
    scaling = md("rope.scaling.type")
    if scaling in ("linear", "yarn"):
        config["rope_scaling"] = {"type": scaling, "factor": float(md("rope.scaling.factor"))}
        if scaling == "yarn" and md("rope.scaling.original_context_length") is not None:
            original = int(md("rope.scaling.original_context_length"))
            config["rope_scaling"]["original_max_position_embeddings"] = original
    elif scaling not in (None, "none"):
        raise ModelLoadError(f"RoPE scaling {scaling!r} is not supported (only linear and yarn)")
    if bits:
        default = Counter(bits.values()).most_common(1)[0][0]
        quant: dict[str, Any] = {"group_size": _GROUP_SIZE, "bits": default}
        for module, b in sorted(bits.items()):
            if b != default:
                quant[module] = {"group_size": _GROUP_SIZE, "bits": b}
        config["quantization"] = quant
    return config


# ---------------------------------------------------------------------------------------
# Tokenizer


def _pre_tokenizer(pre: str) -> Any:
    """The Hugging Face pre-tokenizer matching llama.cpp's `tokenizer.ggml.pre` value."""
    from tokenizers import Regex, pre_tokenizers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pre in _PRE_QWEN2 or pre in _PRE_LLAMA3:
        split = _QWEN2_SPLIT if pre in _PRE_QWEN2 else _LLAMA3_SPLIT
        return pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(split), behavior="isolated"), byte_level]
        )
    gpt2 = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in _PRE_DIGITS:
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), gpt2])
    return gpt2  # "gpt2", "default" and anything unknown: the GPT-2 byte-level split


def build_tokenizer(
    header: GGUFHeader, meta: dict[str, Any]
) -> tuple[Tokenizer, dict[str, Any], list[int]]:
    """Rebuild the byte-level BPE tokenizer stored in GGUF metadata.

    Args:
        header: The parsed header (scalar metadata).
        meta: The metadata from `mx.load(..., return_metadata=True)` (holds the arrays).

    Returns:
        The tokenizer, the tokenizer_config.json contents and the EOS token ids.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    md = header.metadata
    tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges", [])]
    types_value = meta.get("tokenizer.ggml.token_type")
    types = types_value.tolist() if types_value is not None else [1] * len(tokens)
    vocab: dict[str, int] = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    pre = str(md.get("tokenizer.ggml.pre", "default"))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=pre in _PRE_LLAMA3))
    tok.pre_tokenizer = _pre_tokenizer(pre)
    tok.decoder = decoders.ByteLevel()
    control = [t for t, k in zip(tokens, types, strict=False) if k == 3]
    user = [t for t, k in zip(tokens, types, strict=False) if k == 4]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in user])

    def token(key: str) -> tuple[int, str] | tuple[None, None]:
        value = md.get(f"tokenizer.ggml.{key}_token_id")
        if value is None or not 0 <= int(value) < len(tokens):
            return None, None
        return int(value), tokens[int(value)]

    bos_id, bos = token("bos")
    eos_id, eos = token("eos")
    eot_id, _ = token("eot")
    add_bos = bool(md.get("tokenizer.ggml.add_bos_token", False)) and bos is not None
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    eos_ids = [i for i in dict.fromkeys([eos_id, eot_id]) if i is not None]
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos,
        "eos_token": eos,
        "pad_token": token("padding")[1],
        "unk_token": token("unknown")[1],
        "add_bos_token": add_bos,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(header.arch_value("context_length", 2048)),
    }
    if "tokenizer.chat_template" in md:
        config["chat_template"] = md["tokenizer.chat_template"]
    return tok, config, eos_ids
