"""The shape of handlers/ and storage/: no import cycle, and no feature imports another feature.

Every import is read from the source (ast), function-level ones included, so a cycle cannot
hide behind an import moved into a function body.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("handlers", "storage")

# What features share; anything else in handlers/ is a feature and imports none of the others.
SHARED = {
    "handlers",
    "handlers.access",
    "handlers.callbacks",
    "handlers.common",
    "handlers.consent",
    "handlers.labels",
    "handlers.menus",
    "handlers.prompts",
    "handlers.review_card",
    "handlers.speak",
    "handlers.widgets",
}
ALLOWED_BACK_EDGES: set[tuple[str, str]] = set()  # none: every import points one way
# The one module that knows several features: where a location or a /start payload goes.
DISPATCH = "handlers.dispatch"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `path` imports anywhere in its body."""
    out: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:  # type annotations only: not imported when running
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from handlers import report` imports handlers.report; `from x import name` x.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        out.update(name for name in names if name in known)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(path, known) - {name} for name, path in found.items()}


def is_shared(name: str) -> bool:
    return name in SHARED or name.startswith("handlers.infra")


def test_no_import_cycle_in_handlers_or_storage() -> None:
    edges = graph()
    # Packages' own __init__ are not edges: `from handlers import x` names x, not a cycle.
    edges = {
        name: {to for to in tos if to not in PACKAGES and (name, to) not in ALLOWED_BACK_EDGES}
        for name, tos in edges.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for to in sorted(edges[name]):
            if state.get(to) == 1:
                cycle = [*stack[stack.index(to) :], to]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if to not in state:
                visit(to)
        stack.pop()
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)


def test_features_import_no_other_feature() -> None:
    edges = graph()
    wrong = [
        f"{name} imports {to}"
        for name, tos in sorted(edges.items())
        if name.startswith("handlers") and not is_shared(name) and name != DISPATCH
        for to in sorted(tos)
        if to.startswith("handlers") and not is_shared(to)
    ]
    assert wrong == []


def test_shared_blocks_import_no_feature() -> None:
    edges = graph()
    wrong = [
        f"{name} imports {to}"
        for name, tos in sorted(edges.items())
        if is_shared(name)
        for to in sorted(tos)
        if to.startswith("handlers") and not is_shared(to)
    ]
    assert wrong == []


def test_only_bot_imports_the_dispatch() -> None:
    edges = graph()
    assert [name for name, tos in edges.items() if DISPATCH in tos] == []


def test_the_checks_see_function_level_imports(tmp_path: Path) -> None:
    """An import inside a function body counts (the way a cycle used to hide)."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from handlers.membercard import spendable_line\n")
    assert imports(source, {"handlers.membercard", "handlers.money"}) == {"handlers.membercard"}
