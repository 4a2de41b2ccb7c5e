"""A cross-encoder reranker trained from packaged weights: the first cross-encoder evolve can have offline.

The base's transformer (the packaged MiniLM, or better an embedder evolve fine-tuned, whose encoder already knows
the domain) gets a fresh one-logit head and is trained listwise: for each query its positive and ``negatives``
mined hard negatives (default 7) are scored together and a softmax cross-entropy asks for the positive first.
(Pointwise binary cross-entropy from MiniLM's weights failed on SciFact: nDCG@10 0.31.) The weights are written as
a Hugging Face sequence-classification folder, which sentence-transformers' CrossEncoder loads.
"""

from __future__ import annotations

import random
from pathlib import Path

from experiments.training.base import TRAINERS, KindDefaults, TransformerTrainer, filled_negatives
from experiments.training.data import TrainingExample
from pipelines import ModelCatalog, torch_device
from pipelines.embedders import model_location, resolve_model, transformer_subfolder


def transformer_folder(name: str, catalog: ModelCatalog) -> Path:
    """The Hugging Face folder inside a base: a sentence-transformers model's Transformer module, or the folder."""
    spec = resolve_model(name, catalog)
    if spec.loader not in ("sentence-transformers", "cross-encoder"):
        raise ValueError(f"a cross-encoder cannot start from {name} ({spec.loader}): it needs transformer weights "
                         f"(all-MiniLM-L6-v2, a local sentence-transformers directory, or a trained embedder)")
    return transformer_subfolder(model_location(spec))


@TRAINERS.register
class RerankerTrainer(TransformerTrainer):
    kind = "reranker"
    defaults = KindDefaults(batch_size=4, learning_rate=3e-5, negatives=7, epochs=1.0)
    recipe = 2
    """2: the fresh head at its own rate (1e-3); at 3e-5 for everything, 100 CPU steps left the loss at chance."""

    def prepare(self) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # "some weights newly initialised" is the point here
        torch.manual_seed(self.settings.seed)
        folder = transformer_folder(self.base, self.components.catalog)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model, loaded = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1,
                                                                               output_loading_info=True)
        self.model.to(torch_device())
        self.fresh = frozenset(loaded["missing_keys"])  # the new scoring head (none when the base is a reranker)
        self.start_optimiser()
        self.pool = sorted(self.data.documents)

    def step(self, batch: list[TrainingExample], rng: random.Random) -> float:
        import torch
        import torch.nn.functional as F

        wanted = max(1, self.settings.negatives or 1)
        queries, passages = [], []
        for example in batch:
            group = [rng.choice(example.positives), *filled_negatives(example, wanted, self.pool, rng)]
            group += [group[-1]] * (wanted + 1 - len(group))  # a tiny corpus: repeat to keep the shape
            queries += [example.query] * len(group)
            passages += [self.data.text(d) for d in group]
        encoded = self.tokenizer(queries, passages, truncation="only_second", padding=True,
                                 max_length=self.settings.max_seq_length, return_tensors="pt").to(self.model.device)
        logits = self.model(**encoded).logits.view(len(batch), wanted + 1)
        loss = F.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long, device=logits.device))
        return self.optimise(loss)

    def export(self, folder: Path) -> None:
        self.model.eval()
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
