"""One project's decision state: the decision log, the champion file it is materialised into, the registry.

The champion is what the decision log says (:func:`guardrails.ledger.champion_history`), never what
the MLflow alias says. ``champion.yaml`` is the log's champion written out for `evolve serve` and the
loop: it carries the version, the config's sha256 and the hash of the decision in a header, and every
reader checks it against the log (:meth:`Project.champion`), so a hand-edited or swapped file is refused.
The registry is opened lazily: serving the champion never needs MLflow.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardrails.ledger import ChampionRecord, DecisionLog, LogError, Row, champion_history, pending_intents
from guardrails.mirror import sync_mirror
from guardrails.policy import DEFAULT_POLICY
from pipelines import ModelCatalog, PipelineConfig, load_config

PACKAGED_DEFAULT = Path(__file__).resolve().parent.parent / "pipelines" / "configs" / "default.yaml"
HEADER = re.compile(r"^# evolve champion: version (\S+), config sha256 ([0-9a-f]{64}), decision ([0-9a-f]{64})$",
                    re.MULTILINE)


class DecisionError(ValueError):
    """A decision that cannot be made, or a champion that does not match its audited decision."""


@dataclass
class Project:
    """Where the decisions of one project live."""

    root: Path
    registry_source: Any
    """A PipelineRegistry, or a function that opens one (called at the first use: MLflow may be down)."""
    log: DecisionLog
    default_config: Path = PACKAGED_DEFAULT
    """What serves (and what candidates must beat) before any approval."""
    policy_path: Path = DEFAULT_POLICY
    """The project's current policy: approvals refuse candidates judged under another (unless told)."""
    catalog: ModelCatalog = field(default_factory=ModelCatalog.from_env)
    """Where the model names of its configs resolve (its trained models); default: this process's, from its
    variables when the project is opened."""
    _registry: Any = field(default=None, init=False, repr=False)

    @property
    def registry(self) -> Any:
        if self._registry is None:
            source = self.registry_source
            self._registry = source() if callable(source) else source
        return self._registry

    @property
    def champion_file(self) -> Path:
        return self.root / "champion.yaml"

    def champion(self) -> tuple[PipelineConfig, ChampionRecord]:
        """The audited champion and its config, after checking ``champion.yaml`` against the log.

        Completes an interrupted decision first (see :func:`recover`).
        """
        recover(self)
        record = champion_history(self.log.rows())[-1]
        if record.version is None:
            if self.champion_file.exists():
                raise DecisionError(f"{self.champion_file} exists but no approval in the decision log made it: "
                                    "`evolve audit --repair` removes it (the champion is the default config "
                                    f"{self.default_config.name} until someone runs `evolve approve`)")
            return load_config(self.default_config), record
        if not self.champion_file.exists():
            raise DecisionError(f"{self.champion_file} is missing; the audited champion is version {record.version}: "
                                "`evolve audit --repair` writes it back from the decision log")
        config = load_config(self.champion_file)
        if config.sha256() != record.config_sha256:
            raise DecisionError(f"{self.champion_file} has config sha256 {config.sha256()} but the audited champion "
                                f"(version {record.version}) has {record.config_sha256}: refusing to use it; "
                                "`evolve audit --repair` writes the audited config back")
        return config, record

    def champion_config(self) -> PipelineConfig:
        return self.champion()[0]


def write_champion_file(project: Project, record: ChampionRecord) -> None:
    """Materialise the log's champion (atomically: temp file, then rename); the default config: no file."""
    path = project.champion_file
    if record.version is None:
        path.unlink(missing_ok=True)
        return
    config = PipelineConfig.model_validate(record.config)
    if config.sha256() != record.config_sha256:
        raise LogError(f"the decision for version {record.version} carries a config whose sha256 "
                       f"{config.sha256()} is not its recorded {record.config_sha256}")
    text = (f"# evolve champion: version {record.version}, config sha256 {record.config_sha256}, "
            f"decision {record.decision}\n"
            "# written from the decision log (.evolve/audit.duckdb); edits are refused: "
            "`evolve audit --repair` rewrites it\n" + config.to_yaml())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def materialise(project: Project, rows: list[Row] | None = None) -> list[str]:
    """Write champion.yaml and the MLflow mirror from the log; returns mirror problems (not fatal)."""
    rows = project.log.rows() if rows is None else rows
    write_champion_file(project, champion_history(rows)[-1])
    return sync_mirror(project, rows)


def recover(project: Project) -> list[str]:
    """Complete every decision whose intent was written but not its commit (a crash or a lock); one line each."""
    rows = project.log.rows()
    done = []
    for intent in pending_intents(rows):
        problems = materialise(project, rows)
        project.log.append(intent.action, "commit", decision_id=intent.decision_id, actor=intent.actor,
                           model=intent.model, version=intent.version, previous_version=intent.previous_version,
                           config_sha256=intent.config_sha256, reason="completed after an interruption",
                           details={"completed_by": "recovery", "mirror": problems})
        done.append(f"completed the interrupted {intent.action} of "
                    f"{'version ' + intent.version if intent.version else 'the default config'} "
                    f"(intent written {intent.ts} by {intent.actor or intent.os_user})")
    return done


def champion_file_header(path: Path) -> dict[str, str] | None:
    """version, config_sha256 and decision from a champion file's header (None without one)."""
    if not path.exists():
        return None
    found = HEADER.search(path.read_text(encoding="utf-8"))
    return dict(zip(("version", "config_sha256", "decision"), found.groups())) if found else None
