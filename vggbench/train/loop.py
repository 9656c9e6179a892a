"""The per-step work of training (accumulation, the step loop), the plateau schedule, and the
validation after each epoch (the center-crop protocol and top-k of vggbench.evaluate.protocols)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vggbench import paper
from vggbench.data import EvalLoader, ImageSet, RGBStats, eval_preprocess, same_size_groups
from vggbench.errors import VggbenchError
from vggbench.evaluate.protocols import center_crop, topk_correct
from vggbench.models import VGG
from vggbench.recipe import DEFAULT_PATIENCE
from vggbench.runtime import autocast

LOG_EVERY = 20  # steps between host syncs (progress, loss checks, Ctrl-C agreement across ranks)


# --- The plateau schedule ------------------------------------------------------------------------


@dataclass
class PlateauSchedule:
    """lr = base * factor^decreases; a decrease after `patience` consecutive epochs whose
    validation top-1 error is not below the best so far, at most `max_decreases` times. The next
    such plateau after the last decrease is where the paper stopped training (`finished`)."""

    base_lr: float
    patience: int = DEFAULT_PATIENCE
    max_decreases: int = paper.MAX_LR_DECREASES
    factor: float = paper.LR_DECAY_FACTOR
    best: float | None = None
    bad_epochs: int = 0
    decreases: int = 0
    finished: bool = False

    @property
    def lr(self) -> float:
        return self.base_lr * self.factor**self.decreases

    def step(self, top1_err: float) -> bool:
        """Record an epoch's validation error; True when the lr was just decreased."""
        if self.best is None or top1_err < self.best:
            self.best, self.bad_epochs = top1_err, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs < self.patience:
            return False
        if self.decreases < self.max_decreases:
            self.decreases += 1
            self.bad_epochs = 0
            return True
        self.finished = True
        return False

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


# --- The step, accumulation and validation -------------------------------------------------------


def micro_batches(per_rank_batch: int, max_device_batch: int | None) -> int:
    """The fewest micro-batches k that divide the batch evenly, each at most max_device_batch."""
    if not max_device_batch or per_rank_batch <= max_device_batch:
        return 1
    k = math.ceil(per_rank_batch / max_device_batch)
    while per_rank_batch % k:
        k += 1
    return k


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    accumulation: int = 1,
    autocast=None,
) -> torch.Tensor:
    """One SGD step on a batch split into `accumulation` equal micro-batches: the gradient of the
    batch's mean loss, as if it were one batch. Under DDP gradients sync on the last micro-batch
    only and are averaged over ranks. Returns the mean loss on the device (no host sync)."""
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=x.device)
    chunks = list(zip(x.chunk(accumulation), y.chunk(accumulation)))
    sync_last = getattr(model, "no_sync", None)
    for index, (xm, ym) in enumerate(chunks):
        quiet = sync_last() if sync_last is not None and index < len(chunks) - 1 else contextlib.nullcontext()
        with quiet:
            with autocast or contextlib.nullcontext():
                loss = F.cross_entropy(model(xm), ym) / len(chunks)
            loss.backward()
        total += loss.detach().float()
    optimizer.step()
    return total


class StepLoop:
    """The training loop's per-step work: the layout change, `train_step`, the loss summed on the
    device, and one host sync every `LOG_EVERY` steps. `Trainer` drives it and `vggbench bench`
    times it, so the measured overhead is the loop's own."""

    def __init__(
        self,
        step_model: nn.Module,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        *,
        accumulation: int = 1,
        autocast=None,
        channels_last: bool = False,
        done: int = 0,
    ) -> None:
        self.step_model, self.optimizer, self.accumulation = step_model, optimizer, accumulation
        self.autocast, self.channels_last = autocast, channels_last
        self.done = done  # steps completed in this epoch
        self.loss_sum = torch.zeros((), device=device)
        self.interval_sum = torch.zeros((), device=device)
        self.interval_steps = 0

    def step(self, x: torch.Tensor, y: torch.Tensor, *, last: bool = False) -> float | None:
        """One SGD step. Every `LOG_EVERY` steps, and on the `last` step, it returns the mean loss
        since the previous return (one host sync); otherwise None, and nothing waits for the device."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = train_step(self.step_model, self.optimizer, x, y, self.accumulation, self.autocast)
        self.loss_sum += loss
        self.interval_sum += loss
        self.done += 1
        self.interval_steps += 1
        if self.done % LOG_EVERY and not last:
            return None
        mean = (self.interval_sum / self.interval_steps).item()
        self.interval_sum.zero_()
        self.interval_steps = 0
        return mean


@torch.no_grad()
def validate(
    model: VGG,
    imageset: ImageSet,
    q_pixels: int,
    stats: RGBStats,
    device: torch.device,
    input_range: str = paper.INPUT_RANGE,
    batch_size: int = 256,
    channels_last: bool = False,
    bf16: bool = False,
) -> tuple[float, float]:
    """(top-1, top-5) error in percent: center crop of each val image rescaled to Q, FC net, eval mode."""
    was_training = model.training
    model.eval()
    correct = torch.zeros(2, dtype=torch.long, device=device)  # top-1, top-5
    seen = 0
    try:
        for images, labels in EvalLoader(imageset, batch_size, device):
            labels = torch.as_tensor(labels)
            for indices, group in same_size_groups(images):
                x = center_crop(eval_preprocess(group, q_pixels, stats, input_range), model.spec.crop)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(device, bf16=bf16):
                    logits = model(x)
                hits = topk_correct(logits.float(), labels[indices], (1, 5))  # counts on the device
                correct += torch.stack([hits[1], hits[5]])
                seen += len(indices)
    finally:
        model.train(was_training)
    if seen == 0:
        raise VggbenchError("the validation split is empty; use --val-split or a larger --limit-val")
    top1, top5 = correct.tolist()
    return 100.0 * (1 - top1 / seen), 100.0 * (1 - top5 / seen)
