"""Document structure the readers share: the one place a document's title is chosen, and the Korean heading rule.

Titles (:func:`choose_title`): a summary or metadata title counts only when it occurs in the first
:data:`TITLE_WINDOW` characters of the body (whitespace ignored) and is neither a file name nor an application
default ("PowerPoint 프레젠테이션", "untitled", "Microsoft Word - …"); otherwise the first Markdown heading, then the
first short body line that is not a page number or a date, then the file stem.

Headings (:func:`mark_headings`): Korean documents number their headings in plain text ("Ⅰ. 개요", "1.1. 일반사항",
"가. 목적", "제3조(정의)") or box them in one-cell tables; such short lines become Markdown ``#`` lines so that the
Markdown and section chunkers see the document's structure. A line that reads like a sentence (it ends in "다.",
"요.", "함", a period) or is longer than :data:`MAX_HEADING_LINE` stays body text, so a numbered list stays a list.
"""

from __future__ import annotations

import re
from typing import Any

TITLE_WINDOW = 2000
MAX_TITLE_LINE = 80
MAX_HEADING_LINE = 60
MAX_OUTLINE_HEADING = 120
"""An HWP/HWPX paragraph with an outline level longer than this is body text that happens to be numbered."""

FILE_NAME = re.compile(r"\.(?:hwpx?|hwt|pdf|docx?|dotx?|pptx?|xlsx?|xlsm|csv|txt|rtf|odt|odp|ods|html?|md)$", re.I)
APP_DEFAULT = re.compile(
    r"^(?:microsoft (?:office )?(?:word|powerpoint|excel)\s*-.*|powerpoint\s*(?:프레젠테이션|presentation)\s*\d*"
    r"|untitled.*|제목\s*없음|무제|새\s*문서\s*\d*|문서\s*\d+|document\s*\d*|presentation\s*\d*|프레젠테이션\s*\d*"
    r"|통합\s*문서\s*\d*|book\s*\d+|sheet\s*\d+|slide\s*\d+|슬라이드\s*\d+|new document|no\s*name|noname|title)$",
    re.I)
PAGE_OR_DATE = re.compile(
    r"^[-–—\s(]*(?:page\s*)?\d+(?:\s*/\s*\d+)?[-–—\s)]*$"  # "3", "- 3 -", "3 / 10", "page 3"
    r"|^\d{2,4}\s*[.\-/년]\s*\d{1,2}\s*[.\-/월]\s*(?:\d{1,2}\s*[.일]?)?\s*(?:\([^)]*\))?$",  # "2024. 3. 5.", "2024년 3월 5일"
    re.I)
MARKDOWN_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")

ROMAN = "ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩⅪⅫ"
HANGUL_ENUM = "가나다라마바사아자차카타파하"
# (pattern, level): Roman numerals and chapters are level 1, the finer outlines below them
KOREAN_HEADINGS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(rf"^[{ROMAN}]\s*[.)]?(?:\s+(?P<rest>.*))?$"), 1),
    (re.compile(r"^(?:I|II|III|IV|V|VI|VII|VIII|IX|X)\.(?:\s+(?P<rest>.*))?$"), 1),
    (re.compile(r"^제\s*\d{1,3}\s*장(?:\s*(?P<rest>.*))?$"), 1),
    (re.compile(r"^제\s*\d{1,3}\s*절(?:\s*(?P<rest>.*))?$"), 2),
    (re.compile(r"^제\s*\d{1,3}\s*조(?:의\s*\d+)?\s*(?P<rest>\(.*)?$"), 3),
    (re.compile(r"^(?P<num>\d{1,2}(?:\.\d{1,2}){0,3})(?P<dot>\.?)\s+(?P<rest>\D.*)$"), "decimal"),
    (re.compile(rf"^[{HANGUL_ENUM}]\.\s*(?P<rest>.+)$"), 4),
    (re.compile(rf"^[{HANGUL_ENUM}]\)\s*(?P<rest>.+)$"), 5),
]
SENTENCE_END = re.compile(r"(?:함|됨|[한된있없같]다|이다|니다)\.?$|[.,:;!?。]$")  # "…한다.", "…해요.", "…준수함": a sentence, not a heading
ONE_CELL = re.compile(r"^\|\s*([^|]+?)\s*\|$")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def is_placeholder_title(title: str) -> bool:
    """A title that names nothing: empty, without a letter, a file name or an application's default."""
    title = " ".join(title.split())
    return (not re.search(r"[^\W\d_]", title) or bool(FILE_NAME.search(title)) or bool(APP_DEFAULT.match(title))
            or title.lower().startswith("microsoft word -"))


def choose_title(text: str, stem: str, *metadata_titles: str) -> str:
    """The document's title: a metadata title found near the body's start, else its first heading, else its first
    short body line, else the file stem."""
    start = _squash(text[:TITLE_WINDOW])
    for candidate in metadata_titles:
        candidate = " ".join((candidate or "").split())
        if candidate and not is_placeholder_title(candidate) and _squash(candidate) in start:
            return candidate
    fenced = False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := MARKDOWN_HEADING.match(line)):
            if not is_placeholder_title(match.group(2)):
                return " ".join(match.group(2).split())
    for line in text.split("\n"):
        line = " ".join(line.strip().strip("|").split())
        if (line and len(line) <= MAX_TITLE_LINE and not PAGE_OR_DATE.match(line)
                and not is_placeholder_title(line)):
            return line
    return stem


def heading_level(line: str) -> int:
    """The Markdown level (1-6) of a line that is a Korean numbered heading, 0 for body text."""
    line = " ".join(line.split())
    if not line or len(line) > MAX_HEADING_LINE or line.startswith(("#", "|")):
        return 0
    for pattern, level in KOREAN_HEADINGS:
        match = pattern.match(line)
        if not match:
            continue
        rest = (match.group("rest") or "").strip()
        if rest and SENTENCE_END.search(rest):
            return 0
        if level == "decimal":
            if not re.search(r"[^\W\d_]", rest) or not (match.group("dot") or "." in match.group("num")):
                return 0
            return min(match.group("num").count(".") + 2, 6)
        return int(level)
    return 0


def mark_headings(lines: list[str], one_cell_level: int = 2) -> list[str]:
    """Lines with Korean numbered headings and one-cell tables (a ``| text |`` line alone, short) as ``#`` lines."""
    out: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        cell = ONE_CELL.match(stripped)
        alone = (cell and not (index > 0 and lines[index - 1].lstrip().startswith("|"))
                 and not (index + 1 < len(lines) and lines[index + 1].lstrip().startswith("|")))
        if alone and cell:
            content = " ".join(cell.group(1).split())
            if len(content) <= MAX_HEADING_LINE and not SENTENCE_END.search(content):
                out.append("#" * (heading_level(content) or one_cell_level) + " " + content)
                continue
        level = heading_level(stripped)
        out.append("#" * level + " " + " ".join(stripped.split()) if level else line)
    return out


def mark_text(text: str) -> str:
    """:func:`mark_headings` over a text's lines, outside fenced code blocks."""
    lines, fenced, out = text.split("\n"), False, []
    block: list[str] = []
    for line in lines:
        if FENCE.match(line):
            out += mark_headings(block) + [line]
            block, fenced = [], not fenced
        elif fenced:
            out.append(line)
        else:
            block.append(line)
    return "\n".join(out + mark_headings(block))


def markdown_sections(text: str) -> list[list[Any]]:
    """[[offset, heading], ...] of the ATX headings outside fenced code blocks."""
    sections: list[list[Any]] = []
    position, fenced = 0, False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := MARKDOWN_HEADING.match(line)):
            sections.append([position, match.group(2).strip()])
        position += len(line) + 1
    return sections
