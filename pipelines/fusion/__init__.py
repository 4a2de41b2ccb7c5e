"""Fusion of a dense and a lexical candidate list: reciprocal-rank fusion or weighted normalised scores.

Each kind is one private module that registers itself in :data:`FUSIONS`; :func:`make_fusion` builds one from
its config.
"""

from pipelines.fusion._rrf import ReciprocalRankFusion, RRFConfig, reciprocal_rank_fusion
from pipelines.fusion._weighted import WeightedConfig, WeightedScoreFusion, weighted_score_fusion
from pipelines.fusion.base import FUSIONS, Fusion, FusionConfig, NoFusionConfig, make_fusion
from pipelines.registry import import_kinds

import_kinds(__name__, __path__)

__all__ = ["FUSIONS", "Fusion", "FusionConfig", "NoFusionConfig", "RRFConfig", "ReciprocalRankFusion",
           "WeightedConfig", "WeightedScoreFusion", "make_fusion", "reciprocal_rank_fusion", "weighted_score_fusion"]
