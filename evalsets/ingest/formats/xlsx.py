"""XLSX / XLSM: every sheet that holds values (openpyxl, read-only, cached values rather than formulas), as a
``## <sheet>`` line and one ``| a | b |`` line per row, so a row stays one unit of meaning for the chunker. One
document per workbook; a sheet past :data:`MAX_ROWS` rows is cut there and the rows left out are counted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from evalsets.ingest.base import READERS, Extracted, Reader, ReadOptions, join_pages, table_row
from evalsets.ingest.formats._office import check_package, corrupt
from evalsets.ingest.structure import is_placeholder_title

MAX_ROWS = 20_000


@READERS.register
class XlsxReader(Reader):
    format = "xlsx"
    suffixes = (".xlsx", ".xlsm")

    def read(self, path: Path, options: ReadOptions) -> list[Extracted]:
        import openpyxl

        if path.stat().st_size == 0:
            return []
        check_package(path)
        try:
            workbook = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
        except Exception as error:
            raise corrupt(path, error) from error
        try:
            blocks, names, truncated = [], [], {}
            for sheet in workbook.worksheets:
                sheet.reset_dimensions()  # some writers record a wrong used range; read the rows that are there
                lines, dropped = [], 0
                for row in sheet.iter_rows(values_only=True):
                    cells = [_cell(value) for value in row]
                    while cells and not cells[-1]:
                        cells.pop()
                    if not cells:
                        continue
                    if len(lines) < MAX_ROWS:
                        lines.append(table_row(cells))
                    else:
                        dropped += 1
                if lines:
                    names.append(sheet.title)
                    blocks.append(f"## {sheet.title}\n" + "\n".join(lines))
                if dropped:
                    truncated[sheet.title] = dropped
            title = (workbook.properties.title or "").strip()
        except Exception as error:
            raise corrupt(path, error) from error
        finally:
            workbook.close()

        text, spans = join_pages(blocks, start=0)
        if not text:
            return []
        metadata: dict[str, Any] = {"sheets": names, "sections": [[offset, names[i]] for offset, i in spans]}
        if truncated:
            metadata["truncated_rows"] = truncated
        return [Extracted(title=path.stem if is_placeholder_title(title) else title, text=text, metadata=metadata)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
