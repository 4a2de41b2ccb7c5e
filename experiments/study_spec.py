"""What a study is, as data: everything needed to rebuild its objective anywhere (a worker on another node reads it
from the study's user attributes). Kept apart from :mod:`experiments.study` so the report can name it without
importing the runner."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evalsets import EvalSet
from pipelines import ModelCatalog
from experiments.space import SearchSpace, space_from_dict
from experiments.splits import HOLDOUT_FRACTION, tune_and_heldout


class StudySpec(BaseModel):
    """Everything needed to rebuild a study's objective anywhere (kept in the study's user attrs)."""

    model_config = ConfigDict(extra="forbid")

    study_name: str
    evalset: str
    space: dict[str, Any]
    metric: str = "ndcg@10"
    seed: int = 0
    n_trials: int | None = None
    holdout_fraction: float = Field(HOLDOUT_FRACTION, gt=0, lt=1)
    use_train_split: bool = True
    multi_objective: bool = False
    prune: bool = True
    prune_fractions: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0])
    max_tune_queries: int | None = Field(None, ge=1, description="cap the tuning queries (seeded) for speed")
    fold: int | None = Field(None, ge=0, description="cross-fitting: hold back this fold, tune on the others")
    folds: int = Field(5, ge=2, le=20)

    def search_space(self, catalog: ModelCatalog | None = None) -> SearchSpace:
        """The study's space, its model names resolved in ``catalog`` (default: this process's)."""
        return space_from_dict(self.space, f"study {self.study_name} space", catalog)

    def split(self) -> tuple[EvalSet, EvalSet]:
        """(tuning queries, held-back queries) of this study."""
        return tune_and_heldout(self.evalset, self.holdout_fraction, self.seed, self.use_train_split, self.fold,
                                self.folds)
