"""The GGUF header: metadata and tensor table, read from a memory map without any tensor.

Its own module so that the converter (`gguf.py`), the architectures (`gguf_archs.py`) and
the tokenizer (`gguf_tokenizer.py`) all depend on it and not on each other.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlxchat.engine.types import ModelLoadError
from mlxchat.models import gguf_tensors

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
