"""A run's files besides its record: the resume checkpoint (save, load, and the checks before
resuming), the final weights, the RNG state a checkpoint holds, Ctrl-C and SIGTERM, and the code
version.

Files: <results>/checkpoints/<id>/last.pt (`Checkpoint`, removed when the run completes) and
<results>/checkpoints/<id>/model.pt (the final weights, a plain FC-form state dict).
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer

from vggbench import fs, store
from vggbench.errors import VggbenchError
from vggbench.signals import STOP_SIGNALS, Stopped
from vggbench.store import EpochMetrics, InitInfo
from vggbench.train.config import ResolvedConfig, TrainConfig, identity, resolve
from vggbench.train.loop import PlateauSchedule

CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.pt"
FINAL_WEIGHTS = "model.pt"
CHECKPOINT_FORMAT = 2  # 2: typed epochs and init; 1: the dicts before them


# --- The checkpoint --------------------------------------------------------------------------------


@dataclass
class PartialEpoch:
    """Where Ctrl-C stopped inside an epoch: what resuming at the next step needs."""

    loss_sum: torch.Tensor  # the epoch's training losses so far, summed (on the CPU)
    dropout_rng: torch.Tensor  # torch's RNG state before the next step (its dropout masks)
    train_s: float  # training seconds of the epoch so far


@dataclass
class Checkpoint:
    """A run's resume state, written after every epoch and on Ctrl-C; `resume` continues from it
    bit-exactly on the CPU."""

    run_id: str
    config: dict[str, Any]  # TrainConfig.to_dict()
    epoch: int  # completed epochs
    step: int  # completed steps of epoch + 1 (0 at an epoch boundary)
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    schedule: dict[str, Any]  # PlateauSchedule.state_dict()
    rng: dict[str, Any] | None  # `rng_state()` at the start of epoch `epoch` (0-based)
    epochs: list[EpochMetrics]
    init: InitInfo
    warnings: list[str]
    elapsed: float  # wall seconds of the run so far
    partial: PartialEpoch | None = None

    def save(self, path: Path) -> None:
        state = {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: no copy of the weights
        state.update(
            format=CHECKPOINT_FORMAT,
            epochs=[asdict(e) for e in self.epochs],
            init=asdict(self.init),
            partial=None if self.partial is None else asdict(self.partial),
        )
        save_torch(state, path)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        """The checkpoint at `path`, checked field by field (`why_corrupt`) before anything uses it."""
        state = store.read_torch_file(path, "checkpoint", CORRUPT_FIX)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise VggbenchError(
                f"checkpoint {path} is of another format than this vggbench writes "
                f"({CHECKPOINT_FORMAT}); {CORRUPT_FIX}"
            )
        where = str(path)
        checkpoint = store._typed(cls, state, where, kind="checkpoint", fix=CORRUPT_FIX)
        checkpoint.epochs = [_typed_part(EpochMetrics, e, where) for e in checkpoint.epochs]
        checkpoint.init = _typed_part(InitInfo, checkpoint.init, where)
        if checkpoint.partial is not None:
            checkpoint.partial = _typed_part(PartialEpoch, checkpoint.partial, where)
        _typed_part(PlateauSchedule, checkpoint.schedule, where)  # its fields' types, checked
        problem = why_corrupt(checkpoint)
        if problem is not None:
            raise corrupt_checkpoint(path, problem)
        return checkpoint


CORRUPT_FIX = "delete it and rerun with --force"


def corrupt_checkpoint(path: Path, problem: str) -> VggbenchError:
    return VggbenchError(f"corrupt checkpoint {path}: {problem}; {CORRUPT_FIX}")


def _typed_part(cls: type, data: Any, where: str) -> Any:
    return store._typed(cls, data, where, kind="checkpoint", fix=CORRUPT_FIX)


def why_corrupt(checkpoint: Checkpoint) -> str | None:
    """What makes a checkpoint unusable though its fields have the right types, else None: an epoch
    outside [0, the run's epoch cap], epochs not numbered 1 to it, a step without the partial epoch
    it belongs to (or after the cap), weights that are not tensors, an RNG state of another shape."""
    c = checkpoint
    cap = c.config.get("epochs")
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
        return f"its config's epochs is {cap!r:.20}, not a whole number of at least 1"
    if not 0 <= c.epoch <= cap:
        return f"its epoch {c.epoch} is outside the run's 0 to {cap}"
    if [e.epoch for e in c.epochs] != list(range(1, c.epoch + 1)):
        return f"its epochs are numbered {[e.epoch for e in c.epochs][:5]}, not 1 to {c.epoch}"
    if c.step < 0 or (c.step > 0) != (c.partial is not None) or (c.step > 0 and c.epoch == cap):
        partial = "with" if c.partial is not None else "without"
        return f"its step {c.step} does not fit epoch {c.epoch} of {cap} {partial} a partial epoch"
    if not (math.isfinite(c.elapsed) and c.elapsed >= 0):
        return f"its elapsed time {c.elapsed!r} is not a finite number of seconds"
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in c.model.items()):
        return "its model is not a state dict (names to tensors)"
    if c.rng is not None and not _rng_fits(c.rng):
        return "its RNG state is not rng_state()'s"
    return None


def _rng_fits(state: dict[str, Any]) -> bool:
    """Whether `state` has rng_state()'s shape, so that set_rng_state takes it."""
    numpy_state, python_state = state.get("numpy"), state.get("python")
    return (
        isinstance(state.get("torch"), torch.Tensor)
        and isinstance(numpy_state, list)
        and len(numpy_state) == 5
        and isinstance(numpy_state[1], torch.Tensor)
        and isinstance(python_state, dict)
        and isinstance(python_state.get("internal"), torch.Tensor)
        and isinstance(python_state.get("version"), int)
    )


def restore(checkpoint: Checkpoint, path: Path, model: nn.Module, optimizer: Optimizer) -> None:
    """Load a checkpoint's weights and optimizer state into a run's: states that do not fit them
    (another net's weights) make the checkpoint corrupt."""
    try:
        model.load_state_dict(checkpoint.model)
        optimizer.load_state_dict(checkpoint.optimizer)
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__  # torch's text runs to many lines
        raise corrupt_checkpoint(path, f"its states do not fit the run ({reason:.200})") from None


def save_torch(obj: Any, path: Path) -> None:
    """torch.save via a temporary file and a rename, so that a crash never leaves half a file."""
    store.atomic_write(path, lambda handle: torch.save(obj, handle))


def checkpoint_dir(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / CHECKPOINTS / run_id


def has_checkpoint(results_dir: Path, run_id: str) -> bool:
    """Whether an interrupted run of this id can be resumed (`train(..., resume=True)`)."""
    return (checkpoint_dir(results_dir, run_id) / LAST_CHECKPOINT).exists()


def checkpoint_to_resume(results_dir: Path, resolved: ResolvedConfig, resume: bool) -> Checkpoint | None:
    """The checkpoint of this config's interrupted run, when `resume` asks for it. A leftover
    checkpoint without `resume` is an error (so that it is never overwritten by accident), and so is
    `resume` without a checkpoint, or with one of another config."""
    last = checkpoint_dir(results_dir, resolved.id) / LAST_CHECKPOINT
    if not last.exists():
        if resume:
            raise _no_checkpoint_error(results_dir, resolved)
        return None
    checkpoint = Checkpoint.load(last)
    if not resume:
        raise VggbenchError(
            f"run {resolved.id} has a checkpoint from epoch {checkpoint.epoch} of {resolved.config.epochs} "
            f"({last}); pass --resume to continue it or --force to start over"
        )
    stored, mine = _stored_identity(checkpoint), identity(resolved.config)
    if stored != mine:
        differences = "; ".join(_differences(mine, stored)[:3])
        raise VggbenchError(
            f"checkpoint {last} is of another config ({differences}); "
            "rerun without --resume or with --force to start over"
        )
    return checkpoint


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k} {a.get(k)!r} here, {b.get(k)!r} there" for k in keys if a.get(k) != b.get(k)]


def _stored_identity(checkpoint: Checkpoint) -> dict[str, Any]:
    """The identity of a checkpoint's config (resolved when it was saved: no I/O)."""
    return identity(resolve(TrainConfig.from_dict(checkpoint.config)).config)


def _no_checkpoint_error(results_dir: Path, resolved: ResolvedConfig) -> VggbenchError:
    """--resume without a checkpoint of this config: name the closest other checkpoint's differences."""
    mine = identity(resolved.config)
    folder = Path(results_dir) / CHECKPOINTS
    best: tuple[int, str, list[str]] | None = None
    for path in sorted(folder.glob(f"*/{LAST_CHECKPOINT}")):
        try:
            other = _stored_identity(Checkpoint.load(path))
        except (VggbenchError, TypeError):
            continue
        diff = _differences(mine, other)
        if best is None or len(diff) < best[0]:
            best = (len(diff), path.parent.name, diff)
    message = f"nothing to resume: no checkpoint of this config (run {resolved.id}) in {folder}"
    if best:
        message += f"; checkpoint {best[1]} is of another config ({'; '.join(best[2][:3])})"
    return VggbenchError(message + "; rerun without --resume to start it")


def remove_stale_checkpoint(results_dir: Path, run_id: str, last: Path, quiet: bool) -> None:
    """Remove a complete run's last.pt when it is older than the record (`train`'s rule); say
    how to continue a newer one, an interrupted --force run's."""
    record = Path(results_dir) / store.RUNS / f"{run_id}.json"
    with fs.reading(last):
        if not last.exists():
            return
        stale = last.stat().st_mtime_ns <= record.stat().st_mtime_ns
    if stale:
        with fs.writing(last):
            last.unlink(missing_ok=True)
    elif not quiet:
        sys.stderr.write(
            f"note: run {run_id} is stored, and a --force run of it left a checkpoint ({last}); "
            "--resume --force continues that run, --force starts over\n"
        )


def code_version() -> str:
    """The git commit of the source tree (with '+dirty' for local changes), else the package version."""
    here = Path(__file__).resolve().parent.parent  # the vggbench package
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if commit.returncode == 0 and commit.stdout.strip():
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
                cwd=here,
                capture_output=True,
                text=True,
                timeout=5,
            )
            return commit.stdout.strip()[:12] + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from importlib.metadata import version

        return version("vggbench")
    except Exception:  # not installed: running from a source tree without git
        return "unknown"


# --- RNG state ------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and python RNG states, in a form torch.load(weights_only) reads."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": _python_state_to_tensor(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _python_state_to_tensor(state: tuple) -> dict[str, Any]:
    version, internal, gauss = state
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"].tolist()), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError, IndexError):
            torch.cuda.set_rng_state_all(state["cuda"])


# --- Ctrl-C and SIGTERM ---------------------------------------------------------------------------


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during training, after the checkpoint was saved; the message says how to
    resume. A KeyboardInterrupt, so that callers running many arms (ablations) stop too. `saved` is
    the message's first part (where the run stopped, what was saved), for the CLI to add the exact
    command that resumes; `signum` the signal that stopped it (the exit code is 128 + signum)."""

    def __init__(self, saved: str, signum: int = signal.SIGINT) -> None:
        super().__init__(f"{saved}; rerun the same command with --resume to continue")
        self.saved, self.signum = saved, signum


class InterruptFlag:
    """The first Ctrl-C or SIGTERM sets a flag the loop checks between steps (so the checkpoint holds
    a whole step), and `signum` says which; a second one interrupts at once."""

    def __init__(self) -> None:
        self.set = False
        self.signum: int = signal.SIGINT
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        if self.set:
            raise Stopped(signum)
        self.set, self.signum = True, signum

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            if previous is not None:  # None: a handler installed outside Python, which cannot be restored
                signal.signal(signum, previous)
        self._previous = {}
