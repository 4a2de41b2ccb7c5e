"""The BM25 tokenizer interface and its registry.

A tokenizer kind is one module in this package: a :class:`Tokenizer` subclass with a ``name``, registered with
``@TOKENIZERS.register``. Registered, the name is accepted by the pipeline config (``lexical.tokenizer``),
offered by search spaces and the proposer, and built by :func:`get_tokenizer`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from functools import lru_cache
from typing import ClassVar

from pipelines.registry import Registry

WORD = re.compile(r"(?u)\b\w\w+\b")
"""Runs of 2+ word characters (bm25s' default token pattern)."""


class Tokenizer(ABC):
    """Turns texts into BM25 tokens.

    The contract of a kind: ``name`` is what configs call it; the constructor takes no arguments and may load a
    model (it runs once per process, :func:`get_tokenizer` caches the instance); :meth:`tokenize` is pure and is
    called for chunks at index time and for each query batch, possibly from several server threads at once.
    """

    name: ClassVar[str]

    @abstractmethod
    def tokenize(self, texts: list[str]) -> list[list[str]]:
        """One token list per text."""


TOKENIZERS: Registry[Tokenizer] = Registry("BM25 tokenizer", lambda cls: cls.name)
"""Tokenizer name -> tokenizer class; each kind's module registers itself."""


@lru_cache(maxsize=None)
def get_tokenizer(name: str) -> Tokenizer:
    """The process's tokenizer of that name (an unknown name is a KeyError naming the known ones)."""
    return TOKENIZERS.get(name)()
