"""pyproject declares what the package imports, and nothing it does not; TID251 bans
every private Textual module."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import textual

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SOURCES = [*(ROOT / "mlxchat").rglob("*.py"), *(ROOT / "themes").rglob("*.py")]

IMPORT_NAMES = {"markdown-it-py": "markdown_it", "mlx-lm": "mlx_lm"}
"""Distributions whose import name is not their name with - as _."""
OPTIONAL = {"eval", "serve", "tools"}
"""Extras the package may import from (lazily, for an optional feature)."""
LOADED = {"ngsolve_openblas"}
"""Dependencies loaded as shared libraries (engine/blas.py), never imported."""


def import_name(requirement: str) -> str:
    """`mlx[cpu]>=0.29; sys_platform != 'darwin'` → `mlx`."""
    name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()
    return IMPORT_NAMES.get(name, name.replace("-", "_"))


def third_party_imports(sources: list[Path]) -> set[str]:
    """Top-level names of the modules `sources` import that are neither stdlib nor ours."""
    names: set[str] = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "mlxchat"}


def test_every_third_party_import_is_declared() -> None:
    declared = {import_name(r) for r in PYPROJECT["project"]["dependencies"]}
    optional = {
        import_name(r)
        for extra in OPTIONAL
        for r in PYPROJECT["project"]["optional-dependencies"][extra]
    }
    assert third_party_imports(SOURCES) - declared - optional == set()


def test_every_dependency_is_imported() -> None:
    declared = {import_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert declared - third_party_imports(SOURCES) - LOADED == set()


def test_import_name_maps_distributions() -> None:
    assert import_name("markdown-it-py>=3") == "markdown_it"
    assert import_name("mlx[cpu]>=0.29; sys_platform != 'darwin'") == "mlx"
    assert import_name("huggingface_hub>=0.24") == "huggingface_hub"


def test_private_textual_modules_are_all_banned() -> None:
    banned = PYPROJECT["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-api"]
    package = Path(textual.__file__).parent
    private = {
        f"textual.{p.stem}"
        for p in package.iterdir()
        if p.name.startswith("_") and not p.name.startswith("__")
    }
    assert private - set(banned) == set()
