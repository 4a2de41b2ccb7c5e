"""Kind registries: the one place where a kind name in a config becomes an object.

Each component package (chunking, rerankers, lexical, fusion) keeps one :class:`Registry` beside its
abstract base. An implementation registers itself with a decorator and, for components with
parameters, owns its config model (a :class:`KindConfig` subclass whose ``kind`` is a ``Literal``).
Everything that lists kinds (the pipeline config, the search space, the sampler, the proposer's
schema text) asks the registry, so adding a kind is one new file in the package.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from functools import partial
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, SerializeAsAny, ValidationError

T = TypeVar("T")


class KindConfig(BaseModel):
    """The config of one kind: ``kind`` names it, the other fields are its parameters.

    A subclass fixes ``kind`` with a ``Literal`` default; its fields are what a pipeline config accepts and,
    for numbers, booleans and literals, what a search space may tune (see :attr:`tuned`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str

    tuned: ClassVar[tuple[str, ...] | None] = None
    """The fields a search space draws for this kind, in draw order; None: every number, boolean and literal field
    in declaration order. Fields a kind carries but does not use (kept for the config's content address) are left
    out here."""

    @classmethod
    def kind_name(cls) -> str:
        return cls.model_fields["kind"].default

    @classmethod
    def clamp(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Parameters a search space drew, made consistent with each other before validation (default: as drawn)."""
        return params

    def models(self) -> list[str]:
        """The model names this part uses (for licences and availability checks)."""
        return []


class Registry(Generic[T]):
    """Kind name -> implementation class; unknown kinds are refused with the known ones named (sorted, so the order
    never depends on which module happened to be imported first)."""

    def __init__(self, what: str, kind_of: Callable[[type[T]], str]):
        self.what = what
        """How errors name a kind: 'chunker kind', 'BM25 tokenizer', ..."""
        self.classes: dict[str, type[T]] = {}
        self._kind_of = kind_of

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: makes the class's kind known (a module reloaded registers its class again)."""
        kind = self._kind_of(cls)
        known = self.classes.get(kind)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"{self.what} {kind!r} is registered twice: {known.__qualname__} and {cls.__qualname__}")
        self.classes[kind] = cls
        return cls

    def kinds(self) -> list[str]:
        return sorted(self.classes)

    def unknown(self, kind: object, known: list[str] | None = None) -> str:
        return f"unknown {self.what} {kind!r}: use one of {', '.join(sorted(self.classes) if known is None else known)}"

    def get(self, kind: str) -> type[T]:
        if kind not in self.classes:
            raise KeyError(self.unknown(kind))
        return self.classes[kind]

    def checked(self, kind: str) -> str:
        """``kind`` if registered, else ValueError (for pydantic validators)."""
        if kind not in self.classes:
            raise ValueError(self.unknown(kind))
        return kind


class ConfigRegistry(Registry[T]):
    """A registry whose implementations own a config model (their ``config`` class attribute).

    ``none``: the config of "no such stage" (kind 'none'), for stages a pipeline may leave out; it has no
    implementation, and :meth:`make` gives None for it.
    """

    def __init__(self, what: str, base: type[KindConfig], none: type[KindConfig] | None = None):
        super().__init__(what, lambda cls: cls.config.kind_name())  # type: ignore[attr-defined]
        self.base = base
        self.none = none

    def kinds(self) -> list[str]:
        return (["none"] if self.none is not None else []) + sorted(self.classes)

    def config_class(self, kind: Any) -> type[KindConfig]:
        """The config model of a kind; an unknown (or missing) kind is a ValidationError at the field ``kind``."""
        if self.none is not None and kind == "none":
            return self.none
        if not isinstance(kind, str) or kind not in self.classes:
            message = f"a 'kind' is needed: one of {', '.join(self.kinds())}" if kind is None \
                else self.unknown(kind, self.kinds())
            raise ValidationError.from_exception_data(self.what, [
                {"type": "value_error", "loc": ("kind",), "input": kind, "ctx": {"error": ValueError(message)}}])
        return self.classes[kind].config  # type: ignore[attr-defined]

    def configs(self) -> list[type[KindConfig]]:
        return [self.config_class(kind) for kind in self.kinds()]

    def parse(self, value: Any, default_kind: str | None = None) -> Any:
        """A mapping (or config) as the config of its kind; anything else is left for pydantic to refuse."""
        if isinstance(value, self.base):
            config = self.config_class(value.kind)
            return value if type(value) is config else config.model_validate(value.model_dump())
        if not isinstance(value, dict):
            return value
        kind = value.get("kind", default_kind)
        return self.config_class(kind).model_validate({**value, "kind": kind})

    def field(self, default_kind: str | None = None) -> Any:
        """The pydantic type of a config field taking any registered kind, looked up when a value is validated
        (so a kind registered later is accepted too); ``default_kind`` serves a mapping without 'kind'."""
        return Annotated[SerializeAsAny[self.base], BeforeValidator(partial(self.parse, default_kind=default_kind))]

    def make(self, config: KindConfig, *args: Any, **kwargs: Any) -> T | None:
        """The implementation for ``config`` (``from_config(config, *args, **kwargs)``), None for kind 'none'."""
        if self.none is not None and config.kind == "none":
            return None
        return self.get(config.kind).from_config(config, *args, **kwargs)  # type: ignore[attr-defined]


def import_kinds(package: str, path: Iterable[str]) -> None:
    """Imports every module of a kind package, so that a kind's own file registers it (nothing else lists it)."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
