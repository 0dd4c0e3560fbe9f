"""Models that start at once: the float32 copy of a converted model and the loaded
tokenizer, kept in the cache.

On the CPU, `cpu.apply_cpu_policy` unpacks a quantized or half-precision model to
float32 at every load (the translate demo's 262k-token embedding alone took most of its
start). The first conversion now writes the float32 weights to
`<cache dir>/converted/<key>/model.safetensors`, with a stamp naming its source (the
model folder's weight and config files: size, mtime and a hash of their first and last
MiB). Later loads map that file instead of converting: the model is built lazily from
its source (nothing read), its quantized layers replaced by float ones, and the float32
weights loaded in their place.

The tokenizer (the translate demo's 262k-token one took seconds to build from its JSON
at every start) is kept pickled next to it, checked the same way against the tokenizer
files and the transformers / tokenizers / mlx-lm versions. The cache folder is the
user's own, as the Hugging Face cache is.

A copy whose stamp no longer matches its source, or which is damaged, is removed and
rebuilt. Engine thread only (MLX).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxchat import __version__, locations

if TYPE_CHECKING:
    import mlx.nn as nn

log = logging.getLogger("mlxchat.engine")

FORMAT = "mlxchat-float32-copy-1"
WEIGHTS = "model.safetensors"
STAMP = "source.json"


def copies_dir() -> Path:
    """Where the float32 copies live."""
    return locations.cache_dir() / "converted"


def copy_dir(source: Path) -> Path:
    """The folder of `source`'s float32 copy."""
    key = hashlib.blake2b(str(source.resolve()).encode(), digest_size=10).hexdigest()
    return copies_dir() / f"{source.name[:40]}-{key}"


def stamp(source: Path) -> dict[str, Any]:
    """What the copy is checked against: the source's weight and config files (size,
    mtime, a hash of their first and last MiB) and the versions that made it."""
    import mlx.core as mx

    files = {}
    for file in sorted(source.iterdir()):
        if file.suffix == ".safetensors" or file.name == "config.json":
            info = file.stat()
            files[file.name] = [info.st_size, info.st_mtime_ns, _edges(file)]
    return {
        "format": FORMAT,
        "mlxchat": __version__,
        "mlx": mx.__version__,  # type: ignore[attr-defined]
        "source": str(source.resolve()),
        "files": files,
    }


def _edges(file: Path, edge: int = 1 << 20) -> str:
    digest = hashlib.blake2b(digest_size=16)
    size = file.stat().st_size
    with open(file, "rb") as f:
        digest.update(f.read(edge))
        f.seek(max(size - edge, 0))
        digest.update(f.read(edge))
    return digest.hexdigest()


def restore(model: nn.Module, source: Path) -> bool:
    """Give `model` (built lazily from `source`) the float32 weights of its copy.

    Returns:
        Whether it did; False when there is no copy, or it was stale or damaged (then
        removed) and the caller converts as before.
    """
    folder = copy_dir(source)
    weights = folder / WEIGHTS
    if not weights.is_file():
        return False
    try:
        saved = json.loads((folder / STAMP).read_text(encoding="utf-8"))
        if saved.get("stamp") != stamp(source) or saved.get("size") != weights.stat().st_size:
            raise ValueError("its source changed")
        _load(model, weights)
    except Exception as error:  # stale or damaged: converted again (and rewritten)
        log.warning("float32 copy of %s removed: %s", source.name, _one_line(error))
        _remove_weights(folder)
        return False
    return True


def _remove_weights(folder: Path) -> None:
    for name in (WEIGHTS, STAMP, "partial-" + WEIGHTS):
        (folder / name).unlink(missing_ok=True)


def _load(model: nn.Module, weights: Path) -> None:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_unflatten

    arrays: dict[str, Any] = mx.load(str(weights))  # type: ignore[assignment]
    layers: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.QuantizedEmbedding):
            layers.append((name, nn.Embedding(*arrays[f"{name}.weight"].shape)))
        elif isinstance(module, nn.QuantizedLinear):
            rows, columns = arrays[f"{name}.weight"].shape
            layers.append((name, nn.Linear(columns, rows, bias=f"{name}.bias" in arrays)))
    if layers:
        model.update_modules(tree_unflatten(layers))
    model.load_weights(list(arrays.items()), strict=True)
    mx.eval(model.parameters())


def store(model: nn.Module, source: Path) -> None:
    """Write `model`'s float32 weights as `source`'s copy (a failure only logs)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    folder = copy_dir(source)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / ("partial-" + WEIGHTS)  # MLX adds .safetensors to other names
        mx.save_safetensors(str(temporary), dict(tree_flatten(model.parameters())))
        os.replace(temporary, folder / WEIGHTS)
        record = {"stamp": stamp(source), "size": (folder / WEIGHTS).stat().st_size}
        (folder / STAMP).write_text(json.dumps(record, indent=1), encoding="utf-8")
    except OSError as error:  # a full disk: the next start converts again
        log.warning("could not keep the float32 copy of %s: %s", source.name, error)
        _remove_weights(folder)


KEEP_AFTER = 0.3
"""Seconds a tokenizer must have taken to build to be worth keeping (a small one builds
faster than it unpickles, and is not worth a file)."""

TOKENIZER = "tokenizer.pickle"
TOKENIZER_STAMP = "tokenizer-source.json"
_TOKENIZER_FILES = (".json", ".jinja", ".model", ".txt")


def tokenizer_stamp(source: Path) -> dict[str, Any]:
    """What a kept tokenizer is checked against: the folder's tokenizer and config files
    and the libraries that built it."""
    import mlx_lm
    import tokenizers
    import transformers

    files = {}
    for file in sorted(source.iterdir()):
        if file.suffix in _TOKENIZER_FILES and file.is_file():
            info = file.stat()
            files[file.name] = [info.st_size, info.st_mtime_ns, _edges(file)]
    versions = [mlx_lm.__version__, transformers.__version__, tokenizers.__version__]
    return {"format": FORMAT, "mlxchat": __version__, "versions": versions, "files": files}


def load_tokenizer(source: Path, eos_token_ids: Any = None) -> Any:
    """mlx-lm's `load_tokenizer`, from the kept copy when it matches `source` (and kept
    for the next start when there was none)."""
    from mlx_lm.utils import load_tokenizer as build

    folder = copy_dir(source)
    kept, saved = folder / TOKENIZER, folder / TOKENIZER_STAMP
    now = tokenizer_stamp(source)
    key = json.dumps(eos_token_ids)
    if kept.is_file():
        try:
            record = json.loads(saved.read_text(encoding="utf-8"))
            if record != {"stamp": now, "eos": key, "size": kept.stat().st_size}:
                raise ValueError("its source changed")
            return pickle.loads(kept.read_bytes())  # noqa: S301 - our own cache file
        except Exception as error:
            log.warning("kept tokenizer of %s removed: %s", source.name, _one_line(error))
            kept.unlink(missing_ok=True)
            saved.unlink(missing_ok=True)
    started = time.perf_counter()
    tokenizer = build(source, eos_token_ids=eos_token_ids)
    if time.perf_counter() - started < KEEP_AFTER:
        return tokenizer
    try:
        data = pickle.dumps(tokenizer)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / ("partial-" + TOKENIZER)
        partial.write_bytes(data)
        os.replace(partial, kept)
        record = {"stamp": now, "eos": key, "size": len(data)}
        saved.write_text(json.dumps(record, indent=1), encoding="utf-8")
    except Exception as error:  # not picklable, a full disk: built again next time
        log.info("tokenizer of %s not kept: %s", source.name, _one_line(error))
        kept.unlink(missing_ok=True)
    return tokenizer


def copies() -> list[tuple[str, int]]:
    """Each float32 copy's source and bytes on disk."""
    found = []
    root = copies_dir()
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            source = json.loads((folder / STAMP).read_text(encoding="utf-8"))["stamp"]["source"]
        except (OSError, ValueError, KeyError, TypeError):
            source = folder.name
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        found.append((source, size))
    return found


def remove_copy(source: Path) -> bool:
    """Remove `source`'s float32 copy; whether there was one."""
    folder = copy_dir(source)
    existed = folder.exists()
    shutil.rmtree(folder, ignore_errors=True)
    return existed


def _one_line(error: BaseException) -> str:
    return (" ".join(str(error).split()) or type(error).__name__)[:200]
