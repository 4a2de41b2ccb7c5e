"""How far to trust the judge: its 0/1 verdicts against human labels, and a store of the measurements.

A *labels file* (JSONL, one object per line) is the standard layout for human-labelled judgements::

    {"id": "q1", "question": "...", "answer": "...", "reference": "...", "label": 1}
    {"id": "q2", "question": "...", "answer": "...", "contexts": ["...", "..."], "label": 0,
     "metric": "answer_quality", "source": "helpdesk"}

``label`` is 1 (the answer is acceptable/correct) or 0. ``metric`` is the judge metric the label speaks for:
``correctness`` (needs ``reference``), ``answer_quality`` (needs ``contexts``), ``faithfulness`` (needs
``contexts``) or ``context_relevance`` (needs ``contexts``; ``answer`` may be left out). Without ``metric``: a
line with a reference is ``correctness``, else one with contexts is ``answer_quality``. ``source`` (optional)
groups lines in the report. No other fields; ids are unique.

Agreement is accuracy and Cohen's kappa over the items with a valid verdict (the rest are counted as
``invalid``), with the 2x2 confusion counts. Kappa is None when the human labels are all one class (or there
is nothing to compare): with one class, agreement cannot be told apart from chance, so the judge is not
calibrated by such a set, however often it agrees.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evalsets import EvalSetError, language_of, read_lines
from experiments.judge import Judge, JudgedScore

METRICS = ("correctness", "answer_quality", "faithfulness", "context_relevance")
NEEDS = {"correctness": ("answer", "reference"), "answer_quality": ("answer", "contexts"),
         "faithfulness": ("answer", "contexts"), "context_relevance": ("contexts",)}
"""What a line must carry to be judged with each metric."""
MAX_ERRORS_SHOWN = 10
LANGUAGE_SOURCE = "language:"
"""Source of a calibration part measured on one language's items ('language:ko')."""


class LabelledItem(BaseModel):
    """One line of a labels file (see the module docstring). Strict: no coercion, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: str = Field(min_length=1, max_length=200)
    question: str = Field(min_length=1)
    answer: str | None = None
    reference: str | None = None
    contexts: list[str] | None = None
    label: Literal[0, 1]
    metric: Literal["correctness", "answer_quality", "faithfulness", "context_relevance"] | None = None
    source: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _label_not_bool(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("label"), bool):
            raise ValueError("label: must be 1 or 0, not true/false")
        return data

    @model_validator(mode="after")
    def _metric_and_fields(self) -> "LabelledItem":
        if not self.question.strip():
            raise ValueError("question: must not be blank")
        if self.metric is None:
            if self.reference is not None:
                self.metric = "correctness"
            elif self.contexts is not None:
                self.metric = "answer_quality"
            else:
                raise ValueError("needs a 'reference' (judged for correctness) or 'contexts' (judged for "
                                 "answer_quality), or a 'metric'")
        missing = [name for name in NEEDS[self.metric]
                   if getattr(self, name) is None or (name != "contexts" and not getattr(self, name).strip())]
        if missing:
            raise ValueError(f"metric {self.metric} needs {' and '.join(repr(m) for m in missing)}")
        return self


def _line_error(err: ValidationError) -> str:
    return "; ".join((f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "") + e["msg"].removeprefix("Value error, ")
                     for e in err.errors())


def read_labels(path: Path | str) -> list[LabelledItem]:
    """Every line of a labels file, validated: the whole file or an EvalSetError naming each bad line (file:line)."""
    path = Path(path)
    items: list[LabelledItem] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, line in read_lines(path, "labels file"):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            errors.append((number, f"bad JSON ({err.msg} at column {err.colno})"))
            continue
        if not isinstance(data, dict):
            errors.append((number, f"expected a JSON object, got {type(data).__name__}"))
            continue
        try:
            item = LabelledItem.model_validate(data)
        except ValidationError as err:
            errors.append((number, _line_error(err)))
            continue
        if item.id in seen:
            errors.append((number, f"id {item.id!r} repeats line {seen[item.id]}"))
            continue
        seen[item.id] = number
        items.append(item)
    if errors:
        more = f" (first {MAX_ERRORS_SHOWN} shown)" if len(errors) > MAX_ERRORS_SHOWN else ""
        shown = "\n".join(f"{path}:{number}: {message}" for number, message in errors[:MAX_ERRORS_SHOWN])
        raise EvalSetError(f"{len(errors)} bad line(s) in a labels file{more}:\n{shown}")
    if not items:
        raise EvalSetError("no labelled lines", path)
    return items


@dataclass(frozen=True)
class Agreement:
    """Judge verdicts against human labels. ``tp`` = label 1 and verdict 1, ``fp`` = label 0 and verdict 1,
    ``fn`` = label 1 and verdict 0, ``tn`` = label 0 and verdict 0; items without a valid verdict are
    ``invalid`` and left out of everything else."""

    n: int
    invalid: int
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def accuracy(self) -> float | None:
        return (self.tp + self.tn) / self.n if self.n else None

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa, None when the labels are all one class (agreement cannot be told from chance)."""
        n = self.n
        positives, negatives = self.tp + self.fn, self.fp + self.tn
        if n == 0 or positives == 0 or negatives == 0:
            return None
        observed = (self.tp + self.tn) / n
        chance = (positives * (self.tp + self.fp) + negatives * (self.fn + self.tn)) / (n * n)
        return (observed - chance) / (1 - chance)  # chance < 1: the labels have both classes


def agreement(labels: Sequence[int], verdicts: Sequence[float | int | None]) -> Agreement:
    """Agreement of ``verdicts`` (1/0, None = no valid verdict) with human ``labels`` (1/0), pairwise."""
    if len(labels) != len(verdicts):
        raise ValueError(f"{len(labels)} labels but {len(verdicts)} verdicts")
    counts = {(1, 1): 0, (0, 1): 0, (1, 0): 0, (0, 0): 0}
    invalid = 0
    for label, verdict in zip(labels, verdicts):
        if verdict is None:
            invalid += 1
            continue
        if label not in (0, 1) or verdict not in (0, 1):
            raise ValueError(f"labels and verdicts are 1 or 0, not {label!r} / {verdict!r}")
        counts[(int(label), int(verdict))] += 1
    return Agreement(n=sum(counts.values()), invalid=invalid, tp=counts[(1, 1)], fp=counts[(0, 1)],
                     fn=counts[(1, 0)], tn=counts[(0, 0)])


class Calibration(BaseModel):
    """One measured agreement of a judge model with human labels (what the store keeps, one row)."""

    judge_model: str
    metric: str
    """The judge metric of the labels ('correctness', 'answer_quality', or several joined by '+')."""
    source: str
    """Where the labels came from (a labels file, 'feedback', a source named in the labels)."""
    n: int
    accuracy: float | None
    kappa: float | None
    invalid: int
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    created: datetime = Field(default_factory=lambda: datetime.now(timezone.utc).replace(tzinfo=None))

    @classmethod
    def of(cls, result: Agreement, judge_model: str, metric: str, source: str) -> "Calibration":
        return cls(judge_model=judge_model, metric=metric, source=source, n=result.n, accuracy=result.accuracy,
                   kappa=result.kappa, invalid=result.invalid, tp=result.tp, fp=result.fp, fn=result.fn, tn=result.tn)

    @property
    def confusion(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


@dataclass
class JudgedItem:
    item: LabelledItem
    score: JudgedScore
    seconds: float


def judge_item(judge: Judge, item: LabelledItem) -> JudgedScore:
    """The judge's verdict on one labelled item, with the metric the label speaks for."""
    if item.metric == "correctness":
        return judge.correctness(item.question, item.answer or "", item.reference or "")
    if item.metric == "answer_quality":
        return judge.answer_quality(item.question, item.answer or "", item.contexts or [])
    if item.metric == "faithfulness":
        return judge.faithfulness(item.answer or "", item.contexts or [])
    return judge.context_relevance(item.question, item.contexts or [])


Progress = Callable[[str, int, int], None]


def judge_items(judge: Judge, items: Sequence[LabelledItem], progress: Progress | None = None,
                stage: str = "judging") -> list[JudgedItem]:
    """Every item judged (in order), with the client's concurrency; ``progress(stage, done, total)``."""

    def one(item: LabelledItem) -> JudgedItem:
        started = time.perf_counter()
        score = judge_item(judge, item)
        return JudgedItem(item, score, time.perf_counter() - started)

    results: list[JudgedItem | None] = [None] * len(items)
    if progress:
        progress(stage, 0, len(items))
    workers = judge.client.settings.max_concurrency
    with ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(one, item): index for index, item in enumerate(items)}
        for done, future in enumerate(as_completed(futures), start=1):
            results[futures[future]] = future.result()
            if progress:
                progress(stage, done, len(items))
    return [r for r in results if r is not None]


def metric_name(items: Sequence[LabelledItem]) -> str:
    return "+".join(sorted({item.metric or "" for item in items}))


def calibration_of(judged: Sequence[JudgedItem], judge_model: str, source: str) -> Calibration:
    result = agreement([j.item.label for j in judged], [j.score.value for j in judged])
    return Calibration.of(result, judge_model, metric_name([j.item for j in judged]), source)


@dataclass
class CalibrationReport:
    overall: Calibration
    """All the items pooled: what the store's :meth:`CalibrationStore.latest` returns."""
    parts: list[Calibration]
    """One per source, when the items come from more than one."""
    judged: list[JudgedItem]
    languages: list[Calibration] = field(default_factory=list)
    """One per language of the questions (source 'language:ko', 'language:en'): what the guard reads for a
    held-back set in that language (``answers.min_judge_kappa``)."""

    @property
    def seconds_per_judgement(self) -> float | None:
        return sum(j.seconds for j in self.judged) / len(self.judged) if self.judged else None


def calibrate(judge: Judge, groups: dict[str, Sequence[LabelledItem]], progress: Progress | None = None
              ) -> CalibrationReport:
    """Judge every labelled item and measure agreement per source and pooled.

    ``groups`` maps a source name to its items; an item that names its own ``source`` is counted under it."""
    items = [item for group in groups.values() for item in group]
    if not items:
        raise ValueError("no labelled items to calibrate the judge on")
    sources = [item.source or name for name, group in groups.items() for item in group]
    judged = judge_items(judge, items, progress)
    by_source: dict[str, list[JudgedItem]] = {}
    for source, one in zip(sources, judged):
        by_source.setdefault(source, []).append(one)
    parts = [calibration_of(group, judge.model, source) for source, group in by_source.items()]
    overall = calibration_of(judged, judge.model, " + ".join(by_source))
    by_language: dict[str, list[JudgedItem]] = {}
    for one in judged:
        by_language.setdefault(language_of(one.item.question), []).append(one)
    languages = [calibration_of(group, judge.model, f"{LANGUAGE_SOURCE}{language}")
                 for language, group in sorted(by_language.items())]
    return CalibrationReport(overall, parts if len(parts) > 1 else [], judged, languages)


TABLE = "judge_calibration"
SCHEMA = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    run_id VARCHAR NOT NULL, created TIMESTAMP NOT NULL, judge_model VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    source VARCHAR NOT NULL, pooled BOOLEAN NOT NULL, n INTEGER NOT NULL, accuracy DOUBLE, kappa DOUBLE,
    invalid INTEGER NOT NULL, tp INTEGER NOT NULL, fp INTEGER NOT NULL, fn INTEGER NOT NULL, tn INTEGER NOT NULL)"""
COLUMNS = ("judge_model", "metric", "source", "n", "accuracy", "kappa", "invalid", "tp", "fp", "fn", "tn", "created")


class CalibrationStoreBusy(RuntimeError):
    """The calibration file stayed held by another process."""


class CalibrationStore:
    """Judge calibrations in one DuckDB table; the file is opened per call and closed at once (like the LLM
    cache), so several evolve processes can share it. A run is one pooled row plus one row per source."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def _connect(self, read_only: bool = False, attempts: int = 40) -> Any:
        import duckdb

        for attempt in range(attempts):
            try:
                connection = duckdb.connect(str(self.path), read_only=read_only)
                if not read_only:
                    connection.execute(SCHEMA)
                return connection
            except duckdb.IOException as err:
                last = err
                time.sleep(0.05 * (attempt + 1))
        raise CalibrationStoreBusy(f"{self.path} stayed held by another process: {last}")

    def record(self, calibration: Calibration, parts: Sequence[Calibration] = ()) -> str:
        """Store one calibration run (the pooled result and its per-source parts); the run's id."""
        run_id = uuid.uuid4().hex
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = [(calibration, True)] + [(part, False) for part in parts]
        connection = self._connect()
        try:
            connection.executemany(
                f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[run_id, c.created, c.judge_model, c.metric, c.source, pooled, c.n, c.accuracy, c.kappa, c.invalid,
                  c.tp, c.fp, c.fn, c.tn] for c, pooled in rows])
        finally:
            connection.close()
        return run_id

    def _select(self, where: str, params: list[Any], limit: int | None = None) -> list[Calibration]:
        if not self.path.exists():
            return []
        connection = self._connect(read_only=True)
        try:
            if not connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                      [TABLE]).fetchone()[0]:
                return []
            rows = connection.execute(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE {where} "
                                      f"ORDER BY created DESC, rowid DESC" + (f" LIMIT {int(limit)}" if limit else ""),
                                      params).fetchall()
        finally:
            connection.close()
        return [Calibration(**dict(zip(COLUMNS, row))) for row in rows]

    def latest(self, judge_model: str) -> Calibration | None:
        """The most recent calibration of ``judge_model`` (all its labels pooled), or None if it was never calibrated."""
        found = self._select("judge_model = ? AND pooled", [judge_model], limit=1)
        return found[0] if found else None

    def latest_languages(self, judge_model: str) -> dict[str, Calibration]:
        """Language -> the agreement on that language's items, of the latest calibration run of ``judge_model``
        (empty when that run measured none: one recorded before languages were)."""
        if not self.path.exists():
            return {}
        connection = self._connect(read_only=True)
        try:
            if not connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                      [TABLE]).fetchone()[0]:
                return {}
            rows = connection.execute(
                f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE NOT pooled AND starts_with(source, ?) AND run_id = "
                f"(SELECT run_id FROM {TABLE} WHERE judge_model = ? AND pooled ORDER BY created DESC, rowid DESC "
                "LIMIT 1)", [LANGUAGE_SOURCE, judge_model]).fetchall()
        finally:
            connection.close()
        found = [Calibration(**dict(zip(COLUMNS, row))) for row in rows]
        return {c.source.removeprefix(LANGUAGE_SOURCE): c for c in found}

    def history(self, judge_model: str | None = None) -> list[Calibration]:
        """Every pooled calibration, newest first (of one judge model when given)."""
        if judge_model is None:
            return self._select("pooled", [])
        return self._select("judge_model = ? AND pooled", [judge_model])
