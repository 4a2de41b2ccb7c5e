"""Issue-21 benchmark, part 1: the share of LLM proposals the space schema accepts, with the open response format
(``LLMProposal``'s own JSON schema: ``space`` any object) and with the full space schema (models and kinds as
enums, numbers within their limits; ``agent.loop.proposers.proposal_json_schema``).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.loop.proposal_validity [--model smollm2-135m] [--n 30]

Each observation is one proposal request as the loop makes it (the observation text of a real champion's
failures on the demo set is replaced by a fixed line per observation, varied by the iteration number so the
request cache does not repeat answers), without the loop's one correction round: what is measured is the first
reply. Writes bench/results/proposal_validity-<model>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time

from agent.loop.proposers import LLMProposal, llm_messages, proposal_json_schema, validate_proposal
from bench import RESULTS
from bench.llm.args import add_llm_arguments, bench_client
from experiments import SpaceError
from pipelines.llm import LLMError

OBSERVATIONS = ["queries about rate limits return the pricing page first",
                "Korean queries with English product names miss the right ticket",
                "long troubleshooting queries rank a generic FAQ above the answer",
                "queries naming an API parameter find the changelog, not the reference",
                "short keyword queries work; questions in full sentences do not"]


def observe(client, schema: str, n: int, language: str) -> dict:  # type: ignore[no-untyped-def]
    valid, invalid, errors, seconds = 0, 0, {}, []
    for i in range(n):
        messages = llm_messages(f"- {OBSERVATIONS[i % len(OBSERVATIONS)]} (look {i + 1})", language,
                                f"- iteration {i}: nothing promoted yet", None)
        started = time.perf_counter()
        try:
            reply = client.structured(messages, LLMProposal, max_tokens=900,
                                      **({"json_schema": proposal_json_schema(language)} if schema == "full" else {}))
            validate_proposal(reply.space, f"llm-{i}")
            valid += 1
        except (SpaceError, LLMError) as err:
            invalid += 1
            reason = str(err).split(":", 2)[-1].strip()[:120]
            errors[reason] = errors.get(reason, 0) + 1
        seconds.append(time.perf_counter() - started)
        print(f"{schema} {i + 1}/{n}: valid {valid}, invalid {invalid} ({seconds[-1]:.1f} s)", flush=True)
    return {"schema": schema, "observations": n, "valid": valid, "share_valid": round(valid / n, 3),
            "seconds_per_proposal": round(sum(seconds) / n, 1),
            "errors": dict(sorted(errors.items(), key=lambda item: -item[1])[:8])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_llm_arguments(parser)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--language", default="en")
    args = parser.parse_args()
    out = {"model": args.base_url and args.served_model or args.model, "language": args.language, "runs": []}
    with bench_client(args) as client:
        for schema in ("open", "full"):
            out["runs"].append(observe(client, schema, args.n, args.language))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"proposal_validity-{out['model']}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [f"# Valid LLM proposals, {out['model']} ({args.language}), first reply, no correction round", "",
             "| response format | observations | valid | share | s per proposal | most common refusal |",
             "| --- | --- | --- | --- | --- | --- |"]
    for run in out["runs"]:
        top = next(iter(run["errors"]), "-")
        lines.append(f"| {run['schema']} | {run['observations']} | {run['valid']} | {run['share_valid']:.2f} | "
                     f"{run['seconds_per_proposal']} | {top} |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
