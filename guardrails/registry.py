"""Pipeline configs in the MLflow model registry: aliases `candidate` and `champion`, status tags.

A registered version's source is a plain artifact folder (`pipeline/config.yaml`) of the run that
holds the guardrail report and the evaluation results. Only configs that passed the policy are
registered; a rejected one is a run tagged `evolve.status=rejected` with its report, nothing more.

A registered config that names models evolve trained carries them: each model's folder (weights and
manifest) is an artifact of the version's run under `trained_models/`, and the tag `evolve.trained_models`
names them with their sha256. So approving, rolling back to or serving that version works on a machine
(or after a clean-up) where the project's model folder lacks them: :meth:`restore_trained_models`, which takes
from those artifacts only what a model's hash covers (its manifest and weights) and only a model whose full sha256
is the one the decision log recorded when the version was evaluated (the tag is a mirror for people, not trusted).
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from evalsets import json_line
from experiments import artifact_location, flatten, metric_key
from guardrails.checks import GuardReport
from guardrails.evidence import Evidence
from guardrails.report_page import config_diff, decision_markdown, delta_histogram, primary_metric, query_rows, tally
from pipelines import ModelCatalog, PipelineConfig, TrainedModelError, TrainedModelStore, catalog_or_env, is_trained

MODEL_NAME = "evolve-retrieval-pipeline"
EXPERIMENT = "evolve-promotions"
STATUS = "evolve.status"


class PipelineRegistry:
    def __init__(self, tracking_uri: str, name: str = MODEL_NAME, artifact_root: Path | None = None):
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
        self.tracking_uri = tracking_uri
        self.name = name
        found = self.client.get_experiment_by_name(EXPERIMENT)
        if found is None:
            location = artifact_location(tracking_uri, artifact_root)
            self.experiment_id = self.client.create_experiment(EXPERIMENT, artifact_location=location)
        else:
            self.experiment_id = found.experiment_id

    # --- writing -----------------------------------------------------------------------------------
    def record_decision(self, config: PipelineConfig, report: GuardReport, per_query: dict[str, list[dict]],
                        study: str | None = None, hashes: dict[str, str] | None = None,
                        evidence: Evidence | None = None, champion: Evidence | None = None,
                        catalog: ModelCatalog | None = None) -> tuple[str, str | None]:
        """Log the decision run; register a version with alias `candidate` when the report passed.

        ``hashes`` (config and policy sha256) go on the run and the version as tags: a mirror of the
        decision log, for people browsing MLflow; evolve itself trusts only the log.

        ``evidence``: the candidate's evidence, ``champion`` the champion's on the same queries (default:
        ``evidence.champion``). With both, the run and the version's description say the decision (per set
        candidate / champion / delta, p-value, effect, wins / losses / ties, best and worst queries, config diff),
        and the run logs the champion's metrics and the deltas, ``champion/config.yaml``, ``config_diff.txt``,
        ``per_query.json`` and ``delta_histogram.png``; the champion gets a run of its own the first time.

        ``catalog``: where the config's trained models are (default: this process's); a passing version keeps a
        copy of each.
        """
        from mlflow.entities import Metric, Param, RunStatus

        status = "candidate" if report.passed else "rejected"
        hashes = hashes or {}
        trained = trained_models_of(config, catalog)
        hashes = {**hashes, **({TRAINED_TAG: json.dumps(trained)} if trained else {})}
        tags = {STATUS: status, "evolve.config_name": config.name, "evolve.failed_rules": ",".join(report.failed_rules),
                **hashes}
        if study:
            tags["evolve.study"] = study
        run = self.client.create_run(self.experiment_id, run_name=f"guard-{config.name}", tags=tags)
        run_id = run.info.run_id
        params = [Param(k, str(v)) for k, v in flatten("", json.loads(config.model_dump_json())).items()]
        metrics = [Metric(metric_key(f"{name}.{k}"), float(v), 0, 0)
                   for name, values in report.candidate["sets"].items() for k, v in values.items() if k != "queries"]
        metrics.append(Metric("latency_p95_ms", report.candidate["latency_p95_ms"], 0, 0))
        metrics += comparison_metrics(report)
        self.client.log_batch(run_id, params=params[:100], metrics=metrics)
        champion = champion if champion is not None else getattr(evidence, "champion", None)
        metric = primary_metric(report)
        rows = query_rows(evidence, champion, metric) if evidence is not None else []
        diff = config_diff(champion.config if champion is not None else None, config)
        page = fit(decision_markdown(report, metric, diff, rows, champion))
        self.client.set_tag(run_id, "mlflow.note.content", page)
        if rows:
            self.client.log_batch(run_id, metrics=[Metric(f"heldout_{k}", float(v), 0, 0)
                                                   for k, v in tally(rows).items()])
            self._log_per_query(run_id, rows, metric)
        if champion is not None:
            self.champion_run(champion, report)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "pipeline").mkdir()
            (folder / "pipeline" / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
            (folder / "guardrail_report.json").write_text(json.dumps(report.to_dict(), indent=2, default=str))
            (folder / "guardrail_report.md").write_text(report.to_markdown())
            if champion is not None:
                (folder / "champion").mkdir()
                (folder / "champion" / "config.yaml").write_text(champion.config.to_yaml(), encoding="utf-8")
                (folder / "config_diff.txt").write_text(diff or "(the same config)\n", encoding="utf-8")
                (folder / "per_query.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
            (folder / "evaluation").mkdir()
            for name, rows in per_query.items():
                with (folder / "evaluation" / f"{name}.jsonl").open("w", encoding="utf-8") as out:
                    for row in rows:
                        out.write(json_line(row))
            self.client.log_artifacts(run_id, str(folder))
        if report.passed:  # a version that may become the champion keeps its own copy of every trained model
            store = catalog_or_env(catalog).trained()
            for model_id in trained:
                model = store.get(model_id)
                self.client.log_artifacts(run_id, str(model.folder),
                                          f"{TRAINED_ARTIFACTS}/{TrainedModelStore.folder_name(model_id)}")
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
        if not report.passed:
            return run_id, None
        try:
            self.client.get_registered_model(self.name)
        except Exception:
            self.client.create_registered_model(self.name, description="Retrieval pipeline configs promoted by evolve")
        version = self.client.create_model_version(
            self.name, source=f"{run.info.artifact_uri}/pipeline", run_id=run_id,
            tags={STATUS: "candidate", "evolve.config_name": config.name, **hashes,
                  **({"evolve.study": study} if study else {})},
            description=page)
        self.client.set_registered_model_alias(self.name, "candidate", version.version)
        return run_id, str(version.version)

    def show_online_evidence(self, version: str, lines: list[str], verdict: str) -> None:
        """Put what live traffic says about ``version`` on its MLflow version page, in a section of its own below
        the offline decision (replaced at each call, dated), and the rule's verdict in the tag
        ``evolve.online_verdict``: evidence for the reviewer, never a status (the decision log keeps those)."""
        current = self.client.get_model_version(self.name, version)
        offline = (current.description or "").split(ONLINE_HEADING)[0].rstrip()
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        section = (f"{ONLINE_HEADING} (live traffic in `evolve serve`, as of {when})\n\n"
                   "Everything above is offline, on held-back queries. Online evidence never promotes: "
                   "approval stays human.\n\n" + "\n".join(f"- {line}" for line in lines) + f"\n- {verdict}\n")
        room = 7900 - len(section) - 2
        self.client.update_model_version(self.name, version, description=fit(offline, max(room, 200)) + "\n\n"
                                         + section)
        self.client.set_model_version_tag(self.name, version, ONLINE_VERDICT_TAG, verdict[:5000])

    def _log_per_query(self, run_id: str, rows: list[dict], metric: str) -> None:
        """The per-query table (MLflow's table view) and the histogram of the deltas; a plot or table that cannot
        be made (no matplotlib, no pandas) is left out: the JSON artifact holds the same rows."""
        client = self.client
        try:
            client.log_table(run_id, {k: [r[k] for r in rows] for k in rows[0]}, "per_query_table.json")
        except Exception:  # noqa: BLE001 - per_query.json has the rows
            pass
        try:
            import matplotlib.pyplot as plt

            fig = delta_histogram(rows, metric)
            client.log_figure(run_id, fig, "delta_histogram.png")
            plt.close(fig)
        except Exception:  # noqa: BLE001 - a missing plot is not a failed decision
            pass

    def champion_run(self, champion: Evidence, report: GuardReport) -> str:
        """The champion's own run (metrics, config), made the first time its config is measured, so MLflow's
        compare view can put a candidate next to it; returns its id."""
        from mlflow.entities import Metric, Param, RunStatus

        sha = champion.config.sha256()
        found = self.client.search_runs([self.experiment_id], f"tags.`evolve.champion_sha256` = '{sha}'",
                                        max_results=1)
        if found:
            return found[0].info.run_id
        run = self.client.create_run(self.experiment_id, run_name=f"champion-{champion.config.name}",
                                     tags={STATUS: "champion-measured", "evolve.champion_sha256": sha,
                                           "evolve.config_name": champion.config.name,
                                           "evolve.champion_version": str(report.decision.get("champion_version", ""))})
        params = [Param(k, str(v)) for k, v in flatten("", json.loads(champion.config.model_dump_json())).items()]
        metrics = [Metric(metric_key(f"{name}.{k}"), float(v), 0, 0)
                   for name, values in report.champion["sets"].items() for k, v in values.items() if k != "queries"]
        metrics.append(Metric("latency_p95_ms", report.champion["latency_p95_ms"], 0, 0))
        self.client.log_batch(run.info.run_id, params=params[:100], metrics=metrics)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "pipeline").mkdir()
            (Path(tmp) / "pipeline" / "config.yaml").write_text(champion.config.to_yaml(), encoding="utf-8")
            self.client.log_artifacts(run.info.run_id, tmp)
        self.client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED))
        return run.info.run_id

    def set_status(self, version: str, status: str) -> None:
        self.client.set_model_version_tag(self.name, version, STATUS, status)

    def move_alias(self, alias: str, version: str | None) -> None:
        if version is None:
            if self.alias_version(alias) is not None:
                self.client.delete_registered_model_alias(self.name, alias)
        else:
            self.client.set_registered_model_alias(self.name, alias, version)

    # --- reading -----------------------------------------------------------------------------------
    def alias_version(self, alias: str) -> str | None:
        """The version an alias points at; None when the alias or the model does not exist (an unreachable
        server raises: 'no alias' and 'cannot tell' must not look the same)."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException as err:
            if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def version(self, version: str) -> Any:
        return self.client.get_model_version(self.name, version)

    def versions(self, status: str | None = None, since: timedelta | None = None) -> list[Any]:
        found = self.client.search_model_versions(f"name = '{self.name}'")
        cutoff = datetime.now(timezone.utc) - since if since else None
        out = []
        for v in found:
            if status and v.tags.get(STATUS) != status:
                continue
            if cutoff and datetime.fromtimestamp(v.creation_timestamp / 1000, timezone.utc) < cutoff:
                continue
            out.append(v)
        return sorted(out, key=lambda v: int(v.version))

    def config_of(self, version: str) -> PipelineConfig:
        from mlflow.artifacts import download_artifacts

        v = self.version(version)
        with tempfile.TemporaryDirectory() as tmp:
            path = download_artifacts(run_id=v.run_id, artifact_path="pipeline/config.yaml", dst_path=tmp,
                                      tracking_uri=self.tracking_uri)
            return PipelineConfig.from_yaml(Path(path).read_text(encoding="utf-8"))

    def restore_trained_models(self, config: PipelineConfig, version: str | None,
                               store: TrainedModelStore, expected: dict[str, str] | None = None) -> list[str]:
        """Every trained model ``config`` names, available in ``store`` (the project's): those missing are copied
        from ``version``'s artifacts (manifest and weights only) and verified against their ids and against
        ``expected`` (model id -> full sha256: what the decision log recorded for the version; a model it does not
        name is not restored). Returns the ids restored; raises TrainedModelError naming a model that is neither
        in the store nor in the version, or whose artifacts are not the model that was evaluated."""
        from mlflow.artifacts import download_artifacts

        def from_version(model_id: str, scratch: Path) -> Path:
            if version is None:
                raise TrainedModelError(f"trained model {model_id} is not in {store.root}, and the default config "
                                        "has no registry version to restore it from")
            folder = TrainedModelStore.folder_name(model_id)
            try:
                path = download_artifacts(run_id=self.version(version).run_id, dst_path=str(scratch),
                                          artifact_path=f"{TRAINED_ARTIFACTS}/{folder}", tracking_uri=self.tracking_uri)
            except Exception as err:  # noqa: BLE001 - not logged with this version, or MLflow is down
                raise TrainedModelError(f"trained model {model_id} (named by version {version}'s config) is not "
                                        f"in {store.root} and could not be restored from MLflow: "
                                        f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
            return Path(path).parent

        return store.ensure(list(trained_models_of(config, verify=False)), from_version, expected)

    def report_of(self, version: str) -> dict[str, Any]:
        from mlflow.artifacts import download_artifacts

        v = self.version(version)
        with tempfile.TemporaryDirectory() as tmp:
            path = download_artifacts(run_id=v.run_id, artifact_path="guardrail_report.json", dst_path=tmp,
                                      tracking_uri=self.tracking_uri)
            return json.loads(Path(path).read_text())


TRAINED_TAG = "evolve.trained_models"
TRAINED_ARTIFACTS = "trained_models"
ONLINE_HEADING = "## Online evidence"
ONLINE_VERDICT_TAG = "evolve.online_verdict"


def fit(page: str, limit: int = 7900) -> str:
    """The description within MLflow's tag length (8000): a long config diff is cut, saying where the rest is."""
    return page if len(page) <= limit else page[:limit - 80] + "\n```\n\n(cut: see the run's config_diff.txt)\n"


def comparison_metrics(report: GuardReport) -> list[Any]:
    """The champion's metrics (``champion.<set>.<metric>``) and the deltas (``delta.<set>.<metric>``), so the runs
    table and the compare view show them next to the candidate's."""
    from mlflow.entities import Metric

    out = []
    for name, values in report.champion.get("sets", {}).items():
        mine = report.candidate.get("sets", {}).get(name, {})
        for k, v in values.items():
            if k == "queries" or k.endswith("_judged") or not isinstance(v, (int, float)):
                continue
            out.append(Metric(metric_key(f"champion.{name}.{k}"), float(v), 0, 0))
            if isinstance(mine.get(k), (int, float)):
                out.append(Metric(metric_key(f"delta.{name}.{k}"), float(mine[k]) - float(v), 0, 0))
    if isinstance(report.champion.get("latency_p95_ms"), (int, float)):
        out.append(Metric("champion.latency_p95_ms", float(report.champion["latency_p95_ms"]), 0, 0))
    return out


def trained_models_of(config: PipelineConfig, catalog: ModelCatalog | None = None,
                      verify: bool = True) -> dict[str, str]:
    """Trained model id -> sha256 of its weights, for every trained model ``config`` needs: those it names and the
    trained bases they were trained from, read from ``catalog`` (default: this process's). ``verify=False``: only
    the ids the config names, with no hash, nothing read."""
    ids = [m for m in config.models() if is_trained(m)]
    if not verify:
        return dict.fromkeys(ids, "")
    store = catalog_or_env(catalog).trained()
    return {model_id: model.sha256 for model_id, model in store.with_bases(ids)[0].items()}
