"""Convert a GGUF file into a cached MLX model directory that `mlx_lm.load` reads.

The tensor data is read straight from a memory map of the file (`gguf_tensors.py`: every
GGML type in `SUPPORTED_TYPE_NAMES`, kept quantized in MLX's affine format where that holds
the file's values exactly), the architectures are mapped to mlx-lm models in
`gguf_archs.py`, and the tokenizer is rebuilt from the metadata in `gguf_tokenizer.py`
(byte-level BPE and SentencePiece). docs/gguf.md has the whole picture. The CPU fast path
dequantizes quantized layers to float32 at load time when that is faster (see `cpu.py`);
Metal/CUDA keep the small quantized form.

The output goes to a temporary folder that is renamed into place, so a failed conversion
leaves nothing behind in the cache.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlxchat import locations
from mlxchat.engine.types import LoadProgress, ModelLoadError
from mlxchat.models import gguf_archs, gguf_tensors
from mlxchat.models.gguf_archs import SUPPORTED_ARCHITECTURES
from mlxchat.models.gguf_header import GGUFHeader, read_header
from mlxchat.models.gguf_tensors import SUPPORTED_TYPE_NAMES, TYPE_NAMES
from mlxchat.models.gguf_tokenizer import SUPPORTED_TOKENIZERS, build_tokenizer

if TYPE_CHECKING:
    import mlx.core as mx

__all__ = [
    "CONVERTER_VERSION",
    "SOURCE_FILE",
    "SUPPORTED_ARCHITECTURES",
    "SUPPORTED_TYPE_NAMES",
    "GGUFHeader",
    "build_tokenizer",
    "cache_key",
    "cached_dir",
    "check_supported",
    "convert_cached",
    "convert_gguf",
    "read_header",
    "read_source_info",
]

ProgressFn = Callable[[LoadProgress], None]

CONVERTER_VERSION = 2
"""Bump when the output format changes, so cached conversions are made again."""

SOURCE_FILE = "mlxchat-gguf.json"
"""Written into every converted directory: where it came from and how."""

_TMP_PREFIX = ".converting-"


def check_supported(path: Path, header: GGUFHeader) -> None:
    """Raise ModelLoadError unless mlxchat can convert this architecture, tokenizer and types."""
    arch = header.architecture
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelLoadError(
            f"{path.name}: GGUF architecture {arch or '(none)'!r} is not supported; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    for name, (ttype, _) in header.tensors.items():
        if ttype not in gguf_tensors.SUPPORTED_TYPES:
            tname = TYPE_NAMES.get(ttype, f"type {ttype}")
            raise ModelLoadError(
                f"{path.name}: tensor {name} has GGUF type {tname}, which mlxchat cannot "
                f"convert; supported types: {', '.join(SUPPORTED_TYPE_NAMES)}"
            )
    tok_model = header.metadata.get("tokenizer.ggml.model", "")
    if tok_model not in SUPPORTED_TOKENIZERS:
        raise ModelLoadError(
            f"{path.name}: tokenizer model {tok_model or '(none)'!r} is not supported; "
            "only byte-level BPE ('gpt2') and SentencePiece ('llama') tokenizers are"
        )
    for name in header.tensors:
        if name.startswith("rope_factors_"):
            raise ModelLoadError(
                f"{path.name}: long-context RoPE factors ({name}) are not supported"
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
    header = read_header(src, arrays=True)
    check_supported(src, header)
    report("Converting tensors", 0.1)
    try:
        weights, quant, extra = _convert_tensors(src, header)
        config = gguf_archs.model_config(
            header,
            vocab_size=int(header.tensors["token_embd.weight"][1][-1]),
            has_lm_head="lm_head.weight" in weights,
            has_q_bias="model.layers.0.self_attn.q_proj.bias" in weights,
            extra=extra,
        )
    except ModelLoadError as e:
        raise ModelLoadError(f"{src.name}: {e}") from e
    except KeyError as e:
        raise ModelLoadError(f"{src.name}: missing {e.args[0]}") from e
    if quant:
        config["quantization"] = quant
    report("Building the tokenizer", 0.6)
    tokenizer, tok_config, eos_ids = build_tokenizer(header)
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
    src: Path, header: GGUFHeader
) -> tuple[dict[str, mx.array], dict[str, Any], dict[str, np.ndarray]]:
    """Read, convert and rename every tensor.

    Returns:
        The mlx-lm weights, config["quantization"] ({} when nothing is quantized) and the
        tensors that are settings rather than weights (gguf_archs.CONFIG_TENSORS).
    """
    import mlx.core as mx

    arch = header.architecture
    data = np.memmap(src, dtype=np.uint8, mode="r")
    weights: dict[str, mx.array] = {}
    formats: dict[str, tuple[int, int]] = {}  # module -> (group size, bits)
    extra: dict[str, np.ndarray] = {}
    for name, (ttype, ggml_shape) in header.tensors.items():
        shape = tuple(int(d) for d in reversed(ggml_shape))
        count = int(np.prod(shape))
        start = header.offsets[name]
        raw = data[start : start + gguf_tensors.byte_size(ttype, count)]
        if name in gguf_archs.CONFIG_TENSORS:
            extra[name] = gguf_tensors.unpack(gguf_tensors.convert(raw, ttype, shape))
            continue
        hf = gguf_archs.hf_name(arch, name)
        if hf is None:
            raise ModelLoadError(
                f"unexpected tensor {name}; only dense {arch} models "
                "(no mixture of experts, no extra tensors) are supported"
            )
        t = gguf_tensors.convert(raw, ttype, shape)
        order = gguf_archs.row_permutation(arch, hf, header, shape[0])
        if order is not None:
            t.weight = t.weight[order]
            if t.scales is not None and t.biases is not None:
                t.scales, t.biases = t.scales[order], t.biases[order]
        if not t.quantized:
            if t.bfloat16 and not gguf_archs.shifted_norm(arch, hf):
                weights[hf] = mx.array(t.weight).view(mx.bfloat16)
            else:
                values = gguf_tensors.unpack(t) if t.bfloat16 else t.weight
                weights[hf] = mx.array(gguf_archs.fix_float(arch, hf, values))
            continue
        module = hf.rsplit(".", 1)[0]
        assert t.group_size is not None and t.bits is not None
        formats[module] = (t.group_size, t.bits)
        weights[hf] = mx.array(t.weight)
        weights[f"{module}.scales"] = mx.array(t.scales)
        weights[f"{module}.biases"] = mx.array(t.biases)
    del data
    if "model.embed_tokens.weight" not in weights:
        raise KeyError("token_embd.weight")
    layers = {int(k.split(".")[2]) for k in weights if k.startswith("model.layers.")}
    count = gguf_archs.required(header, "block_count")
    if layers != set(range(count)):
        raise ModelLoadError(f"tensors for {len(layers)} of its {count} layers")
    return weights, _quantization(formats), extra


def _quantization(formats: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """config["quantization"]: the most common format, and every module that differs."""
    if not formats:
        return {}
    group, bits = Counter(formats.values()).most_common(1)[0][0]
    quant: dict[str, Any] = {"group_size": group, "bits": bits}
    for module, (g, b) in sorted(formats.items()):
        if (g, b) != (group, bits):
            quant[module] = {"group_size": g, "bits": b}
    return quant
