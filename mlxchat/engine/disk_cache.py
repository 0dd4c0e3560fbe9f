"""The prompt cache's disk tier: KV caches that outlive the process.

Every conversation's cache is written to disk when its answer ends (so an evicted entry,
a chat that ends and the app quitting all find it there already), one file per entry in
mlx-lm's prompt-cache format (`load_prompt_cache` reads it: safetensors, the cache
classes and our metadata). The metadata holds the exact tokens the cache holds, the
model's identity (`model_identity`: weights, config, dtype, tokenizer, chat template),
this format's version and a checksum of the tokens and the arrays. A request whose prompt
shares a longer prefix with a file than with anything in RAM loads it and prefills only
the rest.

- Writes stay off the critical path: the engine thread only copies the (evaluated) arrays
  into host memory at the end of an answer; a writer thread writes them (to a temporary
  file, then renamed) and removes the files the new one supersedes (those it goes on from).
- The folder is kept under a byte budget, least recently used (file mtime, touched on
  each load) out.
- A file that is truncated, corrupt, of another model or of another format version is
  ignored and removed with one log line.

Engine thread: `lookup`, `load`, `save`; the writer thread: the files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import struct
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxchat import __version__, locations

log = logging.getLogger("mlxchat.engine")

FORMAT = "mlxchat-prompt-cache-1"
"""This file format's version: files of another version are removed."""

SUFFIX = ".safetensors"

MAX_QUEUED = 4
"""Entries waiting for the writer at most (each holds a host copy of its arrays)."""

_META = "0."
"""Our metadata keys' prefix: mlx-lm keeps the user's metadata as the first of three
flattened trees (metadata, cache classes, scalars)."""

_DTYPES = {
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "int32": "I32",
    "int64": "I64",
    "uint32": "U32",
    "uint16": "U16",
    "uint8": "U8",
    "int8": "I8",
    "bool": "BOOL",
}


def default_dir() -> Path:
    """Where prompt caches go (`locations.prompts_dir`: `<cache dir>/prompts`)."""
    return locations.prompts_dir()


def model_identity(path: str | Path, dtype: str, tokenizer: Any = None) -> str:
    """A hash naming one model as it computes: its weights (each safetensors file's size,
    header and first and last MiB), its config and tokenizer files, the chat template, the
    dtype it runs in, and the mlx / mlx-lm versions. "" when `path` is no model folder."""
    folder = Path(path)
    if not folder.is_dir():
        return ""
    import mlx.core as mx
    import mlx_lm

    digest = hashlib.blake2b(digest_size=16)
    versions = f"{dtype}|{mx.__version__}|{mlx_lm.__version__}"  # type: ignore[attr-defined]
    digest.update(versions.encode())
    for file in sorted(folder.iterdir()):
        if file.suffix == SUFFIX:
            digest.update(file.name.encode() + _weights_fingerprint(file))
        elif file.suffix in (".json", ".jinja", ".model") and file.name != "mlxchat-source.json":
            digest.update(file.name.encode() + file.read_bytes())
    template = getattr(tokenizer, "chat_template", None)
    digest.update(str(template or "").encode())
    return digest.hexdigest()


def _weights_fingerprint(file: Path, edge: int = 1 << 20) -> bytes:
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(edge + 8)
        f.seek(max(size - edge, 0))
        tail = f.read(edge)
    return str(size).encode() + head + tail


@dataclass(frozen=True)
class DiskReport:
    """What the disk tier holds (for `/health`)."""

    entries: int
    bytes: int
    budget: int


@dataclass
class _Snapshot:
    """An entry copied to host memory, ready to be written (no MLX left in it)."""

    tokens: list[int]
    header: dict[str, Any]
    blobs: list[bytes]


class DiskCache:
    """The prompt-cache files of one model under `root`, bounded by `budget` bytes.

    Args:
        root: The folder of every model's prompt caches (a sub-folder per model).
        model_id: `model_identity` of the loaded model.
        budget: The most bytes the files of all models may take together.
    """

    def __init__(self, root: Path, model_id: str, budget: int) -> None:
        self.root = root
        self.model_id = model_id
        self.budget = budget
        self.folder = root / model_id[:32]
        self._lock = threading.Lock()
        self._index: dict[Path, list[int]] = {}
        self._queue: queue.Queue[_Snapshot | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self.copy_seconds = 0.0
        """How long the last `save` held the engine thread (copying the arrays)."""
        self.load_seconds = 0.0
        """How long the last `load` took (reading, checking, making the arrays)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for file in sorted(self.folder.glob("*" + SUFFIX)):
            tokens = self._check_header(file)
            if tokens is not None:
                self._index[file] = tokens
        for leftover in self.folder.glob("*.tmp"):
            leftover.unlink(missing_ok=True)

    # ----- reading (engine thread) ----------------------------------------------------
    def lookup(self, prompt: list[int]) -> tuple[Path | None, int]:
        """The file sharing the longest prefix with `prompt`, and that prefix's length."""
        from mlxchat.engine.session import common_prefix

        best, shared = None, 0
        with self._lock:
            entries = list(self._index.items())
        for file, tokens in entries:
            if (n := common_prefix(tokens, prompt)) > shared:
                best, shared = file, n
        return best, shared

    def load(self, file: Path) -> tuple[list[Any], list[int]] | None:
        """The cache and tokens in `file`, checked (None, the file removed, when it is bad)."""
        from mlx_lm.models.cache import load_prompt_cache

        started = time.perf_counter()
        try:
            data = file.read_bytes()
            tokens, header, start = _parse(data, file.stat().st_size)
            meta = header.get("__metadata__", {})
            problem = self._problem(meta)
            if problem is None and _checksum(tokens, memoryview(data)[start:]) != meta.get(
                _META + "mlxchat_checksum"
            ):
                problem = "checksum mismatch"
            if problem is not None:
                raise ValueError(problem)
            cache = load_prompt_cache(str(file))
            offset = getattr(cache[0], "offset", len(tokens)) if cache else len(tokens)
            if offset != len(tokens):
                raise ValueError(f"holds {offset} positions for {len(tokens)} tokens")
        except FileNotFoundError:
            self._forget(file)
            return None
        except Exception as error:  # a bad file never stops an answer: it is dropped
            self._discard(file, _one_line(error))
            return None
        import mlx.core as mx

        mx.eval([c.state for c in cache])
        os.utime(file)  # least recently used goes first
        self.load_seconds = time.perf_counter() - started
        return cache, tokens

    # ----- writing --------------------------------------------------------------------
    def save(self, cache: list[Any], tokens: list[int]) -> None:
        """Queue `cache` (holding `tokens`) to be written (engine thread: copies the arrays
        to host memory, the writer thread writes them)."""
        if self.budget <= 0 or not tokens:
            return
        if cache and getattr(cache[0], "offset", len(tokens)) != len(tokens):
            return  # a cache in use by an answer (its tokens not recorded yet): not at rest
        with self._lock:
            if any(known == tokens for known in self._index.values()):
                return
        if self._queue.qsize() >= MAX_QUEUED:  # the disk is slower than the answers
            log.info("prompt cache: %d tokens not saved to disk (writer busy)", len(tokens))
            return
        started = time.perf_counter()
        try:
            snapshot = _snapshot(cache, tokens)
        except Exception as error:  # a cache kind the format cannot hold: not written
            log.info("prompt cache: not saved to disk (%s)", _one_line(error))
            return
        self.copy_seconds = time.perf_counter() - started
        snapshot.header["__metadata__"].update(
            {_META + key: value for key, value in self._identity().items()}
        )
        self._queue.put(snapshot)
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="mlxchat-cache-writer")
            self._writer.daemon = True
            self._writer.start()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the queued entries are written (at exit)."""
        if self._writer is None:
            return
        self._queue.put(None)
        self._writer.join(timeout)
        self._writer = None

    def report(self) -> DiskReport:
        """Files and bytes of this model's entries, and the budget of all of them."""
        with self._lock:
            files = list(self._index)
        return DiskReport(len(files), sum(_size(f) for f in files), self.budget)

    def _write_loop(self) -> None:
        while (snapshot := self._queue.get()) is not None:
            try:
                self._write(snapshot)
            except OSError as error:  # a full disk: the entry stays in RAM only
                log.warning("prompt cache: could not write to %s: %s", self.folder, error)

    def _write(self, snapshot: _Snapshot) -> None:
        tokens = snapshot.tokens
        name = hashlib.blake2b(json.dumps(tokens).encode(), digest_size=12).hexdigest()
        file = self.folder / (name + SUFFIX)
        temporary = file.with_suffix(".tmp")
        header = snapshot.header
        header["__metadata__"][_META + "mlxchat_checksum"] = _checksum(tokens, *snapshot.blobs)
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        with open(temporary, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            for blob in snapshot.blobs:
                f.write(blob)
        os.replace(temporary, file)
        with self._lock:
            superseded = [
                known
                for known, held in self._index.items()
                if known != file and _continues(tokens, held)
            ]
            for known in superseded:
                del self._index[known]
            self._index[file] = tokens
        for known in superseded:
            known.unlink(missing_ok=True)
        self._fit(keep=file)

    def _fit(self, keep: Path) -> None:
        """Remove the least recently used files of every model until all fit the budget."""
        files = []
        for file in self.root.glob("*/*" + SUFFIX):
            try:
                stat = file.stat()
            except FileNotFoundError:
                continue
            files.append((stat.st_mtime, stat.st_size, file))
        used = sum(size for _, size, _ in files)
        for _, size, file in sorted(files):
            if used <= self.budget:
                break
            if file == keep:
                continue
            file.unlink(missing_ok=True)
            self._forget(file)
            used -= size

    # ----- checks ---------------------------------------------------------------------
    def _identity(self) -> dict[str, str]:
        return {"mlxchat_format": FORMAT, "mlxchat_version": __version__, "model": self.model_id}

    def _problem(self, meta: dict[str, Any]) -> str | None:
        version = (meta.get(_META + "mlxchat_format"), meta.get(_META + "mlxchat_version"))
        if version != (FORMAT, __version__):
            return "written by another version of mlxchat"
        if meta.get(_META + "model") != self.model_id:
            return "written for another model"
        return None

    def _check_header(self, file: Path) -> list[int] | None:
        """The tokens of a file whose header is whole and ours (else it is removed)."""
        try:
            with open(file, "rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                if length > 1 << 28:
                    raise ValueError("header too long")
                head = f.read(length)
            tokens, _, _ = _parse(struct.pack("<Q", length) + head, _size(file))
            meta = json.loads(head).get("__metadata__", {})
            if (problem := self._problem(meta)) is not None:
                raise ValueError(problem)
        except Exception as error:
            self._discard(file, _one_line(error))
            return None
        return tokens

    def _discard(self, file: Path, why: str) -> None:
        log.warning("prompt cache: ignored and removed %s (%s)", file.name, why)
        file.unlink(missing_ok=True)
        self._forget(file)

    def _forget(self, file: Path) -> None:
        with self._lock:
            self._index.pop(file, None)


def _continues(tokens: list[int], held: list[int]) -> bool:
    """Whether `tokens` go on from (almost) all of `held`: a chat's next turn leaves the
    cached answer's last few tokens (its end of turn, a re-tokenized word), as the RAM
    cache's take-over allows (`session.TAKE_OVER_SLACK`)."""
    from mlxchat.engine.session import TAKE_OVER_SLACK, common_prefix

    if len(held) > len(tokens):
        return False
    return len(held) - common_prefix(tokens, held) <= min(TAKE_OVER_SLACK, len(held) // 4)


def _parse(data: bytes, size: int) -> tuple[list[int], dict[str, Any], int]:
    """The tokens, header and data offset of a prompt-cache file's bytes (`size`: the
    file's length, checked against the header's)."""
    if len(data) < 8:
        raise ValueError("truncated")
    (length,) = struct.unpack("<Q", data[:8])
    if 8 + length > len(data):
        raise ValueError("truncated header")
    header = json.loads(bytes(data[8 : 8 + length]))
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    if 8 + length + max(ends, default=0) != size:
        raise ValueError("truncated" if 8 + length + max(ends, default=0) > size else "too long")
    tokens = json.loads(header.get("__metadata__", {}).get(_META + "mlxchat_tokens", "null"))
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
        raise ValueError("no token list")
    return tokens, header, 8 + length


def _checksum(tokens: list[int], *blobs: Iterable[int] | memoryview | bytes) -> str:
    crc = zlib.crc32(json.dumps(tokens).encode())
    for blob in blobs:
        crc = zlib.crc32(blob, crc)  # type: ignore[arg-type]
    return f"{crc:08x}"


def _snapshot(cache: list[Any], tokens: list[int]) -> _Snapshot:
    """The arrays and metadata mlx-lm's `save_prompt_cache` would write, copied to host
    memory (a plain KV cache is cut to the positions it holds)."""
    import mlx.core as mx
    import numpy as np
    from mlx.utils import tree_flatten
    from mlx_lm.models.cache import KVCache

    states = []
    for layer in cache:
        if type(layer) is KVCache and layer.keys is not None:
            offset = layer.offset
            states.append((layer.keys[..., :offset, :], layer.values[..., :offset, :], offset))
        else:
            states.append(layer.state)
    scalars: list[Any] = [""]
    arrays: dict[str, mx.array] = {}
    flat: list[tuple[str, Any]] = tree_flatten(states)  # type: ignore[assignment]
    for key, value in flat:
        if isinstance(value, mx.array):
            arrays[key] = value
        elif isinstance(value, bool | int | float):
            scalars.append((key, "scalar"))
            arrays[key] = mx.array(value)
        elif isinstance(value, str):
            scalars.append((key, "string"))
            arrays[key] = mx.array([ord(c) for c in value])
        elif value is None:
            scalars.append((key, "none"))
            arrays[key] = mx.array([])
        else:
            raise ValueError(f"cache state not serializable: {type(value).__name__}")
    mx.eval(list(arrays.values()))
    classes = [type(layer).__name__ for layer in cache]
    metadata = dict(tree_flatten([{"mlxchat_tokens": json.dumps(tokens)}, classes, scalars]))
    header: dict[str, Any] = {"__metadata__": metadata}
    blobs, offset = [], 0
    for key, array in arrays.items():
        kind = str(array.dtype).removeprefix("mlx.core.")
        if kind not in _DTYPES:
            raise ValueError(f"dtype {kind}")
        host = array.view(mx.uint16) if kind == "bfloat16" else array
        blob = np.ascontiguousarray(np.array(host, copy=True)).tobytes()
        header[key] = {
            "dtype": _DTYPES[kind],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    return _Snapshot(list(tokens), header, blobs)


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except FileNotFoundError:
        return 0


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]
