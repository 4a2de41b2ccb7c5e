"""The trainer interface: one kind of model evolve can train, its settings, and the loop every kind shares.

A kind is one module in this package: a :class:`Trainer` subclass with ``kind`` set, registered with
``@TRAINERS.register``. :meth:`Trainer.step` does one optimisation step on one batch; :func:`run_steps` around it
gives every kind the same behaviour: a fixed seed and batch order, a progress bar, a checkpoint every
``checkpoint_every`` steps (a killed run resumes where it stopped, with the same batches), a step bound, and a
deadline checked between steps.

A checkpoint is data, never code: it is read only from inside its run's work directory (the name ``state.json``
gives is resolved, links included, and refused when it leads elsewhere), and torch checkpoints load with
``weights_only=True`` (tensors and plain containers; a pickled object is refused before anything of it runs).
Either refusal is a :class:`CheckpointError` saying what to delete to train from the start.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from experiments.training.data import TrainingData, TrainingExample
from pipelines import Registry


@dataclass(frozen=True)
class KindDefaults:
    """What a kind trains with where its :class:`TrainSettings` leave a setting to it (None)."""

    batch_size: int = 16
    learning_rate: float = 2e-5
    negatives: int = 1
    epochs: float = 1.0
    validation_share: float = 0.0
    """> 0 only for kinds that implement :meth:`Trainer.validate` cheaply enough to run after every epoch."""


class TrainSettings(BaseModel):
    """Hyper-parameters of one training run (all logged; with the data and the seed they reproduce the model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: float | None = Field(None, gt=0, le=1000, description="passes over the examples (None: the kind's "
                                                                   "default; a fraction stops early)")
    max_steps: int | None = Field(None, ge=1, description="upper bound on optimisation steps (CPU budgets)")
    batch_size: int | None = Field(None, ge=1, le=4096, description="queries per step (None: the kind's default)")
    learning_rate: float | None = Field(None, gt=0, lt=1, description="None: the kind's default")
    negatives: int | None = Field(None, ge=0, le=64, description="hard negatives per query (None: kind's default)")
    max_seq_length: int = Field(256, ge=16, le=8192, description="tokens per text (transformer kinds)")
    rank: int | None = Field(None, ge=1, le=4096, description="adapter: low-rank update I + AB; None = full matrix")
    temperature: float = Field(0.05, gt=0, le=1, description="softmax temperature of the ranking loss")
    seed: int = 0
    validation_share: float | None = Field(None, ge=0, le=0.5, description=(
        "share of examples held out (only those whose positives no other example has) to choose the number of "
        "epochs, before the final model trains on everything; 0: none; None: the kind's default (kinds that can "
        "score themselves cheaply)"))
    checkpoint_every: int = Field(25, ge=1, description="steps between resumable checkpoints")

    def resolved(self, trainer: "Trainer") -> "TrainSettings":
        """These settings with the kind's defaults filled in (what the manifest records)."""
        defaults = asdict(trainer.defaults)
        return self.model_copy(update={k: v for k, v in defaults.items() if getattr(self, k) is None})


Progress = Callable[[int, int], None]
"""(steps done, steps in total)."""


class CheckpointError(ValueError):
    """A checkpoint evolve will not read: outside its run's work directory, or holding more than weights."""


class Trainer(ABC):
    """Trains one kind of model from :class:`TrainingData` and a base model, into a folder of weights.

    The contract of a kind: :meth:`prepare` loads the base and builds the trainable state (resuming from
    :meth:`load_checkpoint` when one exists); :meth:`step` runs one batch and returns its loss; :meth:`save_checkpoint`
    and :meth:`load_checkpoint` round-trip everything :meth:`step` changes; :meth:`export` writes the final weights in
    the format the kind's loader reads. Nothing here may download: bases are registry models or local folders.
    """

    kind: ClassVar[str]
    defaults: ClassVar[KindDefaults] = KindDefaults()
    recipe: ClassVar[int] = 1
    """Raised when the kind's training changes, so a finished run of the old recipe is not reused for the new."""

    def __init__(self, base: str, data: TrainingData, settings: TrainSettings, components: Any):
        self.base = base
        self.data = data
        self.settings = settings.resolved(self)
        self.components = components
        """A ``pipelines.Components``: base embeddings come from (and go to) the embedding cache."""

    @abstractmethod
    def prepare(self) -> None:
        """Load the base model and build the trainable state and optimiser."""

    @abstractmethod
    def step(self, batch: list[TrainingExample], rng: random.Random) -> float:
        """One optimisation step on ``batch``; ``rng`` (seeded, restored on resume) for any sampling."""

    @abstractmethod
    def save_checkpoint(self, path: Path) -> None: ...

    @abstractmethod
    def load_checkpoint(self, path: Path) -> None: ...

    @abstractmethod
    def export(self, folder: Path) -> None:
        """Write the trained weights into ``folder`` (created empty by the caller)."""

    def validate(self, examples: list[TrainingExample]) -> float:
        """nDCG@10 of the model as it stands on held-out ``examples`` (after :meth:`prepare`); kinds that cannot
        score themselves cheaply leave this out and train for their set number of epochs."""
        raise NotImplementedError(f"{self.kind} models do not score a validation split")


class TransformerTrainer(Trainer):
    """A kind that trains a whole transformer (``self.model``) with AdamW and the warm-up schedule: the optimiser
    step and the checkpoint (model, optimiser and schedule state) are the same for every such kind."""

    model: Any
    optimizer: Any
    scheduler: Any

    fresh: frozenset[str] = frozenset()
    """Names of freshly initialised parameters (a new head), trained at ``head_learning_rate``: at the body's rate
    a random head barely moves in the few hundred steps a CPU affords."""
    head_learning_rate: ClassVar[float] = 1e-3

    def start_optimiser(self) -> None:
        import torch

        named = list(self.model.named_parameters())
        groups = [{"params": [p for n, p in named if n not in self.fresh], "lr": self.settings.learning_rate}]
        if self.fresh:
            groups.append({"params": [p for n, p in named if n in self.fresh], "lr": self.head_learning_rate})
        self.optimizer = torch.optim.AdamW(groups, lr=self.settings.learning_rate)
        self.scheduler = warmup_then_linear(self.optimizer, len(batches(self.data.examples, self.settings)))
        self.model.train()

    def optimise(self, loss: Any) -> float:
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.item())

    def save_checkpoint(self, path: Path) -> None:
        torch_save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict()}, path)

    def load_checkpoint(self, path: Path) -> None:
        state = torch_load(path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


TRAINERS: Registry[Trainer] = Registry("trainable model kind", lambda cls: cls.kind)


def batches(examples: list[TrainingExample], settings: TrainSettings) -> list[list[TrainingExample]]:
    """The run's batches, fixed by the seed: each epoch a fresh shuffle, cut into batches (the last may be short)."""
    size = settings.batch_size or 16
    per_epoch = max(1, math.ceil(len(examples) / size))
    total = max(1, math.ceil(per_epoch * (settings.epochs or 1.0)))
    if settings.max_steps:
        total = min(total, settings.max_steps)
    rng = random.Random(settings.seed)
    out: list[list[TrainingExample]] = []
    while len(out) < total:
        order = list(examples)
        rng.shuffle(order)
        out += [order[i:i + size] for i in range(0, len(order), size)]
    return out[:total]


STATE = "state.json"
CHECKPOINT = "checkpoint"


def run_steps(trainer: Trainer, workdir: Path, deadline: float | None = None, progress: Progress | None = None,
              validation: list[TrainingExample] | None = None) -> dict[str, Any]:
    """Trains until every batch is done or the deadline passes (then the checkpoint is saved and ``finished`` is
    False: call again to go on). Returns steps done, seconds, the mean loss of the first and last tenth of steps,
    and with ``validation`` examples, the model's :meth:`Trainer.validate` score before training and after every
    epoch (``validation``: ``[[epochs, score], ...]``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    plan = batches(trainer.data.examples, trainer.settings)
    per_epoch = max(1, math.ceil(len(trainer.data.examples) / (trainer.settings.batch_size or 16)))
    state_path = workdir / STATE
    state = json.loads(state_path.read_text()) if state_path.is_file() else \
        {"step": 0, "losses": [], "seconds": 0.0, "validation": []}
    trainer.prepare()
    if state["step"] and state.get("checkpoint"):
        trainer.load_checkpoint(checkpoint_in(workdir, str(state["checkpoint"])))
    started = time.perf_counter()

    def look() -> None:
        at = round(state["step"] / per_epoch, 3)
        if validation and not (state["validation"] and state["validation"][-1][0] == at):
            state["validation"].append([at, round(trainer.validate(validation), 5)])

    if state["step"] == 0:
        look()
    since_save = 0
    finished = True
    for number in range(state["step"], len(plan)):
        if deadline is not None and time.time() >= deadline:
            finished = False
            break
        rng = random.Random(trainer.settings.seed * 1_000_003 + number)  # per step: a resumed run draws the same
        state["losses"].append(round(trainer.step(plan[number], rng), 5))
        state["step"] = number + 1
        since_save += 1
        if progress:
            progress(state["step"], len(plan))
        if state["step"] % per_epoch == 0 or state["step"] == len(plan):
            look()
        if since_save >= trainer.settings.checkpoint_every and state["step"] < len(plan):
            started = _save(trainer, state, started, workdir)
            since_save = 0
    _save(trainer, state, started, workdir)
    losses = state["losses"]
    tenth = max(1, len(losses) // 10)
    return {"steps": state["step"], "planned_steps": len(plan), "finished": finished and state["step"] == len(plan),
            "seconds": round(state["seconds"], 1),
            "loss_first": round(sum(losses[:tenth]) / tenth, 4) if losses else None,
            "loss_last": round(sum(losses[-tenth:]) / tenth, 4) if losses else None,
            **({"validation": state["validation"]} if validation else {})}


def _save(trainer: Trainer, state: dict[str, Any], started: float, workdir: Path) -> float:
    """A checkpoint named by its step, then the state naming it, then older checkpoints removed: a crash at any
    point leaves a state whose checkpoint holds exactly its step. Returns the new start of the timed span."""
    state["seconds"] += time.perf_counter() - started
    name = f"{CHECKPOINT}-{state['step']}"
    trainer.save_checkpoint(workdir / name)
    state["checkpoint"] = name
    tmp = (workdir / STATE).with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(workdir / STATE)
    for old in workdir.glob(f"{CHECKPOINT}-*"):
        if old.name != name:
            old.unlink() if old.is_file() else shutil.rmtree(old)
    return time.perf_counter()


def torch_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary name, then rename: a checkpoint is whole or absent."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def checkpoint_in(workdir: Path, name: str) -> Path:
    """The checkpoint ``name`` (as ``state.json`` gives it) inside ``workdir``; a CheckpointError when it resolves
    anywhere else (an absolute path, ``..``, a link leading out)."""
    root = workdir.resolve()
    path = (workdir / name).resolve()
    if path == root or not path.is_relative_to(root):
        raise CheckpointError(f"{workdir / STATE} names checkpoint {name!r}, which is {path}, outside the run's work "
                              f"directory {root}: refusing to load it (delete {workdir} to train from the start)")
    return path


def torch_load(path: Path) -> Any:
    """A torch checkpoint, tensors and plain containers only (``weights_only=True``): a pickled object in it is a
    CheckpointError, and nothing of it runs."""
    import pickle
    import re

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        named = re.search(r"GLOBAL ([\w.]+)", str(err))
        raise CheckpointError(f"checkpoint {path} holds more than weights"
                              f"{f' (it names {named.group(1)})' if named else ''}: refusing to unpickle it "
                              f"(delete {path.parent} to train from the start)") from None


def warmup_then_linear(optimizer: Any, total_steps: int, warmup_fraction: float = 0.1) -> Any:
    """The usual transformer schedule: linear warm-up over the first steps, then linear decay to zero."""
    import torch

    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def filled_negatives(example: TrainingExample, wanted: int, pool: list[str], rng: random.Random) -> list[str]:
    """``wanted`` negatives: the example's mined ones first, then random documents that are not its positives."""
    out = list(example.negatives[:wanted])
    tries = 0
    while len(out) < wanted and pool and tries < 20 * wanted:
        doc = pool[rng.randrange(len(pool))]
        tries += 1
        if doc not in example.positives and doc not in out:
            out.append(doc)
    return out
