"""JSON lines as every file evolve writes them (corpus, queries, feedback exports, per-query results).

One record is one line, whatever text it holds: :func:`json_line` escapes the characters other tools take for a
line break (U+2028, U+2029, U+0085; ``json.dumps`` already escapes every C0 control, \\v, \\f and \\x1c-\\x1e
included) and :func:`split_lines` breaks at ``\\n`` only, never where :meth:`str.splitlines` would. Text is kept
as UTF-8 (not ``ensure_ascii``): Korean stays one to three bytes a character instead of six.
"""

from __future__ import annotations

import json
from typing import Any

_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def json_line(value: Any, **dumps: Any) -> str:
    """``value`` as one JSON line, ending in ``\\n``; ``dumps``: more ``json.dumps`` options (e.g. ``default``)."""
    return json.dumps(value, ensure_ascii=False, **dumps).translate(_LINE_BREAKS) + "\n"


def split_lines(text: str) -> list[str]:
    """The lines of a JSONL (or TSV) text: split at ``\\n`` only, a trailing ``\\r`` dropped, no empty last line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
