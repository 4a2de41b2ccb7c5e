"""What the DOCX, PPTX and XLSX readers check before opening a file: an Office Open XML file is a ZIP package,
and a password-protected one is not — Office wraps it in an OLE container (an ``EncryptedPackage`` stream), the
same container a legacy binary .doc/.ppt/.xls uses. Telling these apart gives a reason a person can act on."""

from __future__ import annotations

import zipfile
from pathlib import Path

from evalsets.ingest.base import ExtractionError

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
LEGACY = {".docx": ".doc", ".pptx": ".ppt", ".xlsx": ".xls", ".xlsm": ".xls"}


def check_package(path: Path) -> None:
    """Raise :class:`ExtractionError` unless ``path`` is a ZIP package (the reader then opens it)."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head == OLE_MAGIC:
        if _ole_has(path, "EncryptedPackage"):
            raise ExtractionError("encrypted", f"password-protected {path.suffix.lower()} file (remove the password "
                                               "in Office and export it again)")
        legacy = LEGACY.get(path.suffix.lower(), "Office")
        raise ExtractionError("unsupported", f"a legacy binary {legacy} file named {path.suffix.lower()} "
                                             f"(save it as {path.suffix.lower()} in Office)")
    if not zipfile.is_zipfile(path):
        raise ExtractionError("corrupt", f"not a ZIP package as {path.suffix.lower()} files are (truncated or "
                                         "damaged)")


def _ole_has(path: Path, stream: str) -> bool:
    try:
        import olefile

        with olefile.OleFileIO(str(path)) as ole:
            return bool(ole.exists(stream))
    except Exception:  # noqa: BLE001 - a damaged container: look for the stream's name in its directory
        return stream.encode("utf-16-le") in path.read_bytes()


def corrupt(path: Path, error: Exception) -> ExtractionError:
    """A library's failure on a damaged package, said in one line."""
    detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    return ExtractionError("corrupt", f"damaged {path.suffix.lower()} package ({detail})")
