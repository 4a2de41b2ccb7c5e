"""`evolve judge calibrate`: how far the LLM judge's verdicts agree with people (labels files, users' ratings)."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from agent.app import ProjectDir, app, console, err_console, fail
from agent.llm_session import BaseUrlOption, LocalModelOption, ModelOption, connect_llm
from agent.paths import ProjectPaths

judge_app = typer.Typer(help="The LLM judge: measure how far its verdicts agree with human labels.",
                        no_args_is_help=True)
app.add_typer(judge_app, name="judge")

FEEDBACK_SOURCE = "feedback"
RATED_ANSWERS_SQL = """SELECT f.feedback_id, f.rating, r.request_id, r.query, r.answer, r.results
FROM feedback f JOIN requests r ON f.request_id = r.request_id
WHERE r.kind = 'answer' AND r.answer IS NOT NULL ORDER BY f.ts, f.feedback_id"""
"""Every rating of a served /answer response, with the answer text and the chunks it was written from."""


def rated_answers(project_dir: Path, server: dict[str, Any] | None, token: Optional[str]) -> list[dict[str, Any]]:
    """Rated /answer responses: from the server's fresh snapshot when a server holds the store, else the file."""
    from agent.server import feedback_rows

    return feedback_rows(project_dir, server, token, RATED_ANSWERS_SQL, missing_ok=True)


def chunk_texts(project_dir: Path, corpus: Path, config: Optional[Path], notes: list[str]
                ) -> tuple[dict[str, str], int | None]:
    """(chunk_id -> text, and doc_id -> text for chunks the chunker no longer makes; how many top chunks the
    generator is given) over the served corpus, cut with the champion's chunker (or --config's)."""
    from evalsets import EvalSetError, read_corpus
    from guardrails import DecisionError, LogError
    from pipelines import ConfigError
    from pipelines.chunking import make_chunker

    from agent.commands.serve import champion
    from agent.server import corpus_file

    try:
        docs = read_corpus(corpus_file(corpus))
    except EvalSetError as err:
        fail(str(err))
    texts = {doc.doc_id: doc.text for doc in docs}
    try:
        pipeline = champion(project_dir, config, None)[0]
    except (ConfigError, DecisionError, LogError) as err:
        notes.append(f"the champion config could not be read ({err}): contexts are whole documents")
        return texts, None
    texts.update({chunk.chunk_id: chunk.text for chunk in make_chunker(pipeline.chunking).chunk_all(docs)})
    notes.append(f"contexts: the returned chunks of {corpus}, cut as {pipeline.name} cuts them "
                 f"(top {pipeline.generation.contexts})")
    return texts, pipeline.generation.contexts


def feedback_items(rows: list[dict[str, Any]], texts: dict[str, str] | None, top: int | None,
                   notes: list[str]) -> list[Any]:
    """A labelled item per rating: good = 1, bad = 0, judged with answer_quality on the top ``top`` returned
    chunks (the ones the answer was written from)."""
    from experiments import LabelledItem

    items, missing = [], 0
    for row in rows:
        results = row["results"]
        results = json.loads(results) if isinstance(results, str) else (results or [])
        contexts = []
        for hit in results[:top]:
            text = (texts or {}).get(hit.get("chunk_id", "")) or (texts or {}).get(hit.get("doc_id", ""))
            if text is None:
                missing += 1
            else:
                contexts.append(text)
        items.append(LabelledItem(id=str(row["feedback_id"]), question=row["query"], answer=row["answer"],
                                  contexts=contexts, label=1 if row["rating"] == "good" else 0,
                                  metric="answer_quality", source=FEEDBACK_SOURCE))
    if texts is None:
        notes.append("no corpus (give --corpus, or run `evolve serve`): the rated answers were judged without "
                     "the texts of the chunks they were written from, which the feedback store does not keep")
    elif missing:
        notes.append(f"{missing} returned chunk(s) are not in the corpus any more: judged without them")
    return items


def fmt(value: float | None, missing: str = "n/a") -> str:
    return missing if value is None else f"{value:.3f}"


def as_dict(calibration: Any) -> dict[str, Any]:
    return {"source": calibration.source, "metric": calibration.metric, "n": calibration.n,
            "accuracy": calibration.accuracy, "kappa": calibration.kappa, "invalid": calibration.invalid,
            "confusion": calibration.confusion}


@judge_app.command("calibrate")
def judge_calibrate(
    labels: Annotated[Optional[Path], typer.Option(help="Labels file (JSONL: id, question, answer, reference or "
                                                        "contexts, label 1|0, optional metric, source; see README).")
                      ] = None,
    feedback: Annotated[bool, typer.Option("--feedback", help="Users' good/bad ratings of answers served by "
                                                              "`evolve serve` (good = 1, bad = 0).")] = False,
    corpus: Annotated[Optional[Path], typer.Option(help="--feedback: the corpus the answers came from (default: "
                                                        "the running server's), for the chunks' texts.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="--feedback: the pipeline whose chunker cut that corpus "
                                                        "(default: the audited champion).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    threads: Annotated[Optional[int], typer.Option(help="Threads of the local LLM server.")] = None,
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN")] = None,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    local_model: LocalModelOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Judge human-labelled answers and measure agreement (accuracy, Cohen's kappa); store it for the judge model.

    The guard reads the latest calibration of the judge model it uses from .evolve/judge_calibration.duckdb.
    """
    from evalsets import EvalSetError
    from experiments import CalibrationStore, Judge, calibrate, read_labels
    from pipelines.llm import LLMUnavailable, ModelUnavailable

    from agent.progress import stage_progress
    from agent.server import running_server

    if labels is None and not feedback:
        fail("nothing to calibrate on: give --labels FILE and/or --feedback")
    groups: dict[str, list[Any]] = {}
    notes: list[str] = []
    if labels is not None:
        try:
            groups[labels.name] = read_labels(labels)
        except EvalSetError as err:
            fail(str(err))
    if feedback:
        server = running_server(project_dir)
        rows = rated_answers(project_dir, server, token)
        if not rows:
            message = (f"no rated answers in {ProjectPaths.of(project_dir).feedback_db} (ratings of /answer "
                       f"responses of `evolve serve`)")
            if labels is None:
                fail(message)
            notes.append(message)
        else:
            corpus = corpus or (Path(server["corpus"]) if server else None)
            texts, top = chunk_texts(project_dir, corpus, config, notes) if corpus is not None else (None, None)
            groups[FEEDBACK_SOURCE] = feedback_items(rows, texts, top, notes)
    out = err_console if json_output else console
    with ExitStack() as stack:
        try:
            client = connect_llm(stack, project_dir, base_url, model, local_model, threads=threads,
                                 say=lambda line: out.print(line, highlight=False))
        except (LLMUnavailable, ModelUnavailable, RuntimeError) as err:
            fail(str(err), code=1)
        with stage_progress(out) as report:
            result = calibrate(Judge(client), groups, report)
    store = CalibrationStore(ProjectPaths.of(project_dir).judge_calibration)
    run_id = store.record(result.overall, result.parts + result.languages)
    rows_out = [as_dict(part) for part in result.parts] + [as_dict(result.overall)]
    if result.parts:
        rows_out[-1]["source"] = "all"
    if json_output:
        print(json.dumps({"judge_model": result.overall.judge_model, "run_id": run_id, "store": str(store.path),
                          "overall": as_dict(result.overall), "sources": rows_out[:-1] if result.parts else [],
                          "languages": [as_dict(part) for part in result.languages],
                          "seconds_per_judgement": result.seconds_per_judgement, "notes": notes}, indent=2,
                         ensure_ascii=False))
        return
    table = Table(title=f"judge {result.overall.judge_model} against human labels")
    for column in ("source", "metric", "n", "accuracy", "kappa", "invalid", "confusion (tp fp fn tn)"):
        table.add_column(column, justify="left" if column in ("source", "metric") else "right")
    for entry in rows_out + [as_dict(part) for part in result.languages]:
        c = entry["confusion"]
        table.add_row(entry["source"], entry["metric"], str(entry["n"]), fmt(entry["accuracy"]),
                      fmt(entry["kappa"], "n/a (one class)"), str(entry["invalid"]),
                      f"{c['tp']} {c['fp']} {c['fn']} {c['tn']}")
    console.print(table)
    for note in notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    console.print(f"stored as the latest calibration of {result.overall.judge_model} in {store.path} "
                  f"(run {run_id})", highlight=False, soft_wrap=True)
