"""What a reviewer reads in the terminal (`evolve review`, `evolve audit`, the approve prompt), at 80 columns:
one overview line per candidate, each hash once and short, the config diff against the champion."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardrails import Row

SHORT = 12
"""Characters of a sha256 shown to people (the log and `evolve audit --wide` hold the full ones)."""


def short(sha: str | None) -> str:
    return (sha or "-")[:SHORT]


def headline(report: dict[str, object]) -> tuple[str, float | None, float | None]:
    """(primary metric, candidate - champion on the held-back queries, one-sided p) from a guard report's rules."""
    metric, delta, p_value = "score", None, None
    for rule in report.get("rules") or []:
        name = rule.get("rule", "")
        if name.startswith("min_gain (") and isinstance(rule.get("measured"), (int, float)):
            metric, delta = name[len("min_gain ("):-1], float(rule["measured"])
        elif name.startswith("significance") and isinstance(rule.get("measured"), (int, float)):
            p_value = float(rule["measured"])
    return metric, delta, p_value


def wins_losses_ties(report: dict[str, object]) -> str | None:
    """"W/L/T" over the held-back queries when the report carries the per-query outcome, else None."""
    for source in (report.get("per_query_outcome"), report.get("outcome"), report.get("decision")):
        if isinstance(source, dict) and all(isinstance(source.get(k), int) for k in ("wins", "losses", "ties")):
            return f"{source['wins']}/{source['losses']}/{source['ties']}"
    return None


def signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def p_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if value < 0.01 else f"{value:.3f}"


def overview_lines(rows: list[Row], stale: dict[str, str | None], alias: str | None) -> list[str]:
    """One line per candidate register row, the strongest evidence (largest delta) first."""
    def key(row: Row) -> float:
        delta = headline(row.info.get("report") or {})[1]
        return -(delta if delta is not None else float("-inf"))

    ordered = sorted(rows, key=key)
    metric = headline((ordered[0].info.get("report") or {}) if ordered else {})[0]
    lines = [f"{'ver':>4} {'name':<20} {'d ' + metric:>9} {'p':>6} {'W/L/T':>8} {'look':>4}  notes"]
    for row in ordered:
        report = row.info.get("report") or {}
        _, delta, p_value = headline(report)
        name = str((row.info.get("config") or {}).get("name") or report.get("candidate", {}).get("config") or "?")
        notes = [n for n in ("stale" if stale.get(row.version) else "",
                             "candidate alias" if alias == row.version else "") if n]
        lines.append(f"{row.version:>4} {name[:20]:<20} {signed(delta):>9} {p_text(p_value):>6} "
                     f"{wins_losses_ties(report) or '-':>8} {str(row.info.get('look') or '-'):>4}  "
                     + ", ".join(notes))
    return lines


def flat(value: object, prefix: str = "") -> dict[str, object]:
    """A nested config as dotted keys -> leaf values."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def config_diff(candidate: dict[str, object], champion: dict[str, object]) -> list[str]:
    """One line per setting that differs: ``key: champion -> candidate`` (the name left out)."""
    mine, theirs = flat(candidate), flat(champion)
    return [f"{k}: {theirs.get(k, '(unset)')} -> {mine.get(k, '(unset)')}"
            for k in sorted(set(mine) | set(theirs)) if k != "name" and mine.get(k) != theirs.get(k)]


def short_why(why: str) -> str:
    """A rule's explanation without the formula the policy documents once (the MDE's)."""
    return why.split(": (z(1-alpha)")[0]
