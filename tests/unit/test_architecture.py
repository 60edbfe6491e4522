"""The package's shape: no import cycle anywhere, late imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import perfsuite

ROOT = Path(perfsuite.__file__).parent


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module -> the perfsuite modules it imports, at module level or inside functions."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("perfsuite"):
                target = node.module
            else:
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                deps.add(full if full in mods else target)
        graph[name] = {d for d in deps if d in mods and d != name and not name.startswith(d + ".")}
    return graph


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    cycles = []

    def visit(node: str, path: list[str], done: set[str]) -> None:
        for dep in sorted(graph[node]):
            if dep in path:
                cycles.append(" -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in done:
                visit(dep, [*path, dep], done)
        done.add(node)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module], done)
    assert not cycles, cycles


def test_the_graph_sees_late_imports():
    assert "perfsuite.session" in import_graph()["perfsuite.cli.run"]  # imported inside a function


# The packages (and top-level modules) bottom to top: each may import only what stands below
# it. A call back up to a higher layer is what made one variant's path through PerfSession.run
# turn back 24 times before the package layout (docs/architecture.md).
LAYERS = (
    "variant",  # the matrix's vocabulary: imports nothing of perfsuite
    "fileio",
    "progress",
    "stats",
    "store",
    "data",
    "models",
    "device",
    "matrix",
    "measure",
    "cost",
    "judge",
    "report",
    "compare",
    "history",  # reads what report and compare wrote; the CLI and the plugin append to it
    "session",
    "selftest_tally",
    "selftest",
    "plugin",
    "matrix_cases",
    "cli",
    "reference",  # the docs' generated pages: read the CLI's parsers and the settings' dataclasses
    "__main__",
)


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "perfsuite"


def test_every_package_imports_only_layers_below_it():
    graph = import_graph()
    units = {_unit(m) for m in graph} - {"perfsuite"}
    assert units == set(LAYERS), f"a package or top-level module is missing from LAYERS: {units ^ set(LAYERS)}"
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = sorted(
        f"{module} -> {dep}"
        for module, deps in graph.items()
        for dep in deps
        if _unit(module) != "perfsuite" and _unit(dep) != "perfsuite" and rank[_unit(dep)] > rank[_unit(module)]
    )
    assert not upward, upward


def test_the_top_level_holds_at_most_twelve_modules_and_none_is_over_450_lines():
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= 12, top
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 450}
    assert not long, long


def test_python_dash_m_perfsuite_is_the_command_line():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "perfsuite", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"perfsuite {perfsuite.__version__}"
