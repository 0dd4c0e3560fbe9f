"""transformers' import table kept on disk (`engine/import_cache.py`): the same table as
transformers builds, read back at the next start, rebuilt when the file is bad."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

CHILD = """
import hashlib, json, sys
from pathlib import Path
if sys.argv[1] == "kept":
    from mlxchat.engine import cpu
    cpu.setup_process()
import transformers
from transformers.utils import import_utils
table = import_utils.define_import_structure(
    Path(transformers.__file__).parent / "models", prefix="models"
)
canonical = sorted(
    [sorted(backends), module, sorted(names)]
    for backends, modules in table.items()
    for module, names in modules.items()
)
assert transformers.AutoTokenizer.__name__ == "AutoTokenizer"
print(hashlib.sha256(json.dumps(canonical).encode()).hexdigest(), len(canonical))
"""


def table_digest(way: str, cache: Path) -> str:
    env = {**os.environ, "MLXCHAT_CACHE_DIR": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, way], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_the_kept_table_is_the_one_transformers_builds_and_is_read_back(tmp_path: Path) -> None:
    built = table_digest("plain", tmp_path)
    assert not (tmp_path / "import-tables").exists()
    assert table_digest("kept", tmp_path) == built  # built and kept
    (kept,) = [f for f in (tmp_path / "import-tables").iterdir() if _holds_models(f)]
    assert table_digest("kept", tmp_path) == built  # read back
    table = pickle.loads(kept.read_bytes())
    table[frozenset()]["models.marker"] = {"Marker"}  # a table read from disk shows it
    kept.write_bytes(pickle.dumps(table))
    assert table_digest("kept", tmp_path) != built
    kept.write_bytes(b"not a pickle")  # a bad file: built again and kept again
    assert table_digest("kept", tmp_path) == built
    assert _holds_models(kept)


def _holds_models(file: Path) -> bool:
    """Whether `file` keeps the table of all model packages as `transformers` reads it."""
    table = pickle.loads(file.read_bytes())
    modules = [module for modules in table.values() for module in modules]
    return len(modules) > 1000 and all(module.startswith("models.") for module in modules)
