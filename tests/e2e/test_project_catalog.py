"""`--project-dir` decides which trained models a config's names resolve to, wherever the command runs from: the CLI
passes the project's model catalog down instead of exporting variables into its own environment."""

from __future__ import annotations

import numpy as np

from helpers import evolve
from pipelines import ModelCatalog
from pipelines.embedders import save_adapter

UNSET = ("EVOLVE_TRAINED_MODELS", "EVOLVE_MODEL_REGISTRY")


def _project_with_adapter(root, swap: int) -> str:
    """A project folder whose .evolve/models holds a real MiniLM query adapter (two coordinates swapped)."""
    root.mkdir()
    matrix = np.eye(384, dtype=np.float32)
    matrix[[0, swap]] = matrix[[swap, 0]]
    weights = save_adapter(root / "weights", matrix)
    catalog = ModelCatalog.for_project(root / ".evolve" / "models", root / "models.yaml", environ={})
    return catalog.trained().save("adapter", weights, {"base_model": "all-MiniLM-L6-v2"}).model_id


def test_a_config_resolves_in_the_project_it_is_run_for_not_the_working_directory(tmp_path, tiny_scifact,
                                                                                  shared_embeddings):
    first, second = tmp_path / "first", tmp_path / "second"
    adapter = _project_with_adapter(first, swap=1)
    assert _project_with_adapter(second, swap=2) != adapter
    config = tmp_path / "adapted.yaml"
    config.write_text(f"name: adapted\ndense: {{model: '{adapter}'}}\nfusion: {{kind: none}}\n")

    def run(project):  # always from the second project's folder, which does not hold the adapter
        return evolve("eval", "--evalset", str(tiny_scifact), "--config", str(config), "--project-dir", str(project),
                      cwd=second, drop=UNSET)

    elsewhere = run(second)
    assert elsewhere.returncode == 2 and f"trained model {adapter} is not in {second / '.evolve' / 'models'}" in \
        elsewhere.stderr.replace("\n", "")
    found = run(first)
    assert found.returncode == 0, found.stderr
    assert "ndcg@10" in found.stdout and (first / ".evolve" / "results").is_dir()
