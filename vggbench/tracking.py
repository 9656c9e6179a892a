"""What a run keeps about how it was made and how it went, beyond its config: the command line that
made it and the package's version (in its record), its epochs as a CSV file beside its weights
(timm's summary.csv), and TensorBoard's event files where asked.

Torch-free but for TensorBoard's writer, which is imported where it is used.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from vggbench.errors import VggbenchError
from vggbench.store import EpochMetrics, RunRecord, atomic_write_text, read_run

#: The environment variable that carries the command line to the process that trains (also to
#: `ablate --jobs`'s workers and torchrun's ranks, which inherit the environment).
COMMAND_ENV = "VGGBENCH_COMMAND"


@contextlib.contextmanager
def command_line(argv: Sequence[str]) -> Iterator[None]:
    """Within: `current_command()` is `argv` (vggbench's arguments, without the program name)."""
    saved = os.environ.get(COMMAND_ENV)
    os.environ[COMMAND_ENV] = json.dumps(list(argv))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(COMMAND_ENV, None)
        else:
            os.environ[COMMAND_ENV] = saved


def current_command() -> list[str]:
    """The arguments of the vggbench command that runs now; [] outside one (a library call)."""
    try:
        argv = json.loads(os.environ.get(COMMAND_ENV, "[]"))
    except json.JSONDecodeError:
        return []
    return [str(a) for a in argv] if isinstance(argv, list) else []


def package_version() -> str:
    """The installed package's version (the source tree's when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("vggbench")
    except metadata.PackageNotFoundError:
        from vggbench import __version__  # lazy: only without an installed distribution

        return __version__


# --- A run's epochs as CSV --------------------------------------------------------------------------

#: A run's epochs.csv, beside its weights in the store (checkpoints/<id>/), one row per epoch as in
#: timm's summary.csv; the errors are percent, `data_time_fraction` the share of train time spent
#: waiting for data.
EPOCHS_CSV = "epochs.csv"
EPOCH_COLUMNS = (
    "epoch",
    "train_loss",
    "val_top1_err",
    "val_top5_err",
    "lr",
    "images_per_s",
    "data_time_fraction",
    "wall_s",
    "val_s",
)


def epochs_csv(epochs: Sequence[EpochMetrics]) -> str:
    """The epochs as CSV text, floats in full (Python's shortest exact form)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EPOCH_COLUMNS)
    writer.writerows([getattr(e, c) for c in EPOCH_COLUMNS] for e in epochs)
    return out.getvalue()


def write_epochs_csv(folder: Path, epochs: Sequence[EpochMetrics]) -> Path:
    """Write (atomically, whole: a resumed run rewrites its earlier epochs as they were) a run's
    epochs.csv into its folder of the store."""
    path = Path(folder) / EPOCHS_CSV
    atomic_write_text(path, epochs_csv(epochs))
    return path


# --- TensorBoard ----------------------------------------------------------------------------------------

#: The scalars logged per epoch: TensorBoard's tag and the epoch's field.
SCALARS = {
    "train/loss": "train_loss",
    "val/top1_err": "val_top1_err",
    "val/top5_err": "val_top5_err",
    "train/lr": "lr",
    "train/images_per_s": "images_per_s",
    "train/data_share": "data_time_fraction",
}
MISSING_TENSORBOARD = (
    "--tensorboard needs the tensorboard package, which is not installed; "
    "install it with pip install 'vggbench[tensorboard]' (or pip install tensorboard)"
)


def run_folder_name(arm: str, seed: int, run_id: str) -> str:
    """A run's folder under the TensorBoard directory: '<arm>-seed<seed>-<id>' (characters that a
    folder name should not hold, e.g. '/' or '>', as '_')."""
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", f"{arm}-seed{seed}-{run_id}")


class TensorBoard:
    """Event files under `folder`, one folder per run (`run_folder_name`), one point per epoch of
    each scalar in SCALARS, written as epochs end (a resumed run adds its new epochs to its folder).
    `log_run` writes a whole stored run (reused, or trained by another process) whose folder does
    not exist yet."""

    def __init__(self, folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter  # lazy: torch and tensorboard load here
        except ImportError:
            raise VggbenchError(MISSING_TENSORBOARD) from None
        if Path(folder).exists() and not Path(folder).is_dir():
            raise VggbenchError(
                f"--tensorboard {folder} is a file; give a folder, e.g. --tensorboard runs/tb"
            )
        self.folder, self.writer_class = Path(folder), SummaryWriter
        self.writer = None
        self.following: str | None = None  # the folder of the run whose epochs come next

    def start(self, arm: str, seed: int, run_id: str) -> None:
        """The epochs logged from now on are of this run (its writer opens at the first)."""
        self.close()
        self.following = run_folder_name(arm, seed, run_id)

    def log(self, metrics: EpochMetrics) -> None:
        if self.writer is None:
            self.writer = self.writer_class(str(self.folder / self.following))
        for tag, name in SCALARS.items():
            self.writer.add_scalar(tag, getattr(metrics, name), metrics.epoch)
        self.writer.flush()

    def log_run(self, arm: str, run: RunRecord) -> None:
        """All of a stored run's epochs, unless its folder exists (written as it trained, or before)."""
        if (self.folder / run_folder_name(arm, run.seed, run.id)).exists():
            return
        self.start(arm, run.seed, run.id)
        for metrics in run.epochs:
            self.log(metrics)
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.writer = self.following = None

    def follow(self, arm: str, seed: int, run_id: str) -> Callable[[Any], None]:
        """An `on_epoch_end` hook that logs each finished epoch of this run."""
        self.start(arm, seed, run_id)
        return self.log_epoch

    def log_epoch(self, end: Any) -> None:
        """`on_epoch_end`: the epoch that ended (train.EpochEnd), into the run started last."""
        if self.following is not None:
            self.log(end.metrics)

    def on_run(self, step: Any) -> None:
        """`ablate`'s `on_run` (ablations.sweep.SweepStep): the epochs that follow are of this run;
        a stored one trains none (`log_stored` writes it)."""
        self.close()
        self.following = None if step.stored else run_folder_name(step.arm, step.seed, step.run_id)

    def log_stored(self, root: Path, runs: Iterable[tuple[str, str]]) -> None:
        """(arm, run id) pairs: each stored run not written in this process, whole (`log_run`)."""
        self.close()
        for arm, run_id in runs:
            run = read_run(root, run_id)
            if run is not None:
                self.log_run(arm, run)


def chain(*hooks: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
    """One hook that calls each hook given (None: none given)."""
    given = [hook for hook in hooks if hook is not None]
    if not given:
        return None

    def call(event: Any) -> None:
        for hook in given:
            hook(event)

    return call
