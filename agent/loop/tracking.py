"""Every agent iteration as an MLflow run: the proposal, its rationale, who proposed it, and the outcome."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from agent.loop.records import IterationRecord
from experiments import StudyTracker

if TYPE_CHECKING:
    from agent.loop.state import AgentState

ROLE = "evolve.role"


class AgentTracker:
    def __init__(self, tracking_uri: str, run_id: str, artifact_root: Path, settings: dict[str, str | int]):
        self.tracker = StudyTracker(tracking_uri, "evolve-agent", artifact_root)
        client = self.tracker.client
        found = client.search_runs([self.tracker.experiment_id],
                                   f"tags.`evolve.agent_run` = '{run_id}' and tags.`{ROLE}` = 'agent'", max_results=1)
        if found:
            self.parent = found[0].info.run_id
        else:
            self.parent = client.create_run(self.tracker.experiment_id, run_name=run_id,
                                            tags={"evolve.agent_run": run_id, ROLE: "agent"}).info.run_id
            self.tracker.log_params(self.parent, settings)
        self.run_id = run_id

    def __call__(self, state: AgentState, entry: IterationRecord) -> None:
        from mlflow.entities import RunStatus

        client = self.tracker.client
        run = client.create_run(self.tracker.experiment_id, run_name=f"iteration-{entry.iteration}", tags={
            "mlflow.parentRunId": self.parent, ROLE: "iteration", "evolve.agent_run": self.run_id,
            "evolve.proposer": entry.proposer, "evolve.outcome": entry.outcome[:5000],
            "evolve.rationale": entry.rationale[:5000], "evolve.study": entry.study or "",
            "evolve.looked": str(entry.looked).lower(),
            "mlflow.note.content": f"**{entry.proposer} proposal**: {entry.rationale}\n\n"
                                   f"**outcome**: {entry.outcome}\n\nnotes: {entry.notes}"})
        metrics = {"best_tune_value": entry.best_tune_value,
                   f"champion_heldout_{entry.metric}": entry.champion_heldout,
                   "answer_seconds": entry.answer_seconds, "trials_reused": entry.trials_reused,
                   "tuning_gain": (entry.tuning or {}).get("gain"),
                   "champion_tune_value": entry.champion_tune_value}
        for side, sets in (("candidate", entry.candidate_heldout), ("champion", entry.champion_heldout_sets)):
            for set_name, values in (sets or {}).items():  # held-back means: the metric, and judged answer metrics
                metrics.update({f"{side}.{set_name}.{k}": v for k, v in values.items()
                                if isinstance(v, (int, float)) and k != "queries"})
        self.tracker.log_metrics(run.info.run_id, {k: v for k, v in metrics.items() if v is not None})
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "proposal_space.yaml").write_text(state["proposal"].to_yaml())
            (folder / "guardrail_report.json").write_text(json.dumps(state.get("guard", {}), indent=2, default=str))
            (folder / "observation.txt").write_text(state.get("observation", ""))
            client.log_artifacts(run.info.run_id, str(folder))
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED))
