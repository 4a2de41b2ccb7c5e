"""`evolve ingest`: a folder of company files -> the corpus layout every other command reads, incrementally."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from agent.app import app, at_least, console, fail

SHOWN_SKIPPED = 25


def _ticket_fields(path: Optional[Path]) -> object:
    """TicketFields from a YAML file of lists (id, title, text, metadata); a field left out keeps its default."""
    from evalsets.ingest import TicketFields

    if path is None:
        return TicketFields()
    import yaml

    try:
        given = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        fail(f"{path}: cannot read the ticket field mapping ({str(err).splitlines()[0]})")
    known = {"id", "title", "text", "metadata"}
    if not isinstance(given, dict) or set(given) - known:
        fail(f"{path}: the ticket field mapping takes only {', '.join(sorted(known))} (each a list of field names)")
    fields = {}
    for name, value in given.items():
        value = [value] if isinstance(value, str) else value
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            fail(f"{path}: '{name}' must be a field name or a list of them")
        fields[name] = tuple(value)
    return TicketFields(**fields)


def _check_limits(*, workers: int | None, max_file_mb: float, max_removal_share: float, file_timeout: float,
                  max_inflated_mb: float | None) -> None:
    """The numeric options in range, each mistake one line (Typer's own range check draws a box)."""
    for value, option in ((max_file_mb, "--max-file-mb"), (max_removal_share, "--max-removal-share"),
                          (file_timeout, "--file-timeout"), (max_inflated_mb, "--max-inflated-mb")):
        if value is not None and not math.isfinite(value):
            fail(f"{option} must be a number, not {value}")
    at_least(workers, 1, "--workers")
    if max_file_mb <= 0:
        fail(f"--max-file-mb must be more than 0, not {max_file_mb:g}")
    if not 0 <= max_removal_share <= 1:
        fail(f"--max-removal-share is a share of the corpus's documents, from 0 to 1, not {max_removal_share:g}")
    at_least(file_timeout, 1, "--file-timeout")
    at_least(max_inflated_mb, 1, "--max-inflated-mb")


@app.command("ingest")
def ingest_command(
    sources: Annotated[list[Path], typer.Argument(help="Folders and files to read (Notion exports, ticket exports, "
                                                       "shared drives).", show_default=False)],
    corpus: Annotated[Path, typer.Option(help="Corpus folder to bring up to date (created on the first run): "
                                              "corpus.jsonl, manifest.json, versions/. Give it to `evolve start "
                                              "--evalset`, `evolve serve --corpus` and `evolve evalset synthesize`.")],
    workers: Annotated[Optional[int], typer.Option(help="Processes reading files (default: one per core).")] = None,
    rehash: Annotated[bool, typer.Option("--rehash", help="Hash every file, even those whose size and modification "
                                                          "time did not change.")] = False,
    max_file_mb: Annotated[float, typer.Option(help="Skip (and report) files larger than this.")] = 200.0,
    allow_removals: Annotated[bool, typer.Option("--allow-removals", help="Write the run even when it removes more "
                                                 "than --max-removal-share of the corpus's documents or a source "
                                                 "folder is empty (refused otherwise: an unmounted share, a source "
                                                 "left out).")] = False,
    max_removal_share: Annotated[float, typer.Option(help="Share of the corpus's documents a run "
                                                     "may remove without --allow-removals.")] = 0.2,
    follow_links: Annotated[bool, typer.Option("--follow-links", help="Read symlinked folders and symlinks to files "
                                               "outside the source (reported and skipped otherwise).")] = False,
    file_timeout: Annotated[float, typer.Option(help="Seconds one file may take to read; a file past it "
                                                "is reported as timeout.")] = 120.0,
    max_inflated_mb: Annotated[Optional[float], typer.Option(help="Size a zip-based file (DOCX, XLSX, "
                                                             "PPTX, HWPX) may inflate to, per part and in all "
                                                             "(default: 20 x --max-file-mb).")] = None,
    ticket_fields: Annotated[Optional[Path], typer.Option(
        help="YAML mapping for ticket exports (CSV, JSON, JSONL): lists 'id', 'title', 'text', 'metadata' of field "
             "names (matched case-insensitively); defaults fit Zendesk, Jira and Freshdesk exports.")] = None,
) -> None:
    """Read documents into a versioned corpus. Only new and changed files are read again (by content hash); files
    that are gone take their documents with them; unreadable files are listed with the reason.

    Formats: PDF, Word, PowerPoint, Excel, HTML, Markdown and Notion exports, text, HWP, HWPX, ticket exports.

    Nothing leaves this machine: ingest reads files and writes the corpus folder, and calls no server."""
    from agent.progress import stage_progress
    from evalsets import EvalSetError
    from evalsets.ingest import ReadOptions, ingest

    _check_limits(workers=workers, max_file_mb=max_file_mb, max_removal_share=max_removal_share,
                  file_timeout=file_timeout, max_inflated_mb=max_inflated_mb)
    options = ReadOptions(tickets=_ticket_fields(ticket_fields))
    try:
        with stage_progress(console) as report:
            result = ingest(sources, corpus, options=options, workers=workers, rehash=rehash,
                            max_file_mb=max_file_mb, progress=report, allow_removals=allow_removals,
                            max_removal_share=max_removal_share, follow_links=follow_links,
                            file_timeout=file_timeout, max_inflated_mb=max_inflated_mb)
    except EvalSetError as err:
        fail(str(err))
    table = Table(title=f"corpus {corpus}: version {result.version}"
                        + (f" (was {result.previous_version})" if result.previous_version else ""))
    for column in ("files", "read", "unchanged", "skipped", "ignored", "documents", "added", "changed", "removed"):
        table.add_column(column, justify="right")
    table.add_row(str(result.files), str(result.read), str(result.unchanged), str(len(result.skipped)),
                  str(result.ignored), str(result.documents), str(result.added_documents),
                  str(result.changed_documents), str(result.removed_documents))
    console.print(table)
    console.print("formats: " + ", ".join(f"{k} {v}" for k, v in sorted(result.formats.items())), highlight=False)
    if result.skipped:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(result.skipped_by_kind().items()))
        console.print(f"[yellow]skipped {len(result.skipped)} files[/] ({kinds}):")
        for item in result.skipped[:SHOWN_SKIPPED]:
            console.print(f"  {escape(item.path)}: {item.kind}: {escape(item.reason)}", highlight=False)
        if len(result.skipped) > SHOWN_SKIPPED:
            console.print(f"  ... and {len(result.skipped) - SHOWN_SKIPPED} more in {corpus}/ingest-report.json")
    if result.partial:
        console.print(f"[yellow]read in part {len(result.partial)} files[/] (kept, marked partial):")
        for item in result.partial[:SHOWN_SKIPPED]:
            console.print(f"  {escape(item.path)}: {item.kind}: {escape(item.reason)}", highlight=False)
        if len(result.partial) > SHOWN_SKIPPED:
            console.print(f"  ... and {len(result.partial) - SHOWN_SKIPPED} more in {corpus}/ingest-report.json")
    console.print(f"{result.seconds:.1f} s; {result.removed_files} files gone since the last version")
