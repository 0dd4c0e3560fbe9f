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

import numpy as np

from mlxchat import locations
from mlxchat.engine import gguf_archs, gguf_tensors
from mlxchat.engine.gguf_archs import SUPPORTED_ARCHITECTURES
from mlxchat.engine.gguf_tensors import SUPPORTED_TYPE_NAMES, TYPE_NAMES
from mlxchat.engine.gguf_tokenizer import SUPPORTED_TOKENIZERS, build_tokenizer
from mlxchat.engine.types import LoadProgress, ModelLoadError

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

# Value types of GGUF metadata: id -> struct format (8: string, 9: array).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?"}
_SCALARS |= {10: "Q", 11: "q", 12: "d"}
_NUMPY = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "?"}
_NUMPY |= {10: "<u8", 11: "<i8", 12: "<f8"}


@dataclass
class GGUFHeader:
    """What the start of a GGUF file says, read without loading any tensor.

    Attributes:
        version: The GGUF format version (2 or 3).
        metadata: Scalar metadata values (arrays are left out; see `array_lengths`).
        array_lengths: The number of elements of each array-valued metadata key.
        tensors: Tensor name -> (GGML type id, shape in GGML order).
        offsets: Tensor name -> offset of its data from the start of the file.
        arrays: Array-valued metadata (lists of str, numpy arrays of numbers), when read
            with `read_header(path, arrays=True)`.
    """

    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    array_lengths: dict[str, int] = field(default_factory=dict)
    tensors: dict[str, tuple[int, tuple[int, ...]]] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)

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

    def array(self, vtype: int, count: int, keep: bool) -> Any:
        """Read (keep) or skip an array of `count` values of type `vtype`."""
        if vtype == 8:
            if keep:
                return [self.string() for _ in range(count)]
            for _ in range(count):
                n = self.unpack("Q")  # read first: `self.pos += ...` would read pos before
                self.pos += n
        elif vtype in _SCALARS:
            size = struct.calcsize("<" + _SCALARS[vtype]) * count
            if self.pos + size > len(self.buf):
                raise ValueError("the header ends early (truncated file?)")
            start, self.pos = self.pos, self.pos + size
            if keep:
                return np.frombuffer(self.buf, _NUMPY[vtype], count, start).copy()
        elif vtype == 9:
            for _ in range(count):
                self.array(self.unpack("I"), self.unpack("Q"), keep=False)
        else:
            raise ValueError(f"unknown metadata value type {vtype}")
        if self.pos > len(self.buf):
            raise ValueError("the header ends early (truncated file?)")
        return None


def read_header(path: Path, *, arrays: bool = False) -> GGUFHeader:
    """Read and check the header of a GGUF file (metadata and tensor table, no tensor data).

    Args:
        path: The file.
        arrays: Also read array-valued metadata (the tokenizer) into `GGUFHeader.arrays`.

    Raises:
        ModelLoadError: The file is not a complete, readable GGUF file.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 24:
                raise ValueError(f"it is only {size} bytes long")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse_header(buf, size, arrays)
    except OSError as e:
        raise ModelLoadError(f"cannot read {path}: {e.strerror or e}") from e
    except (ValueError, struct.error, OverflowError) as e:
        raise ModelLoadError(f"{path} is not a valid GGUF file: {e}") from e


def _parse_header(buf: mmap.mmap, size: int, arrays: bool) -> GGUFHeader:
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
            value = r.array(etype, count, keep=arrays and etype != 9)
            if value is not None:
                header.arrays[key] = value
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
        header.offsets[name] = data_start + offsets[name]
        if ttype not in gguf_tensors.BLOCK_SIZES:
            continue  # reported by check_supported, with a better message
        count = 1
        for d in shape:
            count *= d
        if header.offsets[name] + gguf_tensors.byte_size(ttype, count) > size:
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
