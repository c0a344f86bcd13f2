"""The package's shape: no import cycles, layers import only downwards, shared helpers by public
name. Read from the source (module-level imports), so a new module is covered without a list."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for p in (SRC / "stalwart").rglob("*.py"):
        name = ".".join(p.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


MODULES = _modules()


def _imports(name: str, path: Path, top_level: bool) -> list[tuple[str, list[str]]]:
    """(module, imported names) of each ``stalwart`` import; only those run at import time when
    ``top_level`` (function bodies and ``if TYPE_CHECKING:`` excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    if top_level:
        nodes = []
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            nodes += [node, *(node.body if isinstance(node, (ast.If, ast.Try)) else [])]
    else:
        nodes = list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("stalwart")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("stalwart"):
                found.append((module, [a.name for a in node.names]))
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for module, names in _imports(name, path, top_level=True):
            if module in MODULES:
                graph[name].add(module)
            graph[name] |= {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_level_import_cycle():
    assert _cycles(_graph()) == []


def test_lower_layers_never_import_checks_report_or_suite():
    upper = ("stalwart.checks", "stalwart.report", "stalwart.suite", "stalwart.cli", "stalwart._cli")
    lower = ("stalwart.data", "stalwart.models", "stalwart.perturb", "stalwart.attacks", "stalwart.shift",
             "stalwart.defend", "stalwart._")
    wrong = []
    for name, path in MODULES.items():
        if not name.startswith(lower) or name.startswith(("stalwart._cli", "stalwart._scan")):
            continue  # the command line and the scan engine sit on top
        wrong += [f"{name} imports {m}" for m, _ in _imports(name, path, top_level=False) if m.startswith(upper)]
    assert wrong == []


def test_no_private_name_is_imported_from_another_module():
    """A helper two modules share has a public name in one home (a private module is fine)."""
    wrong = []
    for name, path in MODULES.items():
        for module, names in _imports(name, path, top_level=False):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")
                       and f"{module}.{n}" not in MODULES]
            if private:
                wrong.append(f"{name} imports {private} from {module}")
    assert wrong == []


def test_no_lazily_exported_name_is_also_a_submodule():
    """``from pkg import name`` must give the function, never the module of the same name: a
    package that loads its members on first use cannot tell them apart once the module is
    imported (``stalwart.models.wrap`` once became the module that way)."""
    import importlib
    import pkgutil

    clashes = []
    for name, path in MODULES.items():
        if path.name != "__init__.py" or "lazy_module" not in path.read_text(encoding="utf-8"):
            continue
        package = importlib.import_module(name)
        subs = {m.name for m in pkgutil.iter_modules(package.__path__)}
        for export in sorted(set(package.__all__) & subs):
            module = importlib.import_module(f"{name}.{export}")  # first, as a user's import might
            if getattr(package, export) is module:
                clashes.append(f"{name}.{export}")
    assert clashes == []
