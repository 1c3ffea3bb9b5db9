"""The repository's walls, read from the source with ast: what may import what.

- No ``sys.path.insert`` anywhere: every package is found the way Python finds packages.
- Packaging (``quantize/``) and training (``training/``) are siblings: neither imports the other;
  what both need is in ``models/``.
- The runtime (``sdk/``) names no sibling package: its CLI finds the other stages' commands
  through entry points.
- The lab (``lab/``) uses the product's public names only: a name it imports from a
  ``ranker_*`` module is in that module's ``__all__``.
- No library function is longer than 60 lines (docstring included): ruff checks complexity,
  branches, arguments and statements (``pyproject.toml``), but has no rule for length.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SIBLINGS = ("ranker_training", "ranker_quantize", "ranker_eval", "ranker_bindings", "ranker_models")
LIBRARY = ("sdk", "quantize", "training", "evaluation", "bindings", "models")
MAX_FUNCTION_LINES = 60


def _sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every import statement in ``path`` (``names`` empty for ``import m``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, [a.name for a in node.names]))
    return out


def _top(module: str) -> str:
    return module.split(".")[0]


def _edits_sys_path(node: ast.AST) -> bool:
    """``sys.path.insert(...)``, ``.append``, ``.extend`` or ``.remove``: a call that edits ``sys.path``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    target = node.func.value
    return (
        node.func.attr in ("insert", "append", "extend", "remove")
        and isinstance(target, ast.Attribute)
        and target.attr == "path"
        and getattr(target.value, "id", "") == "sys"
    )


def test_no_sys_path_insert_anywhere():
    skip = ("build", "runs", ".git")
    sources = [
        p
        for p in ROOT.rglob("*.py")
        if not any(part in skip or part.startswith(".venv") for part in p.relative_to(ROOT).parts)
    ]
    offenders = sorted(
        str(p.relative_to(ROOT))
        for p in sources
        if any(_edits_sys_path(n) for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))))
    )
    assert not offenders, f"sys.path edited in {offenders}"


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [("quantize", "ranker_training"), ("training", "ranker_quantize"), ("models", "ranker_training")],
)
def test_siblings_do_not_import_each_other(folder, forbidden):
    bad = [str(p.relative_to(ROOT)) for p in _sources(folder) if any(_top(m) == forbidden for m, _ in _imports(p))]
    assert not bad, f"{folder}/ imports {forbidden}: {bad}"


def test_the_runtime_names_no_sibling_package():
    named = {}
    for p in _sources("sdk"):
        text = p.read_text(encoding="utf-8")
        tree = ast.parse(text)
        imported = {_top(m) for m, _ in _imports(p)} & set(SIBLINGS)
        strings = {
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.split(".")[0] in SIBLINGS
        }
        if imported or strings:
            named[str(p.relative_to(ROOT))] = sorted(imported | strings)
    assert not named, named


def test_the_lab_imports_public_names_only():
    private = []
    for p in _sources("lab"):
        for module, names in _imports(p):
            if not module.startswith("ranker_"):
                continue
            mod = importlib.import_module(module)
            public = set(getattr(mod, "__all__", ()))
            for name in names:
                is_module = (
                    importlib.util.find_spec(f"{module}.{name}") is not None if hasattr(mod, "__path__") else False
                )
                if name not in public and not is_module:
                    private.append(f"{p.relative_to(ROOT)}: {module}.{name}")
    assert not private, private


def test_no_library_function_is_longer_than_60_lines():
    long = []
    for p in _sources(*LIBRARY):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines; split them:\n" + "\n".join(long)
