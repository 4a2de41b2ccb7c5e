"""`evolve tune` (start or resume a study) and `evolve worker` (join one from another process or node)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from agent.app import ProjectDir, app, console, err_console, fail, metrics_table, safe_name
from agent.paths import ProjectPaths

if TYPE_CHECKING:
    import optuna
    from rich.progress import TaskID

    from experiments import StudyRunner


class StudyDisplay:
    """Live line under the study: trials done of target, best so far, ETA (an Optuna callback)."""

    def __init__(self, runner: StudyRunner, target: int | None, timeout: float | None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.runner, self.target, self.timeout = runner, target, timeout
        self.started = time.monotonic()
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[best]}"), TimeElapsedColumn(), TextColumn("eta"),
                                 TimeRemainingColumn(), console=console)
        self.task = self.progress.add_task(runner.spec.study_name, total=target, completed=runner.finished_count(),
                                           best=self._best())
        self.stage_task: TaskID | None = None
        self.stage_name = ""

    def _best(self) -> str:
        complete = [t for t in self.runner.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        if not complete:
            return "best: -"
        best = max(complete, key=lambda t: t.values[0])
        return f"best {self.runner.spec.metric}={best.values[0]:.4f} (trial {best.number})"

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._drop_stage()  # an abandoned trial leaves its stage unfinished
        self.progress.update(self.task, completed=self.runner.finished_count(), best=self._best())
        note = trial.state.name.lower()
        if trial.values:
            note += f" {trial.values[0]:.4f}"
        self.progress.console.print(f"  trial {trial.number}: {note}  "
                                    f"[dim]{_describe(trial.user_attrs.get('config', {}))}[/]")

    def stage(self, stage: str, done: int, total: int) -> None:
        """The running trial's long stage (a cold embedding) as a second bar, gone when it completes."""
        if total == 0:
            return
        if self.stage_task is None or stage != self.stage_name:
            self._drop_stage()
            self.stage_task = self.progress.add_task(f"  {stage}", total=total, best="")
            self.stage_name = stage
        self.progress.update(self.stage_task, completed=done, total=total)
        if done >= total:
            self._drop_stage()

    def _drop_stage(self) -> None:
        if self.stage_task is not None:
            self.progress.remove_task(self.stage_task)
            self.stage_task = None

    def __enter__(self) -> "StudyDisplay":
        self.progress.start()
        self.runner.stage_progress = self.stage
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.stage_progress = None
        self.progress.stop()


def _describe(config: dict[str, Any]) -> str:
    parts = [config.get("chunking", {}).get("kind", "?")]
    if config.get("dense"):
        parts.append(config["dense"]["model"])
    if config.get("lexical"):
        parts.append(f"bm25:{config['lexical']['tokenizer']}")
    if config.get("fusion", {}).get("kind") not in (None, "none"):
        parts.append(config["fusion"]["kind"])
    if config.get("reranker", {}).get("kind") not in (None, "none"):
        parts.append(f"rerank:{config['reranker']['model']}")
    return " + ".join(parts)


def _default_study_name(evalset: Path, space_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{evalset.resolve().name}-{space_name}")


@contextmanager
def storage_errors(storage: str) -> Iterator[None]:
    """An Optuna storage that cannot be opened (its database down, a wrong URL): one line, password hidden."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        yield
    except (OperationalError, ArgumentError) as err:
        cause = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        shown = re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", storage)  # the password stays out of the message
        fail(f"cannot open the Optuna storage {shown}: {cause}")


def _print_summary(summary: dict[str, Any], runner: StudyRunner) -> None:
    console.print(metrics_table(f"best config on held-back queries ({summary['heldout_split']}, "
                                f"{summary['heldout_queries']} queries)", [("best", summary["heldout"])]))
    table = Table(title=f"study {summary['study']}")
    table.add_column("fact")
    table.add_column("value", justify="right")
    for key in ("trials_finished", "trials_pruned", "trials_failed", "tune_queries", "best_tune_value",
                "embedding_cache_fraction", "embeddings_cached", "embeddings_computed", "trial_seconds_total"):
        value = summary[key]
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"best config: {runner.folder / 'best_config.yaml'}\nplots and per-trial results: {runner.folder}\n"
                  f"MLflow: {runner.tracking_uri} (experiment 'evolve-studies', run '{summary['study']}'); "
                  f"browse with `mlflow ui --backend-store-uri {runner.tracking_uri}`")


def _run_with_display(runner: StudyRunner, trials: int | None, seconds: float | None) -> None:
    target = trials or runner.spec.n_trials
    with StudyDisplay(runner, target, seconds) as display:
        runner.run(n_trials=target, timeout=seconds, callbacks=[display])


@app.command("tune")
def tune_command(
    evalset: Annotated[Path, typer.Option(help="Evaluation set folder; tunes on its train split if it has one, "
                                               "else on a seeded 70% of its queries.")],
    space: Annotated[Path, typer.Option(help="Search space YAML (see experiments/spaces/).")],
    trials: Annotated[Optional[int], typer.Option(help="Finished trials the study should hold in the end.")] = None,
    timeout: Annotated[Optional[str], typer.Option(help="Stop after this long, e.g. 30m, 2h.")] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name (default: <evalset>-<space name>). "
                                                      "Running the same command again resumes it.")] = None,
    storage: Annotated[Optional[str], typer.Option(envvar="EVOLVE_OPTUNA_STORAGE",
                                                   help="Optuna storage URL; default SQLite in the project. "
                                                        "postgresql://... lets `evolve worker`s join.")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(envvar="MLFLOW_TRACKING_URI",
                                                        help="MLflow tracking URI; default SQLite in mlruns/.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampler and the query split.")] = 0,
    multi_objective: Annotated[bool, typer.Option("--multi-objective",
                                                  help="Optimise quality and search latency together.")] = False,
    no_prune: Annotated[bool, typer.Option("--no-prune", help="Score every trial on all tuning queries.")] = False,
    max_queries: Annotated[Optional[int], typer.Option(help="Tune on at most this many queries (seeded).")] = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Run (or resume) an Optuna study over a search space, logging every trial to MLflow."""
    from evalsets import EvalSetError
    from experiments import parse_duration
    from experiments import SpaceError, load_space
    from experiments import StudyRunner, StudySpec

    if trials is None and timeout is None:
        fail("give --trials N, --timeout DURATION, or both")
    try:
        seconds = parse_duration(timeout) if timeout else None
        search_space = load_space(space, ProjectPaths.of(project_dir).catalog)
    except (ValueError, SpaceError) as err:
        fail(str(err))
    name = safe_name(study, "study name") if study else _default_study_name(evalset, search_space.name)
    spec = StudySpec(study_name=name, evalset=str(evalset.resolve()), space=search_space.model_dump(mode="json"),
                     metric=search_space.metric, seed=seed, n_trials=trials, multi_objective=multi_objective,
                     prune=not no_prune, max_tune_queries=max_queries)
    storage = ProjectPaths.of(project_dir).optuna_url(storage)
    try:
        with storage_errors(storage):
            runner = StudyRunner(spec, storage, ProjectPaths.of(project_dir).study_places(tracking_uri))
    except EvalSetError as err:
        fail(str(err))
    recovered = runner.sync_mlflow()
    already = runner.finished_count()
    console.print(f"study [bold]{name}[/]: {already} finished trials in storage"
                  + (f", {recovered} logged to MLflow now" if recovered else "")
                  + f"; tuning on {len(runner.query_order)} queries ({runner.tune.split}), "
                    f"holding back {len(runner.heldout.queries)} ({runner.heldout.split})")
    _run_with_display(runner, trials, seconds)
    _print_summary(runner.finish(), runner)


@app.command("worker")
def worker_command(
    storage: Annotated[str, typer.Option(envvar="EVOLVE_OPTUNA_STORAGE", help="Shared Optuna storage URL.")],
    study: Annotated[Optional[str], typer.Option(help="Name of an existing study (created by `evolve tune`).")] = None,
    follow: Annotated[bool, typer.Option("--follow", help="No --study: keep joining whichever study in the storage "
                                                         "still wants trials (the loop of `evolve start`), forever.")] = False,
    evalset: Annotated[Optional[Path], typer.Option(help="Where the study's evaluation set is on this machine, "
                                                         "if not at the same path.")] = None,
    trials: Annotated[Optional[int], typer.Option(help="Override the study's trial target.")] = None,
    timeout: Annotated[Optional[str], typer.Option(help="Stop this worker after this long.")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(envvar="MLFLOW_TRACKING_URI")] = None,
    wait: Annotated[str, typer.Option(help="Wait this long for the study to be created (e.g. 10m).")] = "0s",
    poll: Annotated[str, typer.Option(help="With --follow: how long to idle before looking for an open study again "
                                           "(e.g. 5s, 1m).")] = "30s",
    project_dir: ProjectDir = Path("."),
) -> None:
    """Pull trials of a shared study until it holds its target (or, with --follow, of every open study).

    With --follow (what the cluster's worker service runs), join each open study of the storage in turn.
    """
    from evalsets import EvalSetError
    from experiments import parse_duration
    from experiments import StudyRunner

    if follow == (study is not None):
        fail("give either --study NAME or --follow")
    if follow:
        try:
            poll_seconds = parse_duration(poll)
        except ValueError as err:
            fail(f"--poll: {err}")
        if poll_seconds <= 0:
            fail(f"--poll must be longer than 0s (got {poll!r}): the worker would query the storage without pause")
        with storage_errors(storage):
            _follow(storage, project_dir, tracking_uri, evalset, poll_seconds)
        return
    safe_name(study, "study name")  # it names the study's folder under .evolve/studies
    try:
        seconds = parse_duration(timeout) if timeout else None
        with storage_errors(storage):
            _fetch_models(study, storage, project_dir, tracking_uri, parse_duration(wait))
            runner = StudyRunner.from_storage(study, storage, ProjectPaths.of(project_dir).study_places(tracking_uri),
                                              str(evalset.resolve()) if evalset else None,
                                              wait_seconds=parse_duration(wait), tracking_uri=tracking_uri,
                                              worker_seed=os.getpid())
    except (KeyError, ValueError, EvalSetError) as err:
        fail(str(err.args[0]) if isinstance(err, KeyError) else str(err))
    console.print(f"worker {os.getpid()} joined study [bold]{study}[/] ({runner.finished_count()} finished)")
    _run_with_display(runner, trials, seconds)
    console.print(f"worker {os.getpid()} done: study holds {runner.finished_count()} finished trials")


def _fetch_models(study: str, storage: str, project_dir: Path, tracking_uri: Optional[str],
                  wait_seconds: float = 0.0) -> None:
    """The trained models a study's space names, fetched from their MLflow training runs when this node lacks them
    (a worker on another node of the cluster); KeyError (the study is skipped or refused) when they cannot be had."""
    from experiments import stored_spec
    from experiments.training import fetch_trained_models, trained_ids
    from pipelines import TrainedModelError

    ids = trained_ids(stored_spec(study, storage, wait_seconds).get("space"))
    if not ids:
        return
    try:
        paths = ProjectPaths.of(project_dir)
        fetched = fetch_trained_models(ids, paths.tracking_uri(tracking_uri), paths.catalog.trained())
    except TrainedModelError as err:
        raise KeyError(f"study {study}: {err}") from None
    for model_id in fetched:
        console.print(f"fetched {model_id} from its MLflow training run")


def _follow(storage: str, project_dir: Path, tracking_uri: Optional[str], evalset: Optional[Path],
            poll_seconds: float = 30.0) -> None:
    """Join open studies (newest first) until killed; idle between them."""
    import time

    from evalsets import EvalSetError
    from experiments import StudyRunner, open_studies

    console.print(f"worker {os.getpid()} following {storage.split('@')[-1]}")
    while True:
        for name in open_studies(storage):
            try:
                _fetch_models(name, storage, project_dir, tracking_uri)
                runner = StudyRunner.from_storage(name, storage, ProjectPaths.of(project_dir).study_places(tracking_uri),
                                                  str(evalset.resolve()) if evalset else None,
                                                  worker_seed=os.getpid())
            except (KeyError, EvalSetError) as err:
                err_console.print(f"skipping study {name}: {err}")
                continue
            console.print(f"worker {os.getpid()} joined study [bold]{name}[/] ({runner.finished_count()} finished)")
            runner.run()
            break
        else:
            time.sleep(poll_seconds)
