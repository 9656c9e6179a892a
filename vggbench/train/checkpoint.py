"""Checkpoints (save, load, resume checks), RNG state, Ctrl-C, the code version, and stored runs."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vggbench import store
from vggbench.errors import VggbenchError
from vggbench.models import (
    VGG,
    ModelSpec,
    load_state,
)
from vggbench.train.config import TrainConfig

RUNS = "runs"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.pt"
FINAL_WEIGHTS = "model.pt"
CHECKPOINT_FORMAT = 1


# --- Checkpoints, stored runs --------------------------------------------------------------------


def checkpoint_dir(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / CHECKPOINTS / run_id


def has_checkpoint(results_dir: Path, config: TrainConfig) -> bool:
    """Whether an interrupted run of this config can be resumed (`train(..., resume=True)`)."""
    return (checkpoint_dir(results_dir, config.run_id) / LAST_CHECKPOINT).exists()


def save_torch(obj: Any, path: Path) -> None:
    store.atomic_write(path, lambda handle: torch.save(obj, handle))


def load_checkpoint(path: Path) -> dict[str, Any]:
    return store.read_torch_file(path, "checkpoint", "delete it and rerun with --force")


def load_run(
    root: Path,
    run_id_or_prefix: str,
    *,
    fully_convolutional: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[dict[str, Any], VGG]:
    """A stored run's record and its model with the final weights (FC form unless asked)."""
    root = Path(root)
    run_id = store.find_run(root, run_id_or_prefix)
    record = store.read_record(root, RUNS, run_id)
    if record.get("status") != "complete":
        raise VggbenchError(f"run {run_id} did not complete; resume it with --resume")
    path = root / record["checkpoint"]
    if not path.exists():
        raise VggbenchError(f"run {run_id}: its weights {path} are missing; retrain it with --force")
    state = store.read_torch_file(path, "weights", f"retrain run {run_id} with --force")
    model = VGG(ModelSpec(**record["model"]), fully_convolutional=fully_convolutional)
    load_state(model, state)
    return record, model.to(device).eval()


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k} {a.get(k)!r} here, {b.get(k)!r} there" for k in keys if a.get(k) != b.get(k)]


def no_checkpoint_error(results_dir: Path, config: TrainConfig) -> VggbenchError:
    """--resume without a checkpoint of this config: name the closest other checkpoint's differences."""
    mine = config.identity()
    best: tuple[int, str, list[str]] | None = None
    for path in sorted((Path(results_dir) / CHECKPOINTS).glob(f"*/{LAST_CHECKPOINT}")):
        try:
            other = TrainConfig.from_dict(load_checkpoint(path)["config"]).identity()
        except (VggbenchError, KeyError, TypeError):
            continue
        diff = config_differences(mine, other)
        if best is None or len(diff) < best[0]:
            best = (len(diff), path.parent.name, diff)
    message = f"nothing to resume: no checkpoint of this config (run {config.run_id}) in {Path(results_dir) / CHECKPOINTS}"
    if best:
        message += f"; checkpoint {best[1]} is of another config ({'; '.join(best[2][:3])})"
    return VggbenchError(message + "; rerun without --resume to start it")


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


def seed_for(*parts: int) -> int:
    """A 63-bit seed from integers (seed, epoch, rank), the same on every machine."""
    return int(store.record_id({"seed": list(parts)}, length=15), 16)


# --- Ctrl-C ---------------------------------------------------------------------------------------


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the checkpoint was saved; the message says how to resume.
    A KeyboardInterrupt, so that callers running many arms (ablations) stop too."""


class InterruptFlag:
    """The first Ctrl-C sets a flag the loop checks between steps (so the checkpoint holds a whole
    step); a second one interrupts at once."""

    def __init__(self) -> None:
        self.set = False
        self._previous = None

    def __enter__(self) -> InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
