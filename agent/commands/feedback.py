"""`evolve feedback import` and `evolve feedback failures`: feedback from other systems in, failure sets out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from agent.app import ProjectDir, app, console, fail
from agent.server import call_server, corpus_file, feedback_db, response_detail, running_server

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
    """Negative feedback with its query and served results: from the server's fresh snapshot, or the file.

    The snapshot is read where this project keeps it; the path in the server's reply is not used."""
    from evalsets import FeedbackStore, StoreLocked, read_snapshot, snapshot_folder

    if server:
        response = call_server(server, token, "POST", "/snapshot", timeout=60)
        if response.status_code != 200:
            fail(f"the server at {server['url']} could not export its feedback snapshot ({response.status_code}): "
                 f"{response_detail(response)}")
        return read_snapshot(snapshot_folder(feedback_db(project_dir)), FAILURES_SQL)
    try:
        store = FeedbackStore(feedback_db(project_dir))
    except StoreLocked as err:
        fail(str(err))
    try:
        return store.rows(FAILURES_SQL)
    finally:
        store.close()


@feedback_app.command("failures")
def feedback_failures(
    out: Annotated[Path, typer.Option(help="Folder for the failure set (standard layout).")],
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus the feedback was about (default: the served one).")] = None,
    token: Annotated[Optional[str], typer.Option(envvar="EVOLVE_API_TOKEN")] = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Turn negative feedback into an evaluation set: query + the document the user marked right, deduplicated."""
    from evalsets import EvalSetError
    from evalsets import build_failure_set

    server = running_server(project_dir)
    if corpus is None:
        if not server:
            fail("give --corpus (no running server to take it from)")
        corpus = Path(server["corpus"])
    rows = bad_feedback_rows(project_dir, server, token)
    try:
        report = build_failure_set(rows, corpus_file(corpus), out)
    except EvalSetError as err:
        fail(str(err))
    console.print(f"{report.bad_events} bad ratings -> {report.queries} queries in {out} "
                  f"({report.with_correct_doc} with a user-marked document, {report.duplicates_merged} duplicates "
                  f"merged, {len(report.skipped_no_answer)} skipped without a known right document, "
                  f"{len(report.skipped_unknown_doc)} naming unknown documents)")
