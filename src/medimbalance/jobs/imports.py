"""What a rule script imports, followed through the library: read from the source code, never
by importing it.

The warm-start server preloads these modules (:mod:`.warm`), and the tests check that each
rule's conda environment provides the third-party packages among them. Imports inside functions
count (a job may call them); imports for type checkers only (``if TYPE_CHECKING:``) do not. A
script that loads functions by dotted path (:func:`medimbalance.data.sources.load_function`) may
run every converter and writer of the source tables.

Standard library only.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]  # the folder holding the medimbalance package
SCRIPTS = SRC.parent / "workflow" / "scripts"  # the rule scripts of this checkout
LIBRARY = "medimbalance"
DYNAMIC_LOADER = "medimbalance.data.sources.load_function"


def module_file(name: str) -> Path | None:
    """The source file of library module ``name`` (``None`` for anything else)."""
    path = SRC.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


@functools.cache
def imported_names(path: Path, package: str = "") -> frozenset[str]:
    """Every name a file imports (relative imports resolved against ``package``): modules, and
    ``module.attribute`` for each ``from module import attribute`` (it may be a submodule).
    Each file is read once per process (the scripts share most library modules)."""
    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):  # imports for type checkers only are not run
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            node.body = []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(filter(None, [*parts, base]))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(names)


@functools.cache
def _dynamic_modules() -> frozenset[str]:
    from ..data.sources import GENERATORS, SOURCES  # standard library and PyYAML

    paths = [s.converter for s in SOURCES.values() if s.converter]
    paths += [g.writer for g in GENERATORS.values()]
    return frozenset(path.partition(":")[0] for path in paths)


def script_imports(script: str | Path) -> set[str]:
    """Every name ``script`` imports, directly or through the library modules it reaches."""
    found, todo, seen = set(), [(Path(script), "")], set()
    while todo:
        path, package = todo.pop()
        names = imported_names(path, package)
        if DYNAMIC_LOADER in names:
            names |= _dynamic_modules()
        for name in names - found:
            found.add(name)
            file = module_file(name) if name.split(".")[0] == LIBRARY else None
            if file is not None and file not in seen:
                seen.add(file)
                todo.append((file, name if file.name == "__init__.py" else name.rpartition(".")[0]))
    return found


def third_party(names: set[str]) -> set[str]:
    """The top-level packages among ``names`` that are neither the standard library, the
    library itself nor Snakemake's (``snakemake``, the scripts' ``_libpath``)."""
    skip = {*sys.stdlib_module_names, LIBRARY, "snakemake", "_libpath", "__future__", ""}
    return {name.split(".")[0] for name in names} - skip


def preload_modules(scripts: str | Path = SCRIPTS) -> list[str]:
    """The modules the rule scripts in ``scripts`` import that are worth importing ahead of
    time: third-party and library ones (``module.attribute`` names included; importing those
    fails and is skipped), sorted."""
    names: set[str] = set()
    for script in sorted(Path(scripts).glob("*.py")):
        names |= script_imports(script)
    keep = third_party(names) | {LIBRARY}
    return sorted(n for n in names if n.split(".")[0] in keep and n != "_libpath")
