"""The layers point one way: what each package of mlxchat may import from the others.

Read from the source (every `import` and `from … import`, at module level or inside a
function), so a lazy import breaks the rule as much as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mlxchat

PACKAGE = Path(mlxchat.__file__).parent

MAY_NOT_IMPORT = {
    "engine": {"ui", "server", "cli", "store"},
    "translate": {"ui", "server", "cli", "store"},
    "store": {"ui", "server", "cli", "translate"},
    "server": {"ui", "cli"},
    "ui": {"server", "cli"},
}
"""Package -> the mlxchat packages none of its modules may import."""


def imported_packages(path: Path) -> set[str]:
    """The mlxchat subpackages a module imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "mlxchat" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_each_layer_imports_only_what_it_may() -> None:
    broken = []
    for package, banned in MAY_NOT_IMPORT.items():
        for path in sorted((PACKAGE / package).rglob("*.py")):
            for name in sorted(imported_packages(path) & banned):
                broken.append(f"{path.relative_to(PACKAGE.parent)} imports mlxchat.{name}")
    assert broken == []


def test_the_rule_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from mlxchat.ui.app import ChatApp\n    import mlxchat.cli\n")
    assert imported_packages(module) == {"ui", "cli"}
