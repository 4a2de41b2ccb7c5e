"""Errors for user mistakes in evaluation data: always name the file and line."""

from __future__ import annotations

from pathlib import Path


class EvalSetError(ValueError):
    """A problem with an evaluation set that the user can fix (bad file, bad line, bad reference)."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        self.path = Path(path) if path is not None else None
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
