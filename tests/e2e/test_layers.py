"""The architecture holds: imports only go downward (DESIGN.md) between the five layers and inside each of them,
checked by import-linter's layers contracts (pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

from helpers import REPO


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    return subprocess.run([command, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_layers_contract_is_kept():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 kept, 0 broken" in result.stdout  # the five layers, and the packages inside pipelines, experiments
    # (two), guardrails, evalsets and agent


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The check can fail: a copy of the packages where pipelines imports agent, and where a chunker imports the
    retriever (upward inside pipelines), is refused on both."""
    for package in ("agent", "guardrails", "experiments", "pipelines", "evalsets"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "pipelines" / "sneaky.py").write_text("from agent.app import console\n")
    (tmp_path / "pipelines" / "chunking" / "sneaky.py").write_text("from pipelines.retriever import Retriever\n")
    result = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, '.'); "
                             "from importlinter.cli import lint_imports_command; lint_imports_command()",
                             "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "pipelines.sneaky -> agent.app" in result.stdout
    assert "pipelines.chunking.sneaky -> pipelines.retriever" in result.stdout
    assert "5 kept, 2 broken" in result.stdout


def cross_package_imports_of_modules(root: Path) -> list[str]:
    """`from pkg.module import x` in another package, where pkg.module is a module file, not a package front."""
    import ast

    packages = ("agent", "guardrails", "experiments", "pipelines", "evalsets")
    found = []
    for path in sorted(p for package in packages for p in (root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            parts = node.module.split(".")
            if parts[0] in packages and parts[0] != path.relative_to(root).parts[0] and len(parts) > 1 \
                    and not (root.joinpath(*parts) / "__init__.py").is_file():
                found.append(f"{path.relative_to(root)}:{node.lineno} imports {node.module}")
    return found


def test_other_packages_import_only_package_fronts():
    """Each package's __init__ names its public API, and that is what the other packages use (Optuna's rule)."""
    assert cross_package_imports_of_modules(REPO) == []


def test_an_import_past_a_front_is_found(tmp_path):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "__init__.py").write_text("")
    (tmp_path / "experiments" / "space.py").write_text("")
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "x.py").write_text("from experiments.space import load_space\nfrom experiments import y\n")
    assert cross_package_imports_of_modules(tmp_path) == ["agent/x.py:1 imports experiments.space"]
