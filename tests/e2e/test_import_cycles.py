"""No import circles inside the layers: a module never needs, even lazily or for a type, a module that needs it.

import-linter's layers contract keeps imports between packages going down (tests/e2e/test_layers.py); a circle
between two modules of one package hides in a function-level or ``TYPE_CHECKING`` import and makes the pair one
unit nobody can read or move alone. grimp (import-linter's graph) sees every import statement, lazy ones included.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

PACKAGES = ("agent", "guardrails", "experiments", "pipelines", "evalsets")
REPO = Path(__file__).resolve().parents[2]

KNOWN: set[frozenset[str]] = set()
"""Circles not yet taken apart (each one listed with why); the test fails on any other, and on one that is gone."""


def import_circles(graph: grimp.ImportGraph) -> list[frozenset[str]]:
    """Every group of modules that import each other round (strongly connected, 2+ modules). A package importing
    its own submodules (its public face) is not a circle: the package is the submodules' front, not their peer."""
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m)
                 if i in graph.modules and not i.startswith(m + ".")} for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[frozenset[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                circles.append(frozenset(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(edges)))
    try:
        for module in sorted(edges):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return circles


def test_no_import_circles_inside_the_layers(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    circles = set(import_circles(grimp.build_graph(*PACKAGES, cache_dir=None)))
    assert circles - KNOWN == set(), "new import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in circles - KNOWN)
    assert KNOWN - circles == set(), "a known circle is gone: remove it from KNOWN"


def test_a_lazy_import_that_closes_a_circle_is_found(tmp_path, monkeypatch):
    """The check can fail: two modules that import each other, one of them only inside a function."""
    package = tmp_path / "roundabout"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "first.py").write_text("from roundabout.second import helper\n")
    (package / "second.py").write_text("def helper():\n    from roundabout import first\n    return first\n")
    (package / "third.py").write_text("from roundabout.first import helper\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    circles = import_circles(grimp.build_graph("roundabout", cache_dir=None))
    assert circles == [frozenset({"roundabout.first", "roundabout.second"})]
