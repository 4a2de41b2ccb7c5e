"""Fit the proposer's prompt into the model's context before it is sent: a prompt that overflows is refused whole
(on long Korean pages: "request (7154 tokens) exceeds the available context size (4096 tokens)"), and then the
heuristic proposes for the whole run.

What goes first is what the LLM needs least: the quoted chunk text of the failure examples (lines ``- query "..."``
written by ``observe_champion``), then their query texts, then whole examples from the last (the worst query, first,
stays longest), then the oldest lines of the history. Each step is counted again with the server's tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Messages = list[dict[str, Any]]

EXAMPLE = '- query "'
"""How a failure example's line starts."""
CHUNK_QUOTE = re.compile(r'(?<=\] ")(.*?)(?="(?:; \[|; the right document: \[|$))')
"""The quoted text of a returned or right document: ``[title] "text"`` up to the next document or the line's end."""
QUERY_QUOTE = re.compile(r'(?<=^- query ")(.*?)(?=" \S+ -?[\d.]+; returned )')
CHUNK_LIMITS = (800, 400, 200, 120, 80, 40, 20, 0)
QUERY_LIMITS = (120, 60, 30)
MARGIN = 64
"""Tokens kept free besides the answer's room: a counted prompt is exact, an estimated one already errs high."""


@dataclass
class Fitted:
    observation: str
    history: str
    tokens: int
    before: int
    fits: bool
    cuts: list[str] = field(default_factory=list)

    def note(self, budget: int) -> str | None:
        """What the proposal's notes say: nothing when the prompt was sent whole."""
        if not self.fits:
            return (f"prompt {self.before:,} tokens: even without failure examples and history it leaves no room in "
                    f"the model's context ({budget:,} tokens for the prompt): not sent")
        if not self.cuts:
            return None
        return f"prompt {self.before:,} -> {self.tokens:,} tokens: {', '.join(self.cuts)}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _quotes(observation: str, pattern: re.Pattern[str], limit: int) -> str:
    """Every example line's quotes of ``pattern`` cut to ``limit`` characters."""
    return "\n".join(pattern.sub(lambda m: _cut(m.group(1), limit), line) if line.startswith(EXAMPLE) else line
                     for line in observation.split("\n"))


def _longest(observation: str, pattern: re.Pattern[str]) -> int:
    return max((len(m.group(1)) for line in observation.split("\n") if line.startswith(EXAMPLE)
                for m in pattern.finditer(line)), default=0)


def _without_examples(observation: str, keep: int) -> str:
    """The observation with its first ``keep`` failure examples and every other line."""
    lines, seen = [], 0
    for line in observation.split("\n"):
        if line.startswith(EXAMPLE):
            seen += 1
            if seen > keep:
                continue
        lines.append(line)
    return "\n".join(lines)


def _dropped(count: int) -> str:
    return f"{count} example{'s' if count > 1 else ''} dropped"


def _smaller(observation: str, history: str) -> Iterator[tuple[str, str, list[str]]]:
    """Ever smaller (observation, history), each with what was cut so far."""
    cuts: list[str] = []
    for pattern, limits, what in ((CHUNK_QUOTE, CHUNK_LIMITS, "quoted chunks"), (QUERY_QUOTE, QUERY_LIMITS, "queries")):
        step = None
        for limit in [limit for limit in limits if limit < _longest(observation, pattern)]:
            observation = _quotes(observation, pattern, limit)
            step = f"{what} cut to {limit} chars" if limit else f"{what} left out"
            yield observation, history, [*cuts, step]
        cuts += [step] if step else []
    examples = sum(line.startswith(EXAMPLE) for line in observation.split("\n"))
    for keep in range(examples - 1, -1, -1):
        yield _without_examples(observation, keep), history, [*cuts, _dropped(examples - keep)]
    observation = _without_examples(observation, 0)
    cuts += [_dropped(examples)] if examples else []
    lines = history.split("\n")
    keep = len(lines)
    while keep:
        keep //= 2
        left_out = f"the {len(lines) - keep} oldest of {len(lines)} history lines left out"
        yield observation, "\n".join(lines[len(lines) - keep:]) or "- (left out)", [*cuts, left_out]


def fit_prompt(observation: str, history: str, build: Callable[[str, str], Messages],
               count: Callable[[Messages], int], budget: int) -> Fitted:
    """The largest prompt ``build(observation, history)`` along the trimming order whose ``count`` is within
    ``budget``; ``fits`` False when even the smallest is not (then it should not be sent)."""
    before = tokens = count(build(observation, history))
    if tokens <= budget:
        return Fitted(observation, history, tokens, before, True)
    for smaller, kept_history, cuts in _smaller(observation, history):
        tokens = count(build(smaller, kept_history))
        if tokens <= budget:
            return Fitted(smaller, kept_history, tokens, before, True, cuts)
    return Fitted(observation, history, tokens, before, False)
