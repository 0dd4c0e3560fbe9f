"""A faster `import transformers`: its table of lazy names is kept on disk.

mlx-lm imports transformers for its tokenizers, and transformers 5 builds, at every import,
the table of what each of its ~400 model packages exports by reading ~3,400 source files
(`define_import_structure`): about 0.6 s of every start on this CPU, half of the import.
The table depends only on those files, so it is kept in the cache dir, keyed by the
transformers version, the folder and its modification time, and read back in a few
milliseconds. A table that cannot be read is built again (and kept again).

Framework internals, behind this one door: `transformers.utils.import_utils.
define_import_structure(module_path, prefix=None)`, verified on transformers 5.x; with any
other major version (or where it is missing) nothing is changed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.abc
import importlib.machinery
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

TARGET = "transformers.utils.import_utils"
VERIFIED_MAJOR = "5."
FOLDER = "import-tables"


def install() -> None:
    """Keep transformers' import table from the next import of transformers on (a no-op
    once transformers is imported, or when installed already)."""
    if TARGET in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())


class _Finder(importlib.abc.MetaPathFinder):
    """Finds `TARGET` as the other finders do, and patches it once it has run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        original = getattr(module, "define_import_structure", None)
        version = _transformers_version()
        if callable(original) and version.startswith(VERIFIED_MAJOR):
            setattr(module, "define_import_structure", kept_on_disk(original, version))  # noqa: B010


def _transformers_version() -> str:
    try:
        from importlib.metadata import version

        return version("transformers")
    except Exception:
        return ""


def kept_on_disk(build: Callable[..., Any], version: str) -> Callable[..., Any]:
    """`build(module_path, prefix=None)`, its result kept in the cache dir and read back
    while the folder is unchanged."""

    @functools.lru_cache
    def define_import_structure(module_path: Any, prefix: str | None = None) -> Any:
        try:
            file = _table_file(Path(module_path), prefix, version)
        except OSError:
            return build(module_path, prefix)
        try:
            return pickle.loads(file.read_bytes())  # noqa: S301 - our own cache file
        except Exception:
            pass  # none yet, or unreadable: built and kept
        table = build(module_path, prefix)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            partial = file.with_name(f"partial-{os.getpid()}-{file.name}")
            partial.write_bytes(pickle.dumps(table))
            os.replace(partial, file)
        except OSError:
            pass  # a read-only cache: built again next time
        return table

    return define_import_structure


def _table_file(folder: Path, prefix: str | None, version: str) -> Path:
    """The file that keeps the table of `folder` as it is now."""
    from mlxchat.locations import cache_dir

    where = folder if folder.is_dir() else folder.parent  # a package's __init__.py: its folder
    stamp = f"{version}|{folder.resolve()}|{where.stat().st_mtime_ns}|{prefix}|{sys.version}"
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:20]
    return cache_dir() / FOLDER / f"transformers-{version}-{digest}.pickle"
