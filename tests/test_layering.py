"""The import graph of vggbench: no cycles, and function-level imports only with a reason.

The intended layering; a module imports only from layers to its right:

cli -> ablations / report / bench -> train -> evaluate -> models / data / runtime / store / counting -> paper

train -> evaluate is allowed (validation uses evaluate's protocols; init_from and preinit load a
stored run's model through evaluate); evaluate never imports train. A function-level import is
there to keep the CLI's start-up fast, and says so on its line or the comment line above it (or
above the block of imports it belongs to), e.g. "# lazy: keeps CLI start-up fast".

The graph is read from the source with `ast`, every import included: module-level and
function-level (a cycle hidden inside functions is still a cycle).
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "vggbench"


@dataclass(frozen=True)
class Import:
    """One import of a package module by another: where it is and whether it runs on import."""

    importer: str
    target: str
    path: Path
    line: int
    in_function: bool


def package_modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its __init__)."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported_modules(
    node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: dict[str, Path]
) -> set[str]:
    """The package modules a statement imports. `from a import b` imports the submodule a.b where
    there is one, else (a name defined in a) the module a; relative imports are resolved against
    the importer's package."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    base = node.module or ""
    if node.level:
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    named = {f"{base}.{alias.name}" for alias in node.names}
    return {name if name in modules else base for name in named} & modules.keys()


def _imports_in(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it sits inside a function (or lambda)."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function))
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, inside)

    visit(tree, False)
    return found


def package_imports(root: Path = PACKAGE_ROOT, package: str = PACKAGE) -> list[Import]:
    """Every import from one package module of another (itself excluded)."""
    modules = package_modules(root, package)
    imports = []
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for node, in_function in _imports_in(tree):
            targets = _imported_modules(node, importer, path.name == "__init__.py", modules) - {importer}
            imports += [Import(importer, t, path, node.lineno, in_function) for t in sorted(targets)]
    return imports


def import_graph(imports: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.importer, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) through each group of modules that import each other
    (each strongly connected component of more than one module), in name order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(set(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted((_cycle_within(graph, component) for component in components), key=lambda c: c[0])


def _cycle_within(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def _short(name: str) -> str:
    return name.removeprefix(f"{PACKAGE}.")


def unexplained_function_imports(imports: list[Import], root: Path = PACKAGE_ROOT) -> list[str]:
    """'path:line imports target' for each function-level import with no comment on its line, on
    the comment line above it, or on the comment line above the block of imports it belongs to."""
    missing = []
    for path in sorted({imp.path for imp in imports if imp.in_function}):
        source = path.read_text()
        lines = source.splitlines()
        comments = {
            token.start[0]
            for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type == tokenize.COMMENT
        }
        spans = {
            node.lineno: range(node.lineno, node.end_lineno + 1) for node, _ in _imports_in(ast.parse(source))
        }
        import_lines = {line for span in spans.values() for line in span}
        for imp in imports:
            if imp.path != path or not imp.in_function:
                continue
            if comments & set(spans[imp.line]):
                continue
            above = imp.line - 1
            while above in import_lines:
                above -= 1
            if above >= 1 and lines[above - 1].lstrip().startswith("#"):
                continue
            missing.append(f"{path.relative_to(root).as_posix()}:{imp.line} imports {_short(imp.target)}")
    return missing


def test_no_import_cycle_between_vggbench_modules():
    imports = package_imports()
    cycles = import_cycles(import_graph(imports))
    where = {}
    for imp in reversed(imports):  # the first import of a module by another names the edge
        where[imp.importer, imp.target] = f"{imp.path.relative_to(PACKAGE_ROOT).as_posix()}:{imp.line}"
    assert not cycles, "import cycles: " + "; ".join(
        _short(cycle[0]) + "".join(f" -> {_short(b)} ({where[a, b]})" for a, b in zip(cycle, cycle[1:]))
        for cycle in cycles
    )


def test_every_function_level_import_says_why():
    missing = unexplained_function_imports(package_imports())
    assert not missing, (
        "function-level imports between vggbench modules need a comment saying why "
        "(e.g. '# lazy: keeps CLI start-up fast'):\n" + "\n".join(missing)
    )


# --- The checks themselves, on a planted package ------------------------------------------------


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """pkg: a <-> b through a function-level import; c -> d -> e -> c across a package and a relative
    import; f imports the re-exporting package pkg.sub (not a cycle); g has a block of function-level
    imports under one comment."""
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "def f():\n    from pkg.a import thing\n",
        "pkg/c.py": "import pkg.sub.d\n",
        "pkg/sub/__init__.py": "from pkg.sub.e import E\n",
        "pkg/sub/d.py": "from .e import E\n",
        "pkg/sub/e.py": "def f():\n    # lazy: a reason\n    from .. import c\n",
        "pkg/f.py": "from pkg.sub import E\n",
        "pkg/g.py": "def f():\n    # lazy: a reason\n    import os\n    from pkg import a\n"
        "    from pkg.sub import d\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_cycle_check_finds_each_planted_cycle(planted):
    imports = package_imports(planted, "pkg")
    graph = import_graph(imports)
    assert graph["pkg.f"] == {"pkg.sub"} and graph["pkg.sub"] == {"pkg.sub.e"}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"], ["pkg.c", "pkg.sub.d", "pkg.sub.e", "pkg.c"]]
    assert [(i.importer, i.target) for i in imports if i.in_function] == [
        ("pkg.b", "pkg.a"),
        ("pkg.g", "pkg.a"),
        ("pkg.g", "pkg.sub.d"),
        ("pkg.sub.e", "pkg.c"),
    ]


def test_the_comment_check_names_unexplained_function_level_imports(planted):
    imports = package_imports(planted, "pkg")
    assert unexplained_function_imports(imports, planted) == ["pkg/b.py:2 imports pkg.a"]


# --- Rendering and spec parsing without torch ------------------------------------------------------


@pytest.mark.parametrize("module", ["vggbench.report.write", "vggbench.ablations.spec", "vggbench.cli"])
def test_rendering_and_parsing_a_spec_do_not_import_torch(module):
    """The report only renders (bench's tables are torch-free), a spec parses against the recipe's
    torch-free schema, and the CLI builds its help without torch: each imports without it."""
    import subprocess
    import sys

    code = f"import sys, {module}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", module
