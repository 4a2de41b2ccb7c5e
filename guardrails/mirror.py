"""The MLflow registry as a mirror of the decision log: aliases and status tags, compared and put back.

Anyone who can reach the tracking server can move an alias (the MLflow UI has a pencil for it), so
evolve never reads the champion from the alias. It compares: :func:`mirror_differences` says in plain
words where the registry disagrees with the log, and :func:`sync_mirror` (`evolve audit --repair`)
makes the registry say what the log says. An unreachable MLflow is a difference, never a failure.
"""

from __future__ import annotations

from typing import Any

from guardrails.ledger import Row, champion_history, version_states
from guardrails.registry import STATUS


def expected_mirror(rows: list[Row]) -> tuple[dict[str, str | None], dict[str, str]]:
    """(alias -> version, version -> status tag) as the log has them."""
    states = version_states(rows)
    candidates = sorted((v for v, s in states.items() if s == "candidate"), key=int)
    aliases = {"champion": champion_history(rows)[-1].version, "candidate": candidates[-1] if candidates else None}
    return aliases, states


def mirror_differences(project: Any, rows: list[Row]) -> list[str]:
    """Every place the registry disagrees with the log, one line each ([] when in sync)."""
    aliases, states = expected_mirror(rows)
    try:
        registry = project.registry
        problems = []
        for alias, version in aliases.items():
            found = registry.alias_version(alias)
            if found != version:
                problems.append(f"MLflow alias '{alias}' points at {_name(found)}, the decision log says {_name(version)}")
        tags = {str(v.version): v.tags.get(STATUS) for v in registry.versions()}
        for version, state in sorted(states.items(), key=lambda item: int(item[0])):
            if tags.get(version, state) != state:
                problems.append(f"version {version} is tagged {tags[version]!r} in MLflow, the decision log says {state!r}")
        for version, tag in sorted(tags.items(), key=lambda item: int(item[0])):
            if version not in states and tag in ("candidate", "champion"):
                problems.append(f"version {version} is tagged {tag!r} in MLflow but is not in the decision log "
                                "(registered outside evolve's guard step: it can never be approved)")
        return problems
    except Exception as err:  # noqa: BLE001 - any failure to reach the registry is reported, not raised
        return [f"MLflow registry unreachable ({first_line(err)})"]


def sync_mirror(project: Any, rows: list[Row]) -> list[str]:
    """Make the registry say what the log says; returns what could not be done ([] on success)."""
    aliases, states = expected_mirror(rows)
    try:
        registry = project.registry
        known = {str(v.version): v.tags.get(STATUS) for v in registry.versions()}
        for version, state in states.items():
            if version in known and known[version] != state:
                registry.set_status(version, state)
        for version, tag in known.items():
            if version not in states and tag in ("candidate", "champion"):
                registry.set_status(version, "unaudited")
        for alias, version in aliases.items():
            registry.move_alias(alias, version)
        return []
    except Exception as err:  # noqa: BLE001
        return [f"MLflow registry not updated ({first_line(err)}); "
                "`evolve audit --repair` puts the mirror back when it is reachable"]


def _name(version: str | None) -> str:
    return f"version {version}" if version else "no version (the default config)"


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:160]}" if text else type(err).__name__
