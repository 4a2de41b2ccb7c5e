"""Fusing the dense and the lexical candidate lists of each query into one, and the fusion registry.

A fusion kind is one module in this package: a :class:`FusionConfig` subclass fixing ``kind`` (and ``tuned``,
the fields it uses), and a :class:`Fusion` subclass naming it as ``config``, registered with
``@FUSIONS.register``. Registered, the kind is accepted by the pipeline config, offered by search spaces and the
proposer, and built by :func:`make_fusion`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import ClassVar, Literal

from pydantic import Field

from pipelines.registry import ConfigRegistry, KindConfig
from pipelines.scored import ScoredLists, from_rows

Contributions = Callable[[list[tuple[int, float]], float], Iterable[tuple[int, float]]]
"""(one query's (id, score) row of a list, the list's weight) -> what each id adds to its fused score."""


class FusionConfig(KindConfig):
    """How a hybrid pipeline merges its two lists. Every kind carries every field (the config's content address
    stays the same whichever kind is chosen); ``tuned`` says which fields a kind uses."""

    rrf_k: int = Field(60, ge=1, le=1000, description="rrf: rank offset k in 1/(k + rank)")
    dense_weight: float = Field(0.5, ge=0.0, le=1.0, description="weighted: dense share, lexical gets the rest")


class NoFusionConfig(FusionConfig):
    """One retriever only: nothing to fuse."""

    kind: Literal["none"] = "none"
    tuned = ()


class Fusion(ABC):
    """Merges two candidate lists per query.

    The contract of a kind: ``config`` is its :class:`FusionConfig` subclass; :meth:`from_config` builds it (cheap,
    no state beyond the config); :meth:`fuse` is a pure function of its inputs.
    """

    config: ClassVar[type[FusionConfig]]

    @classmethod
    @abstractmethod
    def from_config(cls, config: FusionConfig) -> "Fusion":
        """The fusion for ``config``."""

    @abstractmethod
    def fuse(self, dense: ScoredLists, lexical: ScoredLists) -> ScoredLists:
        """One list per query from the dense and the lexical candidates (ids are chunk positions in both)."""


def weighted_sum(lists: list[ScoredLists], weights: list[float], contributions: Contributions) -> ScoredLists:
    """Per query, each id's fused score: the sum of its contributions from every list (in list order)."""
    rows = []
    for q in range(len(lists[0])):
        fused: dict[int, float] = {}
        for weight, scored in zip(weights, lists):
            for i, s in contributions(scored.row(q), weight):
                fused[i] = fused.get(i, 0.0) + s
        rows.append(list(fused.items()))
    return from_rows(rows)


FUSIONS: ConfigRegistry[Fusion] = ConfigRegistry("fusion kind", FusionConfig, none=NoFusionConfig)
"""Fusion kind -> fusion class ('none' for a single retriever); each kind's module registers itself."""


def make_fusion(config: FusionConfig) -> Fusion | None:
    """The fusion a config names, None for kind 'none' (an unknown kind is refused with the known ones named)."""
    return FUSIONS.make(config)
