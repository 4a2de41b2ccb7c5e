"""PDF: the text layer, page by page (pypdf), so a passage can be cited by page. A PDF has no paragraphs or
headings to recover reliably, so pages are the structure kept; a PDF whose pages hold images but no text is a scan
and is reported as one rather than as empty, since OCR would make it readable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evalsets.ingest.base import READERS, Extracted, ExtractionError, Reader, ReadOptions, join_pages
from evalsets.ingest.formats._pdf_spacing import needs_spacing, respaced
from evalsets.ingest.structure import choose_title, mark_text, markdown_sections
from evalsets.text import garbled


@READERS.register
class PdfReader(Reader):
    format = "pdf"
    suffixes = (".pdf",)
    version = 3  # 2: garbled pages kept out, titles from the body, Korean headings; 3: Korean word spaces from gaps

    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        import logging

        from pypdf import PasswordType
        from pypdf import PdfReader as Pdf
        from pypdf.errors import DependencyError, FileNotDecryptedError

        with path.open("rb") as handle:
            head = handle.read(1024)
        if not head:
            return []
        if b"%PDF-" not in head:
            raise ExtractionError("corrupt", "not a PDF (no %PDF- header at its start)")
        logging.getLogger("pypdf").setLevel(logging.ERROR)  # its recovery warnings would flood a worker's stderr
        try:
            pdf = Pdf(path)
            if pdf.is_encrypted and pdf.decrypt("") == PasswordType.NOT_DECRYPTED:
                raise ExtractionError("encrypted", "password-protected PDF (it does not open without a password; "
                                                   "save an unprotected copy)")
            # justified lines come out with runs of spaces between words: one space is what was written
            pages = [re.sub(r"(?<=\S)[ \t]{2,}(?=\S)", " ", page.extract_text() or "") for page in pdf.pages]
            # Korean set without space glyphs (HWP exports, pdfTeX) runs its words together: those pages, and only
            # those, are read again with spaces where the glyphs stand apart
            respaced_pages = []
            for number, page in enumerate(pdf.pages, start=1):
                if needs_spacing(pages[number - 1]) and (better := respaced(page, pages[number - 1])):
                    pages[number - 1] = better
                    respaced_pages.append(number)
            title = _title(pdf)
        except ExtractionError:
            raise
        except DependencyError as error:  # AES without the cryptography package
            raise ExtractionError("encrypted", f"encrypted PDF that needs a missing library to open ({error})") \
                from error
        except FileNotDecryptedError as error:
            raise ExtractionError("encrypted", f"password-protected PDF ({error})") from error
        except Exception as error:  # pypdf raises many kinds on damaged files; each is one line for the report
            detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            raise ExtractionError("corrupt", f"damaged or truncated PDF ({detail})") from error

        # garbage is kept out of the corpus (it would match queries at random and be quoted in answers): a page
        # of glyph ids or mojibake is dropped and named in the metadata; a file of nothing else is reported garbled
        reasons = {number: why for number, page in enumerate(pages, start=1) if (why := garbled(page))}
        if reasons and len(reasons) == sum(1 for page in pages if page.strip()):
            first = min(reasons)
            raise ExtractionError("garbled", f"no readable text: page{'s' if len(reasons) > 1 else ''} "
                                             f"{_numbers(reasons)}: {reasons[first]}")
        pages = ["" if number in reasons else page for number, page in enumerate(pages, start=1)]
        # a PDF has no heading markup: Korean numbered lines become "#" headings, page by page
        text, offsets = join_pages([mark_text(page) for page in pages])
        image_only = [number for number, page in enumerate(pdf.pages, start=1)
                      if not pages[number - 1].strip() and _has_images(page)]
        if not text:
            if image_only:
                raise ExtractionError("scanned", f"no text layer on any of its {len(pages)} pages "
                                                 "(a scan? run OCR first)")
            return []
        metadata: dict[str, Any] = {"pages": offsets}
        if sections := markdown_sections(text):
            metadata["sections"] = sections
        if image_only:
            metadata["image_only_pages"] = image_only  # scanned pages inside a PDF that has text elsewhere
        if respaced_pages:
            metadata["respaced_pages"] = respaced_pages  # word spaces taken from glyph gaps (see _pdf_spacing)
        if reasons:
            metadata["garbled_pages"] = sorted(reasons)  # left out: a user may filter on the flag or fix the file
        return [Extracted(title=choose_title(text, path.stem, title), text=text, metadata=metadata)]


def _numbers(pages: dict[int, str]) -> str:
    listed = sorted(pages)
    return ", ".join(map(str, listed[:10])) + (f" and {len(listed) - 10} more" if len(listed) > 10 else "")


def _title(pdf) -> str:
    try:
        title = pdf.metadata.title if pdf.metadata else None
    except Exception:  # noqa: BLE001 - a damaged info dictionary is no reason to lose the text
        return ""
    return str(title).strip() if title else ""


def _has_images(page) -> bool:
    try:
        return len(page.images) > 0
    except Exception:  # noqa: BLE001 - an unreadable image is still no text
        return False
