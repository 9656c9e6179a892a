"""What callers of `train` see during a run (`StepProgress` every few steps, `EpochEnd` after each
epoch) and the run's log (rank 0 prints)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from vggbench.runtime import Distributed
from vggbench.store import EpochMetrics
from vggbench.train.loop import PlateauSchedule


@dataclass(frozen=True)
class StepProgress:
    """What `progress` sees every `loop.LOG_EVERY` steps and at the last step of an epoch."""

    epoch: int  # 1-based, the epoch in progress
    epochs: int
    step: int  # steps done in this epoch
    steps: int  # steps per epoch
    loss: float  # the mean training loss since the previous report
    images_per_s: float  # since the previous report


@dataclass
class EpochEnd:
    """What `on_epoch_end` sees after each epoch (after the checkpoint is written)."""

    epoch: int  # 1-based, completed
    metrics: EpochMetrics
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: PlateauSchedule


Progress = Callable[[StepProgress], None]
EpochHook = Callable[[EpochEnd], None]


class Log:
    """Prints (rank 0, not quiet) and forwards progress reports."""

    def __init__(self, dist: Distributed, quiet: bool, progress: Progress | None) -> None:
        self.active = dist.is_main
        self.quiet = quiet
        self.progress = progress if dist.is_main else None

    def line(self, text: str) -> None:
        if self.active and not self.quiet:
            sys.stderr.write(text.rstrip("\n") + "\n")
            sys.stderr.flush()

    def warning(self, text: str) -> None:
        """A one-line warning (rank 0), shown even when quiet."""
        if self.active:
            sys.stderr.write(f"warning: {text}\n")
            sys.stderr.flush()

    def step(self, report: StepProgress) -> None:
        if self.progress is not None:
            self.progress(report)


class Interval:
    """Images per second between two progress reports."""

    def __init__(self, done: int) -> None:
        self.start, self.done = time.perf_counter(), done

    def images_per_s(self, done: int, batch_size: int) -> float:
        now = time.perf_counter()
        rate = (done - self.done) * batch_size / max(now - self.start, 1e-9)
        self.start, self.done = now, done
        return rate
