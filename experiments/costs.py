"""What a trial will cost before it runs: embedding a corpus with a model is the one stage that takes minutes on a
CPU (chunking, BM25 and fusion take seconds), and it is paid once, then cached.

The cost table is built from this machine's measured embedding rates (the embedding store keeps seconds per text
per model, from every call that embedded anything) and what the cache already holds for the corpus, so the study
and the proposers can prefer what is cheap and start a cold embedding only when the time left can pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from evalsets import Document
from pipelines import Components
from pipelines.chunking import ChunkingConfig, make_chunker
from pipelines.embedders import resolve_model, text_key

PRIOR_SECONDS_PER_KCHAR = 0.05
"""Seconds per 1,000 characters for a model never run here (MiniLM-sized on one CPU core; a GPU is far faster and
is measured after its first call)."""


@dataclass(frozen=True)
class EmbeddingCost:
    model: str
    texts: int
    cached: int
    seconds_per_kchar: float
    measured: bool
    cold_chars: int

    @property
    def expected_seconds(self) -> float:
        """Seconds to embed what the cache lacks."""
        return self.cold_chars / 1000 * self.seconds_per_kchar

    def line(self) -> str:
        share = self.cached / self.texts if self.texts else 1.0
        how = "measured here" if self.measured else "no rate measured yet: a prior"
        return (f"{self.model}: {self.texts} chunks, {share:.0%} cached, ~{self.expected_seconds:.0f} s to embed the "
                f"rest ({how})")


def embedding_cost(model: str, chunks: list[str], components: Components) -> EmbeddingCost:
    """The cost of embedding ``chunks`` with ``model`` now: only the texts the cache lacks count. A served model
    that does not answer its probe counts as all cold."""
    spec = resolve_model(model, components.catalog)
    base = spec.base if spec.loader == "adapter" and spec.base else model  # an adapter's passages are its base's
    keys = list(dict.fromkeys(text_key(t) for t in chunks))
    try:
        cache_model = components.embedder(base).cache_model
        found = components.store.get_many(cache_model, "passage", keys) if keys else {}
    except Exception:  # noqa: BLE001 - a server that is down: its trials will say so; here it is only expensive
        found = {}
    lengths = {text_key(t): len(t) for t in chunks}
    cold_chars = sum(lengths[k] for k in keys if k not in found)
    rate = components.store.rate(resolve_model(base, components.catalog).name)
    return EmbeddingCost(model, len(keys), len(found), rate[1] if rate else PRIOR_SECONDS_PER_KCHAR, rate is not None,
                         cold_chars)


def cost_table(models: list[str], corpus: list[Document], chunking: ChunkingConfig,
               components: Components) -> list[EmbeddingCost]:
    """Each model's cost on ``corpus`` cut by ``chunking``, cheapest first."""
    chunks = [c.text for c in make_chunker(chunking).chunk_all(corpus)]
    return sorted((embedding_cost(m, chunks, components) for m in models if m != "none"),
                  key=lambda c: c.expected_seconds)
