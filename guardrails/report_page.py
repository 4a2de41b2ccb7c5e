"""The guard decision as a reviewer reads it on the MLflow version page: Markdown, a per-query table, a plot.

Everything here is for people browsing MLflow (the decision log stays the record): candidate vs champion per
evaluation set with the delta, the p-value and the minimum detectable effect, latency and index size of both
sides, the config diff, wins / losses / ties and the queries that gained and lost most.
"""

from __future__ import annotations

import difflib
from typing import Any

from guardrails.checks import GuardReport, _fmt
from guardrails.evidence import Evidence
from pipelines import PipelineConfig

TIE = 1e-9
EXAMPLES = 3


def config_diff(champion: PipelineConfig | None, candidate: PipelineConfig) -> str:
    """A unified diff of the two configs' YAML (champion first); '' when there is no champion config."""
    if champion is None:
        return ""
    return "".join(difflib.unified_diff(champion.to_yaml().splitlines(keepends=True),
                                        candidate.to_yaml().splitlines(keepends=True),
                                        f"champion/{champion.name}.yaml", f"candidate/{candidate.name}.yaml"))


def query_rows(candidate: Evidence, champion: Evidence | None, metric: str) -> list[dict[str, Any]]:
    """One row per held-back query scored on ``metric`` by both sides (failure set excluded): set, id, text, both
    scores, the delta (candidate - champion) and each side's first documents."""
    if champion is None:
        return []
    theirs = {s.name: s for s in champion.sets}
    rows = []
    for mine in candidate.sets:
        other = theirs.get(mine.name)
        if mine.is_failure_set or other is None:
            continue
        for qid, scores in mine.per_query.items():
            if metric not in scores or metric not in other.per_query.get(qid, {}):
                continue
            cand, champ = float(scores[metric]), float(other.per_query[qid][metric])
            rows.append({"set": mine.name, "id": qid, "text": mine.texts.get(qid) or other.texts.get(qid, ""),
                         "candidate": cand, "champion": champ, "delta": cand - champ,
                         "candidate_top3": " ".join(mine.top.get(qid, [])),
                         "champion_top3": " ".join(other.top.get(qid, []))})
    return rows


def tally(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {"wins": sum(r["delta"] > TIE for r in rows), "losses": sum(r["delta"] < -TIE for r in rows),
            "ties": sum(abs(r["delta"]) <= TIE for r in rows)}


def primary_metric(report: GuardReport) -> str:
    """The metric the report decided on (its min_gain rule names it)."""
    rule = next((r.rule for r in report.rules if r.rule.startswith("min_gain (")), "min_gain (ndcg@10)")
    return rule[len("min_gain ("):-1]


def _rule(report: GuardReport, prefix: str) -> Any:
    found = next((r for r in report.rules if r.rule.startswith(prefix)), None)
    return found.measured if found is not None else None


def _cell(text: str, width: int = 90) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[:width - 1] + "…"


def decision_markdown(report: GuardReport, metric: str, diff: str, rows: list[dict[str, Any]],
                      champion: Evidence | None = None) -> str:
    """The version page / run description: verdict first, then the numbers that decided it."""
    cand, champ = report.candidate, report.champion
    decision = report.decision
    verdict = "PASSED" if report.passed else "REJECTED (" + ", ".join(report.failed_rules) + ")"
    p_value, mde = _rule(report, "significance"), _rule(report, "minimum detectable effect")
    lines = [f"**{verdict}**: candidate `{cand['config']}` vs champion `{champ['config']}` "
             f"(version {decision.get('champion_version', '?')})", ""]
    if decision.get("look") is not None:
        lines += [f"look {decision['look']} ({decision.get('looks', '')}), alpha of this look "
                  f"{_fmt(decision.get('alpha_of_look'))}, family alpha {_fmt(decision.get('family_alpha'))}", ""]
    lines += [f"| set | queries | candidate {metric} | champion {metric} | delta | p-value | min. detectable effect |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, values in cand.get("sets", {}).items():
        theirs = champ.get("sets", {}).get(name, {})
        c, h = values.get(metric), theirs.get(metric)
        delta = _fmt(c - h) if c is not None and h is not None else "-"
        pooled = name != "failure-set"  # the test and the effect size are over the pooled held-back queries
        lines.append(f"| {name} | {values.get('queries', '')} | {_fmt(c)} | {_fmt(h)} | {delta} | "
                     f"{_fmt(p_value) if pooled else '-'} | {_fmt(mde) if pooled else '-'} |")
    lines += ["", "delta = candidate - champion; p-value: one-sided, paired, over the pooled held-back queries", "",
              "| | candidate | champion |", "| --- | --- | --- |",
              f"| latency p95 (ms) | {_fmt(cand.get('latency_p95_ms'))} | {_fmt(champ.get('latency_p95_ms'))} |",
              f"| index size (MB) | {_fmt(cand.get('index_mb'))} | {_fmt(champ.get('index_mb'))} |"]
    judged = [(name, m) for name, values in cand.get("sets", {}).items() for m in values
              if not m.endswith("_judged") and f"{m}_judged" in values]
    for name, m in judged:
        theirs = champ.get("sets", {}).get(name, {})
        lines.append(f"| {m} [{name}] ({cand['sets'][name][m + '_judged']} judged) | {_fmt(cand['sets'][name][m])} "
                     f"| {_fmt(theirs.get(m, '-'))} |")
    if not judged and (cand.get("answers") or {}).get("skipped"):
        lines += ["", f"answer metrics not judged: {cand['answers']['skipped']}"]
    if rows:
        t = tally(rows)
        lines += ["", f"**{t['wins']} wins / {t['losses']} losses / {t['ties']} ties** over {len(rows)} held-back "
                  f"queries ({metric}, candidate vs champion)"]
        for title, chosen in (("gained most", sorted(rows, key=lambda r: -r["delta"])[:EXAMPLES]),
                              ("lost most", sorted(rows, key=lambda r: r["delta"])[:EXAMPLES])):
            chosen = [r for r in chosen if abs(r["delta"]) > TIE]
            if not chosen:
                continue
            lines += ["", f"Queries that {title}:", "", "| query | candidate | champion | delta |",
                      "| --- | --- | --- | --- |"]
            lines += [f"| {_cell(r['text'] or r['id'])} | {_fmt(r['candidate'])} | {_fmt(r['champion'])} | "
                      f"{_fmt(r['delta'])} |" for r in chosen]
    lines += ["", "Config diff against the champion:", ""]
    lines += ["```diff", diff.rstrip("\n"), "```"] if diff.strip() else ["(none: the same config)"
                                                                        if champion is not None else "(champion config not recorded)"]
    lines += ["", "Rules: `guardrail_report.md`" + ("; per-query scores: `per_query.json`, `delta_histogram.png`."
                                                   if rows else ".")]
    return "\n".join(lines) + "\n"


def delta_histogram(rows: list[dict[str, Any]], metric: str) -> Any:
    """A matplotlib figure of the per-query deltas (candidate - champion)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    deltas = [r["delta"] for r in rows]
    ax.hist(deltas, bins=min(30, max(5, len(deltas) // 2)), color="#4c72b0")
    ax.axvline(0, color="black", linewidth=1)
    t = tally(rows)
    ax.set_title(f"per-query {metric}: candidate - champion ({t['wins']} W / {t['losses']} L / {t['ties']} T)")
    ax.set_xlabel("delta")
    ax.set_ylabel("queries")
    fig.tight_layout()
    return fig
