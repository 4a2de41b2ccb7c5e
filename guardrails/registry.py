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
from pipelines import PipelineConfig, TrainedModelError, TrainedModelStore, is_trained

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
                        study: str | None = None, hashes: dict[str, str] | None = None) -> tuple[str, str | None]:
        """Log the decision run; register a version with alias `candidate` when the report passed.

        ``hashes`` (config and policy sha256) go on the run and the version as tags: a mirror of the
        decision log, for people browsing MLflow; evolve itself trusts only the log.
        """
        from mlflow.entities import Metric, Param, RunStatus

        status = "candidate" if report.passed else "rejected"
        hashes = hashes or {}
        trained = trained_models_of(config)
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
        self.client.log_batch(run_id, params=params[:100], metrics=metrics)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "pipeline").mkdir()
            (folder / "pipeline" / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
            (folder / "guardrail_report.json").write_text(json.dumps(report.to_dict(), indent=2, default=str))
            (folder / "guardrail_report.md").write_text(report.to_markdown())
            (folder / "evaluation").mkdir()
            for name, rows in per_query.items():
                with (folder / "evaluation" / f"{name}.jsonl").open("w", encoding="utf-8") as out:
                    for row in rows:
                        out.write(json_line(row))
            self.client.log_artifacts(run_id, str(folder))
        if report.passed:  # a version that may become the champion keeps its own copy of every trained model
            store = TrainedModelStore()
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
            description=f"{config.name}: passed all {len(report.rules)} guardrail rules")
        self.client.set_registered_model_alias(self.name, "candidate", version.version)
        return run_id, str(version.version)

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
                               store: TrainedModelStore | None = None,
                               expected: dict[str, str] | None = None) -> list[str]:
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

        store = store or TrainedModelStore()
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


def trained_models_of(config: PipelineConfig, verify: bool = True) -> dict[str, str]:
    """Trained model id -> sha256 of its weights, for every trained model ``config`` needs: those it names and the
    trained bases they were trained from. ``verify=False``: only the ids the config names, with no hash, nothing
    read."""
    ids = [m for m in config.models() if is_trained(m)]
    if not verify:
        return dict.fromkeys(ids, "")
    return {model_id: model.sha256 for model_id, model in TrainedModelStore().with_bases(ids)[0].items()}
