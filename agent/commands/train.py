"""`evolve train`: train a query adapter, an embedder or a cross-encoder reranker from the project's own data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from agent.app import ProjectDir, app, at_least, console, fail, load_pipeline, project_components
from agent.paths import ProjectPaths
from agent.project import TrackingOption

KIND_HELP = ("adapter: a linear map on a frozen model's query vectors (any embedder, seconds, no re-embedding); "
             "embedder: fine-tune a sentence-transformers model (the corpus is embedded again); "
             "reranker: a cross-encoder from transformer weights (best started from a trained embedder); "
             "memory: the training questions' vectors under a frozen embedder with their answers, a reranker that "
             "lifts what answered close questions before (seconds, nothing else moves)")


@app.command("train")
def train_command(
    kind: Annotated[str, typer.Option(help=KIND_HELP)],
    base: Annotated[Optional[str], typer.Option(help="Model to start from: a registry name, a local directory or a "
                                                     "trained:... id (default: the champion's dense model).")] = None,
    train_split: Annotated[Optional[list[Path]], typer.Option(
        "--train-split", help="Evaluation set whose 'train' split trains (repeatable); its other splits are "
                              "guarded.")] = None,
    synthesized: Annotated[Optional[list[Path]], typer.Option(
        help="Set written by `evolve evalset synthesize` (repeatable): its judged questions train.")] = None,
    feedback: Annotated[Optional[Path], typer.Option(
        help="Corpus (evaluation set folder or corpus.jsonl) the served feedback is about: its ratings train "
             "(bad with a marked document: that document against what was returned; good: a positive).")] = None,
    guard: Annotated[Optional[list[Path]], typer.Option(
        help="Evaluation set whose queries must never train (repeatable; every split but 'train' of every set "
             "named anywhere here is guarded too).")] = None,
    negatives_from: Annotated[Optional[Path], typer.Option(
        help="Pipeline config that mines hard negatives (default: the champion).")] = None,
    epochs: Annotated[Optional[float], typer.Option(
        help="Passes over the data (default: the kind's); with a validation share, the most that are tried.")] = None,
    validation_share: Annotated[Optional[float], typer.Option(
        help="Share of examples held out to choose the number of epochs: only examples whose positive documents "
             "no other example has, so the choice rewards what carries over to unseen documents; the final model "
             "then trains on everything. 0 turns it off (default: 0.2 for adapters, 0 for kinds that cannot "
             "score themselves cheaply).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Upper bound on optimisation steps.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Queries per step (default: the kind's).")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Default: the kind's.")] = None,
    negatives: Annotated[Optional[int], typer.Option(help="Hard negatives per query (default: the kind's).")] = None,
    max_seq_length: Annotated[int, typer.Option(help="Tokens per text (embedder, reranker).")] = 256,
    rank: Annotated[Optional[int], typer.Option(help="Adapter: low-rank update of this rank (default: full).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the batch order and initialisation.")] = 0,
    time_limit: Annotated[Optional[str], typer.Option(
        help="Stop after this long (e.g. 20m) at a checkpoint; the same command goes on from it.")] = None,
    tracking_uri: TrackingOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Train one of evolve's own models from training splits, synthesized questions and feedback.

    Queries of held-back and test splits never train: every split but 'train' of each set named here (and --guard)
    is matched by id and by text and dropped, and the run is refused if one slips through. Hard negatives are the
    champion's top documents that are not positives. The model is stored content-addressed under
    .evolve/models/, logged to MLflow (experiment evolve-training), and named by an id such as
    trained:adapter-1a2b3c4d5e6f that configs and search spaces use like any model. A run stopped by --time-limit or
    Ctrl-C resumes from its last checkpoint when the same command runs again.
    """
    from agent.training import TrainingSources, gather, mine
    from evalsets import EvalSetError
    from experiments import parse_duration
    from experiments.training import (TRAINERS, LeakError, TrainingError, TrainSettings, log_trained_model,
                                      train_model)

    if kind not in TRAINERS.kinds():
        fail(f"unknown --kind {kind!r}: one of {', '.join(TRAINERS.kinds())}")
    if validation_share is not None and not 0 <= validation_share <= 0.5:
        fail(f"--validation-share must be between 0 and 0.5, got {validation_share}")
    for value, minimum, option in ((epochs, 0.001, "--epochs"), (max_steps, 1, "--max-steps"),
                                   (batch_size, 1, "--batch-size"), (negatives, 0, "--negatives"),
                                   (rank, 1, "--rank"), (max_seq_length, 16, "--max-seq-length")):
        at_least(value, minimum, option)
    paths = ProjectPaths.of(project_dir)
    champion = _champion(project_dir)
    miner = load_pipeline(negatives_from, paths.catalog) if negatives_from else champion
    base = base or _default_base(kind, champion, paths.catalog)
    sources = TrainingSources(list(train_split or []), list(synthesized or []), feedback, list(guard or []))
    if not sources:
        fail("no training data: give --train-split, --synthesized and/or --feedback")
    try:
        data = gather(project_dir, sources)
    except (EvalSetError, LeakError) as err:
        fail(str(err))
    console.print(f"training data: {len(data.examples)} examples {data.summary()['per_source']}, "
                  f"{data.dropped_leaks} dropped as evaluation queries"
                  + (f" ({'; '.join(data.notes)})" if data.notes else ""), highlight=False)

    from agent.progress import stage_progress

    components = project_components(project_dir)
    wanted = negatives if negatives is not None else TRAINERS.get(kind).defaults.negatives
    with stage_progress(console) as progress:
        if wanted:
            mine(data, miner, components, wanted, progress)
        settings = TrainSettings(epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                                 learning_rate=learning_rate, negatives=negatives, max_seq_length=max_seq_length,
                                 rank=rank, seed=seed, validation_share=validation_share)
        deadline = time.time() + parse_duration(time_limit) if time_limit else None
        try:
            outcome = train_model(kind, base, data, settings, components, deadline=deadline,
                                  progress=lambda done, total: progress(f"training {kind} from {base}", done, total))
        except (TrainingError, ValueError, KeyError) as err:
            fail(str(err.args[0] if isinstance(err, KeyError) and err.args else err))
    report = outcome.report
    if outcome.model is None:
        console.print(f"[yellow]stopped at step {report['steps']} of {report['planned_steps']}[/] (checkpoint saved "
                      f"after {report['seconds']} s of training); run the same command again to go on")
        raise typer.Exit(3)
    model = outcome.model
    run_id = log_trained_model(model, paths.tracking_uri(tracking_uri), paths.mlflow_artifacts)
    console.print(_summary(model, report, run_id))
    console.print(f"use it in a config or a search space as [bold]{model.model_id}[/]"
                  + (f" (dense.model, or dense_models in a space; passages keep {model.base}'s cached vectors)"
                     if kind == "adapter" else " (dense.model / dense_models)" if kind == "embedder"
                     else " (reranker: {kind: memory, model: ..., blend: 0.3}; its threshold is calibrated)"
                     if kind == "memory"
                     else " (reranker: {kind: cross-encoder, model: ...})"), highlight=False)


def _champion(project_dir: Path) -> Any:
    from agent.project import open_project, say_recovered

    project = open_project(project_dir, None)
    say_recovered(project)
    return project.champion_config()


def _default_base(kind: str, champion: Any, catalog: Any) -> str:
    """The champion's dense model; for a reranker, the packaged MiniLM when that model has no transformer weights."""
    model = champion.dense.model if champion.dense else "all-MiniLM-L6-v2"
    if kind == "reranker":
        from pipelines.embedders import resolve_model

        return model if resolve_model(model, catalog).loader == "sentence-transformers" else "all-MiniLM-L6-v2"
    return model


def _selection(validation: dict[str, Any] | None) -> str:
    if not validation:
        return "not chosen (no validation share)"
    if "skipped" in validation:
        return f"not chosen: {validation['skipped']}"
    return (f"{validation['epochs']:g}: nDCG@10 on {validation['examples']} held-out examples "
            f"{validation['before']:.3f} before training, {validation['best']:.3f} at best "
            f"(curve {', '.join(f'{e:g}: {v:.3f}' for e, v in validation['curve'])})")


def _summary(model: Any, report: dict[str, Any], run_id: str) -> Table:
    data = model.manifest.get("data", {})
    table = Table(title=f"trained {model.model_id}", show_header=False)
    rows = [("base model", f"{model.base} (licence {model.licence})"),
            ("examples", f"{data.get('examples')} {data.get('per_source')}, {data.get('negatives')} hard negatives"),
            ("steps", f"{report.get('steps')} in {report.get('seconds')} s on {report.get('device')}"
                      + (" (reused: trained before with the same inputs)" if report.get("reused") else "")),
            ("loss", f"{report.get('loss_first')} -> {report.get('loss_last')} (first and last tenth of steps)"),
            ("epochs chosen", _selection(report.get("validation"))),
            ("peak memory", f"{report.get('peak_memory_mb')} MB"),
            ("stored", str(model.folder)), ("MLflow run", run_id)]
    for name, value in rows:
        table.add_row(name, escape(str(value)))
    return table
