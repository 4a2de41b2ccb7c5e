"""A fine-tuned sentence-transformers bi-encoder: in-batch negatives plus mined hard negatives.

Starts from any sentence-transformers model evolve can load offline (the packaged MiniLM, a local directory, or an
embedder trained before) and uses the library's MultipleNegativesRankingLoss: each query against its positive, the
other queries' positives and every hard negative in the batch. The result is a new embedder, so the corpus is
embedded again under it (cached under its own content hash).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from experiments.training.base import TRAINERS, KindDefaults, TransformerTrainer, filled_negatives
from experiments.training.data import TrainingExample
from pipelines import ModelCatalog, torch_device
from pipelines.embedders import load_without_code, model_location, resolve_model


def sentence_transformers_base(name: str, catalog: ModelCatalog) -> tuple[Any, Any]:
    """(spec, SentenceTransformer) of a base that can be fine-tuned; a clear error for one that cannot."""
    spec = resolve_model(name, catalog)
    if spec.loader != "sentence-transformers":
        raise ValueError(f"{name} ({spec.loader}) cannot be fine-tuned: only sentence-transformers models can; "
                         f"train a query adapter for it instead (--kind adapter)")
    from sentence_transformers import SentenceTransformer

    return spec, load_without_code(lambda where: SentenceTransformer(where, device=torch_device()),
                                   model_location(spec))


def features(model: Any, texts: list[str]) -> dict[str, Any]:
    encode = getattr(model, "preprocess", None) or model.tokenize
    return {k: v.to(model.device) if hasattr(v, "to") else v for k, v in encode(texts).items()}


@TRAINERS.register
class EmbedderTrainer(TransformerTrainer):
    kind = "embedder"
    defaults = KindDefaults(batch_size=16, learning_rate=2e-5, negatives=1, epochs=1.0)

    def prepare(self) -> None:
        import torch

        try:
            from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        except ImportError:  # sentence-transformers < 6
            from sentence_transformers.losses import MultipleNegativesRankingLoss

        torch.manual_seed(self.settings.seed)
        self.spec, self.model = sentence_transformers_base(self.base, self.components.catalog)
        self.model.max_seq_length = min(self.settings.max_seq_length, self.model.max_seq_length or 10**6)
        self.loss = MultipleNegativesRankingLoss(self.model, scale=1.0 / self.settings.temperature)
        self.start_optimiser()
        self.pool = sorted(self.data.documents)

    def step(self, batch: list[TrainingExample], rng: random.Random) -> float:
        spec, wanted = self.spec, self.settings.negatives or 0
        anchors = [spec.query_prefix + e.query for e in batch]
        columns = [[spec.passage_prefix + self.data.text(rng.choice(e.positives)) for e in batch]]
        negatives = [filled_negatives(e, wanted, self.pool, rng) for e in batch]
        if wanted and all(len(n) == wanted for n in negatives):
            columns += [[spec.passage_prefix + self.data.text(n[i]) for n in negatives] for i in range(wanted)]
        loss = self.loss([features(self.model, anchors), *(features(self.model, c) for c in columns)], None)
        return self.optimise(loss)

    def export(self, folder: Path) -> None:
        self.model.eval()
        self.model.save(str(folder))
