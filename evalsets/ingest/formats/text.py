"""Markdown and plain text, read as they are: Markdown already has the ``#`` headings the chunkers split on.
Korean files saved on Windows are often CP949 rather than UTF-8 (and Notepad's "Unicode" is UTF-16 with a BOM),
so those are decoded too. Notion exports append a 32-hex-digit page id to each file name; it is taken off the
title and kept as ``metadata["notion_id"]``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evalsets.ingest.base import READERS, Extracted, ExtractionError, Reader, ReadOptions, tidy
from evalsets.ingest.structure import choose_title, mark_text, markdown_sections

NOTION_ID = re.compile(r"^(?P<name>.+?) (?P<id>[0-9a-f]{32})$")


def decode(data: bytes) -> str:
    """UTF-8 (a BOM allowed), UTF-16 with a BOM, else CP949; anything else, or binary data, is corrupt."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    else:
        for encoding in ("utf-8-sig", "cp949"):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                continue
            controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f")
            if controls > max(2, len(text) // 100):
                raise ExtractionError("corrupt", "binary data, not text")
            return text
    raise ExtractionError("corrupt", "not UTF-8 or CP949 text")


def split_notion_id(stem: str) -> tuple[str, str]:
    """("Meeting notes", "1a2b...") for a Notion export's file name; (stem, "") otherwise."""
    match = NOTION_ID.match(stem)
    return (match["name"].strip(), match["id"]) if match else (stem, "")


@READERS.register
class MarkdownReader(Reader):
    format = "markdown"
    suffixes = (".md", ".markdown")

    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        text = tidy(decode(path.read_bytes()))
        if not text:
            return []
        name, notion_id = split_notion_id(path.stem)
        sections = markdown_sections(text)
        first = next((heading for offset, heading in sections if text.startswith("# ", offset)), "")
        metadata: dict[str, Any] = {"sections": sections}
        if notion_id:
            metadata["notion_id"] = notion_id
        return [Extracted(title=first or name, text=text, metadata=metadata)]


@READERS.register
class TextReader(Reader):
    format = "text"
    suffixes = (".txt",)

    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        text = tidy(decode(path.read_bytes()))
        if not text:
            return []
        text = mark_text(text)  # plain text has no heading markup: Korean numbered headings become "#" lines
        name, notion_id = split_notion_id(path.stem)
        metadata: dict[str, Any] = {}
        if sections := markdown_sections(text):
            metadata["sections"] = sections
        if notion_id:
            metadata["notion_id"] = notion_id
        return [Extracted(title=choose_title(text, name), text=text, metadata=metadata)]
