"""The one way a YAML file becomes a typed, validated model (pipeline configs, search spaces, the policy).

Every failure is the caller's own error type with one line naming the file and the offending fields,
never a traceback: a missing file, bytes that are not UTF-8, YAML that does not parse, a top level that is
not a mapping, or fields the model refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def problems_of(err: ValidationError) -> str:
    """pydantic's errors as 'field.path: message; ...' (the top level is '(top)')."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in err.errors())


def read_mapping(path: Path | str, error: type[Exception], what: str, empty_ok: bool = False) -> dict[str, Any]:
    """The top-level mapping of a YAML file, or ``error`` with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return data


def validate_as(model: type[M], data: dict[str, Any], error: type[Exception], source: str,
                context: dict[str, Any] | None = None) -> M:
    """``data`` as ``model``; ``context``: what its validators may read (e.g. the model catalog names resolve in)."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as err:
        raise error(f"{source}: {problems_of(err)}") from None


def load_model(path: Path | str, model: type[M], error: type[Exception], what: str, empty_ok: bool = False,
               context: dict[str, Any] | None = None) -> M:
    """read_mapping + validate_as: the whole road from a file to a model."""
    return validate_as(model, read_mapping(path, error, what, empty_ok), error, str(path), context)
