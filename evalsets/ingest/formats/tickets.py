"""Helpdesk ticket exports (Zendesk, Jira, Freshdesk, in-house tools) as CSV, JSON or JSONL: one document per ticket,
because a ticket, not the export file, is what a question is answered from.

Fields are found through :class:`~evalsets.ingest.base.TicketFields` (``evolve ingest --ticket-fields``), by name
case-insensitively, spaces and hyphens read as underscores ("Issue key" is ``issue_key``) and a singular column
answering a plural field ("Comment" is ``comments``, as Jira repeats one "Comment" column per comment). A CSV with
none of the text fields is an ordinary table and becomes one document of ``| a | b |`` rows; a JSON list of records
without them likewise. Korean exports from Windows tools come in cp949 or UTF-16 (Excel's "Unicode text"); both
are read.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evalsets.ingest.base import READERS, Extracted, ExtractionError, Reader, ReadOptions, TicketFields, table_row, tidy
from evalsets.jsonl import split_lines

# Bodies and authors of one comment in the exports we know: Zendesk (body, plain_body, author_id), Jira (body,
# author.displayName), Freshdesk (body_text, user_id), Intercom (body, author.name), plain lists of strings.
COMMENT_BODY = ("body", "plain_body", "body_text", "text", "content", "message", "value", "html_body")
COMMENT_AUTHOR = ("author", "author_name", "user", "from", "sender", "created_by", "commenter", "author_id",
                  "user_id")
PERSON_NAME = ("name", "display_name", "displayname", "full_name", "email", "login", "id")
NOTION_INDEX = re.compile(r" [0-9a-fA-F]{32}(_all)?$")


def norm(name: str) -> str:
    """A field name as matched: lower case, runs of spaces, hyphens and dots as one underscore."""
    return re.sub(r"[\s\-.]+", "_", name.strip().lower()).strip("_")


class FieldMap:
    """Which keys of a record play which part, decided once per file from its keys (a CSV header, or the keys of
    all JSON records)."""

    def __init__(self, keys: Iterable[str], fields: TicketFields):
        lookup: dict[str, str] = {}
        for key in keys:
            lookup.setdefault(norm(key), key)
        for name, key in list(lookup.items()):  # "Comment" answers "comments", "Conversations" "conversation"
            lookup.setdefault(name[:-1] if name.endswith("s") else name + "s", key)

        def find(names: tuple[str, ...]) -> list[str]:
            return list(dict.fromkeys(lookup[n] for n in map(norm, names) if n in lookup))

        self.ids = find(fields.id)
        self.titles = [k for k in find(fields.title) if k not in self.ids]
        taken = set(self.ids) | set(self.titles)
        self.texts = [k for k in find(fields.text) if k not in taken]
        taken |= set(self.texts)
        self.metadata = {norm(name): lookup[norm(name)] for name in fields.metadata
                         if norm(name) in lookup and lookup[norm(name)] not in taken}

    @property
    def is_tickets(self) -> bool:
        return bool(self.texts)


def first(record: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = record.get(key)
        if value not in (None, "", [], {}):
            return value
    return None


def person(value: Any) -> str:
    if isinstance(value, dict):
        value = first({norm(k): v for k, v in value.items()}, PERSON_NAME)
    return "" if value is None or isinstance(value, (dict, list)) else str(value).strip()


def render(value: Any) -> str:
    """Text of a field value: strings as they are, a list one item per line (a comment as "author: body"), a
    structured body (Jira's document format) by its text parts."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return "\n".join(line for line in (render(item) for item in value) if line)
    if isinstance(value, dict):
        lower = {norm(k): v for k, v in value.items()}
        body = first(lower, COMMENT_BODY)
        if body is None:
            body = first(lower, ("content", "comments", "items"))  # a document tree, or {"comments": [...]}
        if body is None:
            return json.dumps(value, ensure_ascii=False)
        text = render(body)
        author = person(first(lower, COMMENT_AUTHOR))
        return f"{author}: {text}" if author and text and not isinstance(body, list) else text
    return str(value)


def meta_value(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return person(value) or json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return [meta_value(v) for v in value if v not in (None, "")]
    return value


def tickets(records: list[dict[str, Any]], fields: FieldMap) -> list[Extracted]:
    """One document per record with a body or a title; a repeated id gets "#2", "#3", ... on its key."""
    documents: list[Extracted] = []
    seen: dict[str, int] = {}
    for number, record in enumerate(records, 1):
        ticket_id = first(record, fields.ids)
        ticket_id = str(ticket_id).strip() if ticket_id is not None and not isinstance(ticket_id, (dict, list)) \
            else str(number)
        title = re.sub(r"\s+", " ", render(first(record, fields.titles))).strip()
        bodies = [(key, render(record.get(key))) for key in fields.texts]
        bodies = [(key, body) for key, body in bodies if body]
        if len(bodies) == 1:
            text = bodies[0][1]
        else:
            text = "\n\n".join(f"{key}:\n{body}" if "\n" in body else f"{key}: {body}" for key, body in bodies)
        text = tidy(text) or title
        if not text:
            continue
        metadata: dict[str, Any] = {"ticket_id": ticket_id}
        for name, key in fields.metadata.items():
            value = record.get(key)
            if value not in (None, "", [], {}):
                metadata[name] = meta_value(value)
        seen[ticket_id] = seen.get(ticket_id, 0) + 1
        key = ticket_id if seen[ticket_id] == 1 else f"{ticket_id}#{seen[ticket_id]}"
        documents.append(Extracted(title=title or f"ticket {ticket_id}", text=text, metadata=metadata, key=key))
    return documents


def table_document(path: Path, header: list[str], rows: Iterable[list[Any]]) -> list[Extracted]:
    """A file of plain records as one table document: the header row, then one line per record."""
    lines = [table_row(header)]
    count = 0
    for row in rows:
        if any(cell not in (None, "") for cell in row):
            lines.append(table_row(row))
            count += 1
    if not count:
        return []
    return [Extracted(title=path.stem, text="\n".join(lines), metadata={"rows": count, "columns": header})]


def decode(data: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM (Excel's "Unicode text"), else cp949 (Korean Windows' ANSI)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp949")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def delimiter(text: str) -> str:
    """Comma, semicolon or tab: whichever the header line has most of (csv.Sniffer misjudges quoted bodies that
    span lines, which ticket exports are full of)."""
    line = text.split("\n", 1)[0]
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def notion_index(path: Path) -> None:
    """A Notion export's database CSV lists pages that the export also holds as files in the folder beside it."""
    match = NOTION_INDEX.search(path.stem)
    if match:
        folder = path.with_name(path.stem[:match.start(1)] if match.group(1) else path.stem)
        if folder.is_dir():
            raise ExtractionError("skipped", f"Notion database index: its rows are exported as pages in {folder.name}/")


@READERS.register
class TicketsCsvReader(Reader):
    """CSV: a ticket export when a column is one of the text fields, else a table."""

    format = "tickets-csv"
    suffixes = (".csv",)

    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        notion_index(path)
        text = decode(path.read_bytes())
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a ticket thread can exceed csv's 128 KiB field limit
        try:
            rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter(text))
                    if any(cell.strip() for cell in row)]
        except csv.Error as error:
            raise ExtractionError("corrupt", f"unreadable CSV: {error}") from error
        if not rows:
            return []
        header = [cell.strip() for cell in rows[0]]
        fields = FieldMap(header, options.tickets)
        if not fields.is_tickets:
            return table_document(path, header, rows[1:])
        records = []
        for row in rows[1:]:
            record: dict[str, Any] = {}
            for name, cell in zip(header, row):
                cell = cell.strip()
                if name in record:  # Jira repeats a column ("Comment", "Labels") once per value
                    previous = record[name] if isinstance(record[name], list) else [record[name]]
                    record[name] = [v for v in previous + [cell] if v]
                else:
                    record[name] = cell
            records.append(record)
        return tickets(records, fields)


def json_records(value: Any) -> list[dict[str, Any]] | None:
    """The records of an export: a list of objects, or the one list of objects in a top-level object
    ({"tickets": [...]}, {"issues": [...], "total": 3}); None for anything else."""
    if isinstance(value, list):
        return value if value and all(isinstance(item, dict) for item in value) else None
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list) and v and all(isinstance(i, dict) for i in v)]
        if "tickets" in value and json_records(value["tickets"]) is not None:
            return value["tickets"]
        if len(lists) == 1:
            return lists[0]
    return None


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """Jira's REST export keeps a ticket's fields under "fields" (comments under fields.comment.comments)."""
    inner = record.get("fields")
    if isinstance(inner, dict):
        record = {**{k: v for k, v in record.items() if k != "fields"}, **inner}
    return record


@READERS.register
class TicketsJsonReader(Reader):
    """JSON and JSON Lines ticket exports."""

    format = "tickets-json"
    suffixes = (".json", ".jsonl", ".ndjson")

    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        text = decode(path.read_bytes())
        if not text.strip():
            return []
        if path.suffix.lower() == ".json":
            try:
                value: Any = json.loads(text)
            except json.JSONDecodeError as error:
                if error.msg != "Extra data":  # several objects, one a line: JSON Lines named .json
                    raise ExtractionError("corrupt", f"invalid JSON at line {error.lineno}, column {error.colno}: "
                                                     f"{error.msg}") from error
                value = self.lines(text)
        else:
            value = self.lines(text)
        records = json_records(value)
        if records is None:
            keys = list(value)[:12] if isinstance(value, dict) else [type(value).__name__]
            raise ExtractionError("unsupported", f"JSON without a list of ticket records (fields: {', '.join(keys)})")
        records = [flatten(r) for r in records]
        keys = list(dict.fromkeys(k for record in records for k in record))
        fields = FieldMap(keys, options.tickets)
        if fields.is_tickets:
            return tickets(records, fields)
        return table_document(path, keys, ([cell(r.get(k)) for k in keys] for r in records))

    @staticmethod
    def lines(text: str) -> list[Any]:
        values = []
        for number, line in enumerate(split_lines(text), 1):
            if not line.strip():
                continue
            try:
                values.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ExtractionError("corrupt", f"invalid JSON Lines at line {number}, column {error.colno}: "
                                                 f"{error.msg}") from error
        return values


def cell(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
