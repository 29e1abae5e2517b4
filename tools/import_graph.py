"""Measure the import graph of the ``secagg`` package (stdlib ``ast`` only).

Reports the top-level modules, imports that point up the layer order, import cycles between
top-level folders and between files, and the largest modules.  Every import counts: module
level, inside functions, and under ``if TYPE_CHECKING:`` (each is tagged with its kind).

Usage: python tools/import_graph.py [--root PATH] [--json]
"""

from __future__ import annotations

import argparse
import ast
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

PACKAGE = "secagg"
#: the layers contract lint-imports enforces; the tool reads its order from there, so the two
#: never disagree (a list kept here had put dp beside aggregation and left out durable)
CONTRACT_FILE = ".importlinter"


class LayersNotFound(Exception):
    """The root holds no ``.importlinter`` with a ``layers =`` list."""


def load_layers(root: Path) -> dict[str, int]:
    """Each top-level module's layer, 0 at the bottom, from ``root/.importlinter``.

    The contract lists the layers top to bottom, one a line; ``a | b`` on one line are
    independent siblings of one layer, and parentheses mark a container, which changes
    nothing here."""
    path = root / CONTRACT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LayersNotFound(f"{path}: {exc.strerror or exc}") from None
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "layers =")
    except StopIteration:
        raise LayersNotFound(f"{path} has no 'layers =' list") from None
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if not line.startswith((" ", "\t")) or not line.strip():
            break
        rows.append([name.strip().strip("()") for name in line.split("|")])
    return {name: i for i, names in enumerate(reversed(rows)) for name in names}


BIG_MODULE_LINES = 500


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    kind: str  # "module", "function" or "type-checking"


def find_modules(pkg_dir: Path) -> dict[str, Path]:
    """Map each dotted module name under ``pkg_dir`` to its file."""
    modules = {}
    for path in sorted(pkg_dir.rglob("*.py")):
        parts = path.relative_to(pkg_dir.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _walk(node: ast.AST, kind: str = "module") -> Iterator[tuple[ast.AST, str]]:
    """Yield every node below ``node`` with the kind of scope it sits in."""
    for child in ast.iter_child_nodes(node):
        yield child, kind
        guarded = isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, "function")
        elif guarded and kind == "module":
            yield from _walk(ast.Module(child.body, []), "type-checking")
            yield from _walk(ast.Module(child.orelse, []), kind)
        else:
            yield from _walk(child, kind)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def find_imports(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node, kind in _walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from pkg import name``: name is a submodule, or an attribute of ``pkg``.
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            imported = _resolve(target, modules)
            if imported and imported != module:
                found.append(Import(module, imported, getattr(node, "lineno", 0), kind))
    return found


def top(module: str) -> str:
    return ".".join(module.split(".")[:2])


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; returns only the components with more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    result: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            if component:
                result.append(sorted([*component, node]))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(result)


@dataclass
class Report:
    top_level: list[str]
    unmapped: list[str]
    upward_imports: list[Import]
    folder_cycles: list[list[str]]
    file_cycles: list[list[str]]
    largest_modules: list[tuple[str, int]]
    over_500_lines: list[tuple[str, int]]
    layer_of: dict[str, int]


def analyse(root: Path) -> Report:
    layer_of = load_layers(root)
    modules = find_modules(root / PACKAGE)
    imports = [imp for name, path in modules.items() for imp in find_imports(name, path, modules)]
    tops = sorted({top(m) for m in modules} - {PACKAGE})
    upward: dict[tuple[str, str], Import] = {}  # first occurrence of each (importer, imported)
    file_graph: dict[str, set[str]] = {}
    folder_graph: dict[str, set[str]] = {}
    for imp in imports:
        file_graph.setdefault(imp.importer, set()).add(imp.imported)
        src, dst = top(imp.importer), top(imp.imported)
        if PACKAGE not in (src, dst) and src != dst:
            folder_graph.setdefault(src, set()).add(dst)
            if src in layer_of and dst in layer_of and layer_of[src] < layer_of[dst]:
                upward.setdefault((imp.importer, imp.imported), imp)
    lines = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in modules.items()}
    largest = sorted(lines.items(), key=lambda item: (-item[1], item[0]))
    return Report(
        top_level=tops,
        unmapped=[t for t in tops if t not in layer_of],
        upward_imports=list(upward.values()),
        folder_cycles=strongly_connected(folder_graph),
        file_cycles=strongly_connected(file_graph),
        largest_modules=largest[:10],
        over_500_lines=[(m, n) for m, n in largest if n > BIG_MODULE_LINES],
        layer_of=layer_of,
    )


def render(report: Report) -> str:
    out = [f"top-level modules of {PACKAGE}: {len(report.top_level)}"]
    out.append(f"  unmapped (no layer): {', '.join(report.unmapped) or 'none'}")
    out.append(f"upward imports: {len(report.upward_imports)}")
    out.extend(
        f"  {i.importer} -> {i.imported}  (line {i.line}, {i.kind})" for i in report.upward_imports
    )
    for title, cycles in (("folder", report.folder_cycles), ("file", report.file_cycles)):
        out.append(f"{title} cycles: {len(cycles)}")
        out.extend(f"  {' <-> '.join(cycle)}" for cycle in cycles)
    for title, rows in (
        ("largest modules", report.largest_modules),
        (f"modules over {BIG_MODULE_LINES} lines", report.over_500_lines),
    ):
        out.append(f"{title}: {len(rows)}")
        out.extend(f"  {n:5d}  {m}  [layer {report.layer_of.get(top(m), '?')}]" for m, n in rows)
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    try:
        report = analyse(args.root)
    except LayersNotFound as exc:
        raise SystemExit(f"import_graph: {exc}") from None
    if args.json:
        data = asdict(report) | {
            "top_level_count": len(report.top_level),
            "upward_import_count": len(report.upward_imports),
        }
        print(json.dumps(data, indent=2))
    else:
        print(render(report))


if __name__ == "__main__":
    main()
