"""Can the answer stage decide anything in the time it is given? One answer and one verdict, timed, say so first.

On a 2-core CPU with long Korean pages, the stage spent 249 s of a 450 s allowance and judged no query; on the
demo set it judged 6 in 109 s, too few for any answer rule to refuse anything. So before a run spends its
allowance, one answer and one verdict are timed (the LLM's cache bypassed: a cached reply says nothing of cost),
and the stage runs only if the allowance pays for the policy's ``answers.min_paired_queries`` queries judged for
both candidate and champion; otherwise the run skips it with one line and the time goes to trials.
"""

from __future__ import annotations

import copy
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from evalsets import EvalSet, Query
from experiments.judge import Judge
from experiments.short_answers import short_references
from pipelines import GenerationConfig, Generator


@dataclass
class AnswerCost:
    """Seconds of one answer and one verdict on this LLM, and the verdicts a query needs."""

    model: str
    answer_seconds: float
    verdict_seconds: float
    verdicts_per_query: int
    """Faithfulness and context relevance, plus correctness where the reference is long (short: no judge)."""

    @property
    def query_seconds(self) -> float:
        return self.answer_seconds + self.verdicts_per_query * self.verdict_seconds

    def paired_within(self, seconds: float) -> int:
        """Queries judged for both candidate and champion within ``seconds`` (the guard step's two configs)."""
        return int(seconds // (2 * self.query_seconds)) if self.query_seconds > 0 else 1 << 30

    def skip_reason(self, seconds: float, min_paired: int) -> str | None:
        """Why the stage cannot decide anything in ``seconds`` (None: it can)."""
        paired = self.paired_within(seconds)
        if paired >= min_paired:
            return None
        need = math.ceil(min_paired * 2 * self.query_seconds)
        return (f"one answer took {self.answer_seconds:.0f} s and one verdict {self.verdict_seconds:.0f} s on "
                f"{self.model}, so {min_paired} paired queries (answers.min_paired_queries) need about {need} s and "
                f"the {seconds:.0f} s allowed pay for {paired}; the time goes to trials")


def _probe_query(evalset: EvalSet) -> Query:
    with_reference = [q for q in evalset.queries if q.answers]
    if not (with_reference or evalset.queries):
        raise ValueError(f"{evalset.name} has no queries to time an answer on")
    return (with_reference or evalset.queries)[0]


def _probe_chunks(evalset: EvalSet, query: Query, count: int) -> list[dict[str, Any]]:
    """``count`` paragraphs (blank-line separated, as the paragraph chunker cuts), of the query's relevant
    documents first, then of others: about what a ranking hands the generator (which trims them to its budgets)."""
    relevant = list(evalset.qrels.get(query.query_id, {}))
    docs = {d.doc_id: d for d in evalset.corpus}
    chunks: list[dict[str, Any]] = []
    for doc_id in [d for d in relevant if d in docs] + [d for d in docs if d not in relevant]:
        for number, text in enumerate(p.strip() for p in re.split(r"\n\s*\n", docs[doc_id].text) if p.strip()):
            chunks.append({"chunk_id": f"{doc_id}#{number}", "doc_id": doc_id, "text": text})
            if len(chunks) == count:
                return chunks
    return chunks


def measure_answer_cost(client: Any, evalset: EvalSet, generation: GenerationConfig) -> AnswerCost:
    """One answer to the set's first query with a reference, and one faithfulness verdict on it, both sent to the
    server (not read from the cache). Raises what the client raises (an LLM that does not answer)."""
    fresh = copy.copy(client)
    fresh.cache = None  # the same server and settings, no cache: the time a new query costs
    query = _probe_query(evalset)
    generator = Generator(fresh, generation)
    started = time.perf_counter()
    answer = generator.answer(query.text, _probe_chunks(evalset, query, generation.contexts))
    answered = time.perf_counter()
    Judge(fresh).faithfulness(answer.text, answer.contexts)
    judged = time.perf_counter()
    verdicts = 2 + (0 if short_references(query.answers) or not query.answers else 1)
    return AnswerCost(client.model, answered - started, judged - answered, verdicts)
