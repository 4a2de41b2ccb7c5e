"""`evolve feedback import` and `evolve feedback failures`: feedback from other systems in, failure sets out."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from agent.app import ProjectDir, app, console, err_console, fail
from agent.llm_session import BaseUrlOption, LocalModelOption, ModelOption, connect_llm
from agent.project import TrackingOption
from agent.progress import stage_progress
from agent.server import call_server, corpus_file, feedback_db, feedback_rows, response_detail, running_server

feedback_app = typer.Typer(help="Feedback from users: import exports, turn bad ratings into a failure set.",
                           no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")

FAILURES_SQL = """SELECT f.feedback_id, f.ts, f.rating, f.correct_doc_id, f.comment, f.source, f.request_id,
       coalesce(f.query, r.query) AS query, r.results, coalesce(f.config_version, r.config_version) AS config_version
FROM feedback f LEFT JOIN requests r ON f.request_id = r.request_id
WHERE f.rating = 'bad' ORDER BY f.ts"""


@feedback_app.command("import")
def feedback_import(
    path: Annotated[Path, typer.Argument(help="JSONL: one object per line with rating (good|bad), query or "
                                              "request_id, optional comment, correct_doc_id, config_version, "
                                              "event_id (default: sha256 of the line's content).")],
    corpus: Annotated[Optional[Path], typer.Option(help="Without a running server: check correct_doc_id against "
                                                        "this corpus (the server checks against its own).")] = None,
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN")] = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Import feedback exported from another system (helpdesk...): the whole file or nothing, and only once.

    Every line is validated first; request ids must be requests this project served.

    Events already stored (same event_id) are counted, not stored again.
    """
    from evalsets import EvalSetError
    from evalsets import bad_lines, read_feedback_file
    from evalsets import FeedbackStore, StoreLocked
    from evalsets import read_corpus

    try:
        lines = read_feedback_file(path)
    except EvalSetError as err:
        fail(str(err))
    numbers, events = [n for n, _ in lines], [e for _, e in lines]
    server = running_server(project_dir)
    if server:
        response = call_server(server, token, "POST", "/feedback/import", timeout=300,
                               json=[e.model_dump(exclude_none=True) for e in events])
        detail = response_detail(response)
        if response.status_code == 422 and isinstance(detail, dict) and "errors" in detail:
            fail(str(bad_lines(path, [(numbers[e["index"]], e["error"]) for e in detail["errors"]],
                               "refused by the server")))
        if response.status_code != 200:
            fail(f"{path.name}: the server refused the import ({response.status_code}): {detail}")
        result, where = response.json(), f"the running server {server['url']}"
        checked = "request ids against its store, correct_doc_id against its corpus"
    else:
        doc_ids = None
        if corpus is not None:
            try:
                doc_ids = {d.doc_id for d in read_corpus(corpus_file(corpus))}
            except EvalSetError as err:
                fail(str(err))
        try:
            store = FeedbackStore(feedback_db(project_dir))
        except StoreLocked as err:
            fail(str(err))
        try:
            vouched, refused = store.vouch_all(events, doc_ids)
            if refused:
                fail(str(bad_lines(path, [(numbers[index], error) for index, error in refused], "refused")))
            new = store.record_feedback(vouched, source="import")
            store.export_snapshot()
        finally:
            store.close()
        result = {"received": len(new), "new": sum(new), "already_present": len(new) - sum(new)}
        where = str(store.path)
        checked = "request ids against this store, " + (f"correct_doc_id against {corpus}" if corpus else
                                                        "correct_doc_id not checked (give --corpus)")
    console.print(f"imported {path}: {result['received']} feedback events, {result['new']} new, "
                  f"{result['already_present']} already present, into {where} (checked {checked})",
                  highlight=False, soft_wrap=True)


def bad_feedback_rows(project_dir: Path, server: dict[str, Any] | None, token: Optional[str]) -> list[dict[str, Any]]:
    """Negative feedback with its query and served results: from the server's fresh snapshot, or the file."""
    return feedback_rows(project_dir, server, token, FAILURES_SQL)


JUDGE_CONTEXT = {"contexts": 10, "context_tokens": 2800}
"""What the judge reads of the documents a bad rating's request returned: the best-ranked ones, as the answer
generator takes its chunks (while they fit the estimated-token budget; the first always, cut to it). The local
server's 4096-token context holds it with the rubric, the question and the verdict."""


class LazyJudge:
    """The resolver ``build_failure_set`` calls for a bad rating without a marked document: connects the LLM on
    its first call (so feedback whose ratings all mark a document starts nothing), then asks
    ``Judge.answering_chunk`` through the cached client about the returned documents :data:`JUDGE_CONTEXT` admits.
    No LLM to be had: says why once, and raises ``JudgeUnavailable``."""

    def __init__(self, stack: ExitStack, project_dir: Path, base_url: str | None, model: str | None,
                 local_model: str | None):
        self.stack, self.connect = stack, (project_dir, base_url, model, local_model)
        self.judge: Any = None
        self.shown: Any = None

    def __call__(self, question: str, texts: list[str]) -> Any:
        from evalsets import JudgeUnavailable
        from experiments import Judge
        from pipelines import GenerationConfig, Generator
        from pipelines.llm import LLMUnavailable, ModelUnavailable

        if self.judge is None:
            project_dir, base_url, model, local_model = self.connect
            try:
                client = connect_llm(self.stack, project_dir, base_url, model, local_model,
                                     max_retries=1 if base_url else None, say=console.print)
                client.check()
            except (LLMUnavailable, ModelUnavailable, RuntimeError) as err:
                err_console.print(f"[yellow]no LLM judge:[/] {escape(str(err))}; bad ratings without a marked "
                                  "document are left out", highlight=False, soft_wrap=True)
                raise JudgeUnavailable(str(err)) from err
            self.judge, self.shown = Judge(client), Generator(client, GenerationConfig(**JUDGE_CONTEXT))
        passages = self.shown.contexts([{"text": text} for text in texts])
        return self.judge.answering_chunk(question, [passage["text"] for passage in passages])


@feedback_app.command("failures")
def feedback_failures(
    out: Annotated[Path, typer.Option(help="Folder for the failure set (standard layout).")],
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus the feedback was about (default: the served one).")] = None,
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Do not ask the LLM judge which returned document "
                                                             "answers a bad rating without a marked one (such "
                                                             "ratings are left out, counted).")] = False,
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN")] = None,
    base_url: BaseUrlOption = None, model: ModelOption = None, local_model: LocalModelOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Turn negative feedback into an evaluation set: query + the document the user marked right, deduplicated.

    A bad rating without a marked document goes to the LLM judge with the documents its request returned (taken
    from the corpus): the one it names becomes the query's right document, recorded with the judge's model and
    reason; none, or no valid verdict, leaves the query out, counted.
    """
    from evalsets import EvalSetError
    from evalsets import LEFT_OUT, build_failure_set

    server = running_server(project_dir)
    if corpus is None:
        if not server:
            fail("give --corpus (no running server to take it from)")
        corpus = Path(server["corpus"])
    rows = bad_feedback_rows(project_dir, server, token)
    with ExitStack() as stack:
        resolve = None if no_judge else LazyJudge(stack, project_dir, base_url, model, local_model)
        try:
            with stage_progress(console) as progress:
                report = build_failure_set(rows, corpus_file(corpus), out, resolve, progress)
        except EvalSetError as err:
            fail(str(err))
    judge = ("--no-judge" if no_judge else f"judge unavailable: {escape(report.judge_unavailable)}"
             if report.judge_unavailable else f"judge {report.judge_model}" if report.judge_model else "judge not needed")
    left = "".join(f", {len(texts)} {LEFT_OUT[reason]}" for reason, texts in report.left_out.items() if texts)
    console.print(f"{report.bad_events} bad ratings -> {report.queries} queries in {out} "
                  f"({report.with_correct_doc} with a user-marked document, {report.judged} with the document the "
                  f"judge named ({judge}), {report.duplicates_merged} duplicates merged, "
                  f"{len(report.skipped_no_answer)} left out without a known right document{left}; "
                  f"{len(report.skipped_unknown_doc)} ratings naming unknown documents)",
                  highlight=False, soft_wrap=True)


@feedback_app.command("compare")
def feedback_compare(
    version: Annotated[str, typer.Argument(help="The registered candidate that was shadowed or interleaved.")],
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN")] = None,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """What live traffic says about a candidate: over its shadowed requests, top-k overlap with the champion and what
    it does with rated documents; over its interleaved requests, wins, losses and ties with a sign test.

    Online evidence only: the offline guard report is `evolve review`'s."""
    from agent.online import evidence_of, publish_online_evidence, read_traffic
    from agent.project import load_policy_of, open_project

    records = read_traffic(project_dir, running_server(project_dir), token, version)
    if not records:
        fail(f"version {version} has taken no traffic in this project (`evolve serve --shadow {version}` or "
             f"`--interleave {version}`)")
    console.print(f"online evidence for candidate version {version} ({len(records)} requests):", highlight=False)
    project = open_project(project_dir, tracking_uri)
    lines, rule = evidence_of(records, load_policy_of(project))
    for line in lines:
        console.print("  " + escape(line), highlight=False, soft_wrap=True)
    # the same evidence on the version's MLflow page (the reviewer's UI)
    problem = publish_online_evidence(project, version, lines, rule)
    console.print(f"  {escape(rule.rule)}: {'pass' if rule.passed else 'FAIL'}: {escape(rule.why)}", highlight=False)
    console.print(f"  [yellow]{escape(problem)}[/]" if problem else
                  f"  written to version {version}'s page in the MLflow UI (section 'Online evidence')",
                  highlight=False)
