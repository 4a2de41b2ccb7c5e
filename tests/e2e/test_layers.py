"""The architecture holds: imports only go downward (DESIGN.md), checked by import-linter's layers contract."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    return subprocess.run([command, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_layers_contract_is_kept():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The check can fail: a copy of the packages where pipelines imports agent is refused."""
    for package in ("agent", "guardrails", "experiments", "pipelines", "evalsets"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "pipelines" / "sneaky.py").write_text("from agent.app import console\n")
    result = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, '.'); "
                             "from importlinter.cli import lint_imports_command; lint_imports_command()",
                             "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "pipelines.sneaky -> agent.app" in result.stdout
