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
    "engine": {"ui", "server", "cli", "store", "translate"},
    "models": {"ui", "server", "cli", "store", "translate"},
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


MODELS_MAY_NOT_IMPORT = {"mlxchat.engine.engine", "mlxchat.engine.batching"}
MODELS_MAY_NOT_IMPORT |= {"mlxchat.engine.generation", "mlxchat.engine.worker"}
"""Where a model comes from knows nothing of how it generates (the engine asks models/)."""


def test_models_do_not_import_the_generation_engine() -> None:
    broken = []
    for path in sorted((PACKAGE / "models").rglob("*.py")):
        for name in sorted(imported_modules(path) & MODELS_MAY_NOT_IMPORT):
            broken.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert broken == []


def imported_modules(path: Path) -> set[str]:
    """Every mlxchat module a module imports, lazily or not, typing-only or not."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("mlxchat.")}


def test_the_rule_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from mlxchat.ui.app import ChatApp\n    import mlxchat.cli\n")
    assert imported_packages(module) == {"ui", "cli"}


def runtime_imports(path: Path) -> set[str]:
    """The mlxchat modules a module imports when it runs (not under `if TYPE_CHECKING:`):
    `from package import module` names the module, `from module import name` the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mlxchat.")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlxchat"):
            for alias in node.names:
                module = f"{node.module}.{alias.name}"
                found.add(module if _is_module(module) else str(node.module))
    return found


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative).is_dir()


def module_graph() -> dict[str, set[str]]:
    """Module -> the mlxchat modules it imports at run time."""
    modules = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
            ".__init__"
        ): path
        for path in PACKAGE.rglob("*.py")
    }
    return {
        name: (runtime_imports(path) & modules.keys()) - {name} for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (each once, from its smallest module)."""
    found = []

    def walk(path: list[str]) -> None:
        for after in sorted(graph[path[-1]]):
            if after == path[0]:
                found.append(path)
            elif after > path[0] and after not in path:
                walk([*path, after])

    for start in sorted(graph):
        walk([start])
    return found


def test_no_import_cycles() -> None:
    assert cycles(module_graph()) == []


def test_no_typing_only_cycles_between_the_gguf_modules() -> None:
    """The GGUF reader, tensor types, architectures and tokenizer import one another in one
    direction, even counting imports made for type hints only."""
    graph = {}
    for path in sorted((PACKAGE / "models").glob("gguf*.py")):
        name = f"mlxchat.models.{path.stem}"
        graph[name] = {m for m in imported_modules(path) if m.startswith("mlxchat.models.gguf")}
    graph = {name: after & graph.keys() - {name} for name, after in graph.items()}
    assert len(graph) >= 5
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
