"""HTML: the readable body (BeautifulSoup on lxml) with navigation, scripts and footers dropped, ``h1``-``h6`` as
Markdown ``#`` lines, tables as ``| a | b |`` rows and list items as ``- `` lines. The bytes are decoded here, not
by lxml: Korean pages declare EUC-KR but use CP949's extra syllables, so a Korean declaration is read as CP949,
and a page that declares nothing is tried as UTF-8, then CP949."""

from __future__ import annotations

import re
from pathlib import Path

from evalsets.ingest.base import READERS, Extracted, ExtractionError, Reader, ReadOptions, table_row, tidy

DROP = ("script", "style", "nav", "footer", "noscript", "template", "svg", "iframe", "head")
BLOCK = {"p", "div", "section", "article", "main", "header", "aside", "blockquote", "pre", "form", "fieldset",
         "figure", "figcaption", "address", "details", "summary", "dl", "dt", "dd", "hr", "body", "html", "center"}
KOREAN = {"euc-kr", "euc_kr", "euckr", "ks_c_5601-1987", "ks_c_5601", "ksc5601", "cp949", "x-windows-949",
          "windows-949", "uhc"}


@READERS.register
class HtmlReader(Reader):
    format = "html"
    suffixes = (".html", ".htm")

    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        from bs4 import BeautifulSoup

        markup = _decode(path.read_bytes())
        try:
            soup = BeautifulSoup(markup, "lxml")
        except Exception as error:
            raise ExtractionError("corrupt", f"unreadable HTML ({error})") from error
        page_title = " ".join(soup.title.get_text().split()) if soup.title else ""
        for tag in soup.find_all(DROP):
            tag.decompose()
        walker = _Walker()
        try:
            walker.walk(soup)
        except RecursionError as error:
            raise ExtractionError("corrupt", "HTML nested too deeply to read") from error
        text, sections = walker.result()
        if not text:
            return []
        title = page_title or next((h for h, level in walker.headings if level == 1), "") or path.stem
        return [Extracted(title=title, text=text, metadata={"sections": sections})]


def _decode(data: bytes) -> str:
    from bs4.dammit import EncodingDetector, UnicodeDammit

    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExtractionError("corrupt", "binary data, not HTML text")
    declared = (EncodingDetector.find_declared_encoding(data, is_html=True) or "").lower()
    definite = ["cp949"] if declared in KOREAN and not data.startswith(b"\xef\xbb\xbf") else []
    dammit = UnicodeDammit(data, known_definite_encodings=definite, user_encodings=["utf-8", "cp949"],
                           is_html=True)
    if dammit.unicode_markup is None:
        raise ExtractionError("corrupt", "HTML in no encoding it declares or that could be guessed")
    return dammit.unicode_markup


class _Walker:
    """Collects blocks (paragraphs, headings, tables, list runs) in document order."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, str]] = []  # (kind, text)
        self.inline: list[str] = []
        self.headings: list[tuple[str, int]] = []

    def flush(self) -> None:
        text = tidy(re.sub(r"[ \t\r\f\v]+", " ", "".join(self.inline)).replace(" \n", "\n").replace("\n ", "\n"))
        self.inline = []
        if text:
            self.blocks.append(("p", text))

    def walk(self, node, depth: int = 0) -> None:
        from bs4 import Comment, NavigableString, Tag

        for child in node.children:
            if isinstance(child, Comment) or (isinstance(child, NavigableString) and type(child) is not
                                              NavigableString):
                continue  # comments, doctype, CDATA, processing instructions
            if isinstance(child, NavigableString):
                self.inline.append(str(child).replace("\n", " "))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            if re.fullmatch(r"h[1-6]", name):
                self.flush()
                text = " ".join(child.get_text(" ").split())
                if text:
                    self.headings.append((text, int(name[1])))
                    self.blocks.append(("h", "#" * int(name[1]) + " " + text))
            elif name == "table":
                self.flush()
                rows = [table_row([" ".join(cell.get_text(" ").split()) for cell in row.find_all(("th", "td"))])
                        for row in child.find_all("tr") if row.find_parent("table") is child]
                rows = [row for row in rows if row.strip("| ")]
                if rows:
                    self.blocks.append(("t", "\n".join(rows)))
            elif name == "li":
                self.flush()
                nested = child.find_all(("ul", "ol"), recursive=False)
                for inner in nested:
                    inner.extract()
                text = " ".join(child.get_text(" ").split())
                if text:
                    self.blocks.append(("li", "  " * depth + "- " + text))
                for inner in nested:
                    self.walk(inner, depth + 1)
            elif name == "br":
                self.inline.append("\n")
            elif name == "pre":
                self.flush()
                text = tidy(child.get_text())
                if text:
                    self.blocks.append(("p", text))
            elif name in BLOCK or name in ("ul", "ol"):
                self.flush()
                self.walk(child, depth)
                self.flush()
            else:
                self.walk(child, depth)

    def result(self) -> tuple[str, list[list]]:
        self.flush()
        parts: list[str] = []
        sections: list[list] = []
        position, previous = 0, ""
        for kind, text in self.blocks:
            if parts:
                separator = "\n" if kind == previous == "li" else "\n\n"
                parts.append(separator)
                position += len(separator)
            if kind == "h":
                sections.append([position, text.lstrip("#").strip()])
            parts.append(text)
            position += len(text)
            previous = kind
        return "".join(parts), sections
