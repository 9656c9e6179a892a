"""The training run: `train()` (the library entry point) and `Trainer`."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vggbench import store
from vggbench.data import DATA_SEED
from vggbench.errors import VggbenchError
from vggbench.models import (
    VGG,
    init_weights,
    load_state,
    preinit_from,
)
from vggbench.runtime import (
    Distributed,
    autocast,
    determinism,
    distributed_from_env,
    machine_info,
    machine_name,
    process_group,
    resolve_device,
    synchronize,
    utc_now,
)
from vggbench.scales import test_scales, to_pixels
from vggbench.train.checkpoint import (
    CHECKPOINT_FORMAT,
    FINAL_WEIGHTS,
    LAST_CHECKPOINT,
    RUNS,
    InterruptFlag,
    TrainingInterrupted,
    checkpoint_dir,
    code_version,
    config_differences,
    load_checkpoint,
    load_run,
    no_checkpoint_error,
    rng_state,
    save_torch,
    seed_for,
    set_rng_state,
)
from vggbench.train.config import TrainConfig
from vggbench.train.loop import PlateauSchedule, StepLoop, micro_batches, validate

NOT_LEARNING_EPOCHS = 3  # warn when validation error stays at chance this many epochs
NOT_LEARNING = "the run is not learning"  # starts that warning; ablations count such runs as stalled
CHANCE_MARGIN = 1.5  # "at chance": top-1 accuracy below 1.5x the accuracy of guessing
EXPLODING_LOSS = 50.0  # x ln(classes): a mean training loss above this is divergence

Progress = Callable[[dict[str, Any]], None]
EpochHook = Callable[["EpochEnd"], None]


# --- The loop -------------------------------------------------------------------------------------


@dataclass
class EpochEnd:
    """What `on_epoch_end` sees after each epoch (after the checkpoint is written)."""

    epoch: int  # 1-based, completed
    metrics: dict[str, Any]
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: PlateauSchedule


class _Log:
    """Prints (rank 0, not quiet) and forwards progress events."""

    def __init__(self, dist: Distributed, quiet: bool, progress: Progress | None) -> None:
        self.active = dist.is_main
        self.quiet = quiet
        self.progress = progress if dist.is_main else None

    def line(self, text: str) -> None:
        if self.active and not self.quiet:
            sys.stderr.write(text.rstrip("\n") + "\n")
            sys.stderr.flush()

    def event(self, **event: Any) -> None:
        if self.progress is not None:
            self.progress(event)


def train(
    config: TrainConfig,
    *,
    results_dir: Path = store.DEFAULT_ROOT,
    device: str = "auto",
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
    progress: Progress | None = None,
    on_epoch_end: EpochHook | None = None,
) -> dict[str, Any]:
    """Train (or find) the run of `config`; return its record.

    A stored, complete record of the same config is returned without training unless `force`.
    An interrupted run's checkpoint is continued with `resume`; without `resume` or `force` a
    leftover checkpoint is an error (so that it is never overwritten by accident).
    `progress(event)` receives dicts with kind "step" (every LOG_EVERY steps) or "epoch";
    `on_epoch_end(EpochEnd)` runs after each epoch's checkpoint (raising KeyboardInterrupt there
    stops the run with the checkpoint intact). Ctrl-C saves a checkpoint and raises
    TrainingInterrupted.
    """
    results_dir = Path(results_dir)
    run_id = config.run_id
    if not force:
        stored = store.read_record(results_dir, RUNS, run_id)
        if stored is not None and stored.get("status") == "complete":
            return stored
    folder = checkpoint_dir(results_dir, run_id)
    last = folder / LAST_CHECKPOINT
    checkpoint = None
    if last.exists() and not force:
        if not resume:
            state = load_checkpoint(last)
            raise VggbenchError(
                f"run {run_id} has a checkpoint from epoch {state.get('epoch')} of {config.epochs} ({last}); "
                "pass --resume to continue it or --force to start over"
            )
        checkpoint = load_checkpoint(last)
        stored_config = checkpoint.get("config", {})
        if TrainConfig.from_dict(stored_config).identity() != config.identity():
            diff = config_differences(config.identity(), TrainConfig.from_dict(stored_config).identity())
            raise VggbenchError(
                f"checkpoint {last} is of another config ({'; '.join(diff[:3])}); "
                "rerun without --resume or with --force to start over"
            )
    elif resume and not force:
        raise no_checkpoint_error(results_dir, config)

    dist = distributed_from_env()
    target = resolve_device(device, dist)
    try:
        with process_group(dist, target), determinism(config.deterministic, target):
            return Trainer(config, results_dir, target, dist, _Log(dist, quiet, progress), on_epoch_end).run(
                checkpoint
            )
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:
        kept = f"the checkpoint {last} is kept" if last.exists() else "no checkpoint was written yet"
        raise TrainingInterrupted(
            f"interrupted; {kept}; rerun the same command with --resume to continue"
        ) from None


class Trainer:
    """One training run's state; `run` trains from scratch or from a checkpoint."""

    def __init__(
        self,
        config: TrainConfig,
        results_dir: Path,
        device: torch.device,
        dist: Distributed,
        log: _Log,
        on_epoch_end: EpochHook | None,
    ) -> None:
        self.config, self.results_dir, self.device, self.dist = config, results_dir, device, dist
        self.log, self.on_epoch_end, self.flag = log, on_epoch_end, InterruptFlag()
        self.run_id = config.run_id
        self.folder = checkpoint_dir(results_dir, self.run_id)
        self.channels_last = device.type == "cuda"

    # -- setup ----------------------------------------------------------------------------------

    def _setup(self) -> None:
        from vggbench.data import TrainAugment, TrainLoader, load_dataset, rgb_statistics

        c, dist = self.config, self.dist
        if c.batch_size % dist.world_size:
            raise VggbenchError(
                f"batch {c.batch_size} does not split evenly over {dist.world_size} processes; "
                f"use a multiple of {dist.world_size}"
            )
        self.per_rank_batch = c.batch_size // dist.world_size
        self.accumulation = micro_batches(self.per_rank_batch, c.max_device_batch)
        self.dataset = load_dataset(
            c.data,
            root=c.data_root,
            limit_train=c.limit_train,
            limit_val=c.limit_val,
            val_split=c.val_split,
            seed=DATA_SEED,
            download=c.download,
            skip_bad_images=c.skip_bad_images,
        )
        self.num_classes = self.dataset.num_classes
        self.spec = c.model_spec(self.num_classes)
        self.stats = rgb_statistics(self.dataset.train, self.results_dir / "cache")
        self.scale = c.train_scale
        self.q_paper = test_scales("single", self.scale)[0]
        self.q_pixels = max(c.crop, to_pixels(self.q_paper, c.crop))
        augment = TrainAugment(c.crop, self.scale, self.stats)
        # The loader's batch is per process; its draws depend on (seed, epoch, batch) only, so resuming
        # and data parallelism see the same crops, flips and colour shifts as one uninterrupted process.
        self.loader = TrainLoader(
            self.dataset.train,
            augment,
            self.per_rank_batch,
            self.device,
            c.seed,
            rank=dist.rank,
            world_size=dist.world_size,
            drop_last=True,
            workers=c.workers,
        )
        self.model = VGG(self.spec)
        self.init_info = self._initialise()
        self.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
        )
        self.schedule = PlateauSchedule(c.lr, c.patience, c.max_lr_decreases)
        self.step_model: nn.Module = self.model
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_model = DistributedDataParallel(self.model, device_ids=ids)
        if c.compile:
            self.step_model = torch.compile(self.step_model)

    def _initialise(self) -> dict[str, Any]:
        """Initial weights per the config; returns what the record says about them."""
        c = self.config
        generator = torch.Generator().manual_seed(c.seed)
        info: dict[str, Any] = {
            "scheme": c.init,
            "std": c.init_std if c.init == "paper" else None,
            "preinit_from": None,
            "preinit_mapping": None,
            "copied_layers": [],
        }
        init_weights(self.model, "kaiming" if c.init == "preinit" else c.init, c.init_std, generator)
        if c.init == "preinit":
            record, source = load_run(self.results_dir, c.preinit_from)
            if record["model"]["config"] != "A":
                self.log.line(
                    f"note: pre-initialising from run {record['id']}, a net {record['model']['config']} "
                    "(the paper uses net A)"
                )
            copied = preinit_from(self.model, source.state_dict(), source.spec, c.preinit_mapping)
            info.update(
                preinit_from=record["id"],
                preinit_mapping=c.preinit_mapping,
                copied_layers=copied,
                scheme=f"preinit (rest {'kaiming'})",
            )
            self.log.line(
                f"pre-initialised from run {record['id']}: copied {len(copied)} layers "
                f"({', '.join(copied) or 'none'}); the rest random (kaiming)"
            )
        if c.init_from:
            record, source = load_run(self.results_dir, c.init_from)
            if record["num_classes"] != self.num_classes:
                raise VggbenchError(
                    f"--init-from {record['id']}: that run has {record['num_classes']} classes, this dataset "
                    f"{self.num_classes}; fine-tune from a run on the same classes"
                )
            try:
                load_state(self.model, source.state_dict())
            except VggbenchError as error:
                raise VggbenchError(
                    f"--init-from {record['id']} (config {record['model']['config']}, width "
                    f"{record['model']['width']}, crop {record['model']['crop']}): {error}"
                ) from None
            info["scheme"] = f"init-from {record['id']}"
        return info

    # -- checkpoints ----------------------------------------------------------------------------

    def _save(self, epoch: int, step: int, partial: dict[str, Any] | None = None) -> Path:
        path = self.folder / LAST_CHECKPOINT
        if not self.dist.is_main:
            return path
        state = {
            "format": CHECKPOINT_FORMAT,
            "run_id": self.run_id,
            "config": self.config.to_dict(),
            "epoch": epoch,  # completed epochs
            "step": step,  # completed steps of epoch+1 (0 at an epoch boundary)
            "partial": partial,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": self.rng,  # the RNG state at the start of epoch `epoch` (0-based)
            "epochs_log": self.epochs_log,
            "init": self.init_info,
            "warnings": self.warnings,
            "elapsed": self.elapsed + (time.perf_counter() - self.started),
        }
        save_torch(state, path)
        return path

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.epochs_log = list(state["epochs_log"])
        self.init_info = state["init"]
        self.warnings = list(state.get("warnings", []))
        self.elapsed = float(state.get("elapsed", 0.0))
        self.start_epoch, self.start_step, self.partial = state["epoch"], state["step"], state.get("partial")
        self.rng = state["rng"]

    # -- the loop -------------------------------------------------------------------------------

    def run(self, checkpoint: dict[str, Any] | None) -> dict[str, Any]:
        self.code_version = code_version()  # of the code that starts (or resumes) the run
        self._setup()
        self.epochs_log: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.elapsed, self.started = 0.0, time.perf_counter()
        self.start_epoch, self.start_step, self.partial, self.rng = 0, 0, None, None
        if checkpoint is not None:
            self._restore(checkpoint)
            self.log.line(
                f"resuming run {self.run_id} after epoch {self.start_epoch}"
                + (f", step {self.start_step}" if self.start_step else "")
            )
        c = self.config
        self.log.line(
            f"run {self.run_id}: {c.net} width {c.width:g} crop {c.crop} S={c.scale} (Q={self.q_paper}, "
            f"{self.q_pixels} px) on {self.dataset.name} ({len(self.dataset.train)} train / "
            f"{len(self.dataset.val)} val, {self.num_classes} classes), init {self.init_info['scheme']}, "
            f"batch {c.batch_size}"
            + (
                f" = {self.accumulation} x {self.per_rank_batch // self.accumulation}"
                if self.accumulation > 1
                else ""
            )
            + (f" over {self.dist.world_size} processes" if self.dist.enabled else "")
            + f", device {self.device}"
        )
        with self.flag:  # from here on, Ctrl-C stops between steps and saves a checkpoint
            for epoch in range(self.start_epoch, c.epochs):
                for group in self.optimizer.param_groups:
                    group["lr"] = self.schedule.lr
                metrics = self._epoch(epoch)
                self._after_epoch(epoch, metrics)
        return self._finish()

    def _epoch(self, epoch: int) -> dict[str, Any]:
        """Train one epoch (from `start_step` when resuming inside it); the epoch's metrics."""
        c, dist = self.config, self.dist
        steps = self.loader.batches_per_epoch
        resuming = epoch == self.start_epoch and self.rng is not None
        resume_step = self.start_step if epoch == self.start_epoch else 0
        if resuming:
            set_rng_state(self.rng)  # the RNG state at the start of this epoch
        epoch_rng = rng_state()
        torch.manual_seed(
            seed_for(c.seed, epoch, dist.rank)
        )  # dropout masks: a function of (seed, epoch, rank)
        partial = self.partial if resume_step else None
        loop = StepLoop(
            self.step_model,
            self.optimizer,
            self.device,
            accumulation=self.accumulation,
            autocast=autocast(self.device, bf16=self.device.type == "cuda"),
            channels_last=self.channels_last,
            done=resume_step,
        )
        if partial:
            loop.loss_sum += partial["loss_sum"].to(self.device)
        interval_images = 0
        self.model.train()
        started = time.perf_counter()
        interval_start = started
        batches = self.loader.epoch(epoch)
        for step, (x, y) in enumerate(batches):
            if step < resume_step:  # drawn again so that the loader's RNG moves as it did before
                continue
            if step == resume_step and partial:
                torch.set_rng_state(partial["dropout_rng"])
            mean = loop.step(x, y, last=step + 1 == steps)
            done = loop.done
            interval_images += c.batch_size
            if mean is not None:
                self._check_loss(mean, epoch, done)
                now = time.perf_counter()
                self.log.event(
                    kind="step",
                    epoch=epoch + 1,
                    epochs=c.epochs,
                    step=done,
                    steps=steps,
                    loss=mean,
                    images_per_s=interval_images / max(now - interval_start, 1e-9),
                )
                interval_start, interval_images = now, 0
            if done < steps and self._interrupted(synced=mean is not None):
                state = {
                    "loss_sum": loop.loss_sum.cpu(),
                    "dropout_rng": torch.get_rng_state(),
                    "train_s": time.perf_counter() - started + (partial or {}).get("train_s", 0.0),
                }
                self.rng = epoch_rng
                path = self._save(epoch, done, state)
                raise TrainingInterrupted(
                    f"interrupted in epoch {epoch + 1} at step {done} of {steps}; checkpoint saved to {path}; "
                    "rerun the same command with --resume to continue"
                )
        if hasattr(batches, "close"):
            batches.close()
        synchronize(self.device)
        elapsed = time.perf_counter() - started
        if dist.enabled:
            import torch.distributed as td

            td.all_reduce(loop.loss_sum, op=td.ReduceOp.SUM)
            loop.loss_sum /= dist.world_size
        train_loss = loop.loss_sum.item() / steps
        self._check_loss(train_loss, epoch, steps)
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            self._diverged(float("nan"), epoch, steps)
        data_time = float(getattr(self.loader, "data_time", 0.0) or 0.0)
        return {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "lr": self.schedule.lr,
            "wall_s": elapsed + (partial or {}).get("train_s", 0.0),
            "images_per_s": (steps - resume_step) * c.batch_size / max(elapsed, 1e-9),
            "data_time_fraction": min(1.0, data_time / max(elapsed, 1e-9)),
        }

    def _interrupted(self, synced: bool) -> bool:
        """Whether Ctrl-C was pressed. Under DDP the ranks agree on it at the steps where the loop
        synced with the host anyway (`synced`), so that all of them stop at the same step."""
        if not self.dist.enabled:
            return self.flag.set
        if not synced:
            return False
        import torch.distributed as td

        flag = torch.tensor([1.0 if self.flag.set else 0.0], device=self.device)
        td.all_reduce(flag, op=td.ReduceOp.MAX)
        return bool(flag.item())

    def _check_loss(self, loss: float, epoch: int, step: int) -> None:
        if not math.isfinite(loss) or loss > EXPLODING_LOSS * math.log(max(self.num_classes, 2)):
            self._diverged(loss, epoch, step)

    def _diverged(self, loss: float, epoch: int, step: int) -> None:
        last = self.folder / LAST_CHECKPOINT
        kept = (
            f"the last good checkpoint (epoch {epoch}) is kept at {last}"
            if last.exists()
            else "no checkpoint was written"
        )
        raise VggbenchError(
            f"training diverged: loss {loss:.4g} in epoch {epoch + 1} at step {step} (lr {self.schedule.lr:g}); "
            f"{kept}; try a lower --lr or another --init"
        )

    def _after_epoch(self, epoch: int, metrics: dict[str, Any]) -> None:
        c = self.config
        t0 = time.perf_counter()
        if self.dist.is_main:
            top1, top5 = validate(
                self.model,
                self.dataset.val,
                self.q_pixels,
                self.stats,
                self.device,
                batch_size=max(self.per_rank_batch // self.accumulation, 1),
                channels_last=self.channels_last,
            )
        else:
            top1 = top5 = 0.0
        if self.dist.enabled:
            import torch.distributed as td

            shared = torch.tensor([top1, top5], dtype=torch.float64, device=self.device)
            td.broadcast(shared, src=0)
            top1, top5 = shared.tolist()
        metrics.update(val_top1_err=top1, val_top5_err=top5, val_s=time.perf_counter() - t0)
        decreased = self.schedule.step(top1)
        self.epochs_log.append(metrics)
        self.log.line(
            f"epoch {epoch + 1}/{c.epochs}: loss {metrics['train_loss']:.4f}, val top-1 {top1:.2f}% top-5 "
            f"{top5:.2f}%, lr {metrics['lr']:g}, {metrics['images_per_s']:.0f} img/s, data "
            f"{100 * metrics['data_time_fraction']:.0f}% of train time"
            + (f"; lr -> {self.schedule.lr:g}" if decreased else "")
        )
        self._warn_if_not_learning()
        self.log.event(kind="epoch", epoch=epoch + 1, epochs=c.epochs, metrics=dict(metrics))
        self.rng, self.partial, self.start_step = rng_state(), None, 0
        self._save(epoch + 1, 0)
        if self.on_epoch_end is not None:
            self.on_epoch_end(EpochEnd(epoch + 1, dict(metrics), self.model, self.optimizer, self.schedule))
        if self.flag.set:
            raise TrainingInterrupted(
                f"interrupted after epoch {epoch + 1}; checkpoint saved to {self.folder / LAST_CHECKPOINT}; "
                "rerun the same command with --resume to continue"
            )

    def _warn_if_not_learning(self) -> None:
        recent = self.epochs_log[-NOT_LEARNING_EPOCHS:]
        chance_err = 100.0 * (1 - min(1.0, CHANCE_MARGIN / self.num_classes))
        if (
            len(recent) == NOT_LEARNING_EPOCHS
            and self.num_classes > 1
            and not self.warnings
            and all(e["val_top1_err"] >= chance_err for e in recent)
        ):
            fix = (
                "VGG without batch norm often stalls with the paper's small normal init: try --init kaiming "
                "(the default) or --init glorot"
                if self.config.init == "paper"
                else f"try a lower --lr (e.g. {self.config.lr / 3:g}), more data or more epochs"
            )
            message = (
                f"{NOT_LEARNING}: validation top-1 error has stayed at chance "
                f"({100 * (1 - 1 / self.num_classes):.0f}%) for {NOT_LEARNING_EPOCHS} epochs; {fix}"
            )
            self.warnings.append(message)
            if self.log.active:
                sys.stderr.write(f"warning: {message}\n")

    def _finish(self) -> dict[str, Any]:
        c = self.config
        weights = self.folder / FINAL_WEIGHTS
        wall = self.elapsed + (time.perf_counter() - self.started)
        log = self.epochs_log
        train_s = sum(e["wall_s"] for e in log)
        images = len(log) * self.loader.batches_per_epoch * c.batch_size
        record = {
            "id": self.run_id,
            "kind": "run",
            "status": "complete",
            "config": c.to_dict(),
            "model": self.spec.to_dict(),
            "dataset": self.dataset.name,
            "num_classes": self.num_classes,
            "classes": list(self.dataset.classes),
            "train_images": len(self.dataset.train),
            "skipped_images": self.dataset.skipped,
            "val_images": len(self.dataset.val),
            "seed": c.seed,
            "train_scale": c.scale,
            "train_scale_pixels": list(self.scale.pixels(c.crop)),
            "val_scale": self.q_paper,
            "val_scale_pixels": self.q_pixels,
            "crop": c.crop,
            "width": c.width,
            "init": self.init_info,
            "init_from": c.init_from,
            "recipe": {
                "lr": c.lr,
                "momentum": c.momentum,
                "weight_decay": c.weight_decay,
                "dropout": c.dropout,
                "batch_size": c.batch_size,
                "accumulation": self.accumulation,
                "epochs": c.epochs,
                "patience": c.patience,
                "max_lr_decreases": c.max_lr_decreases,
                "lr_decreases": self.schedule.decreases,
                "final_lr": self.schedule.lr,
            },
            "epochs_log": log,
            "final": {
                "top1_err": log[-1]["val_top1_err"],
                "top5_err": log[-1]["val_top5_err"],
                "protocol": "center crop at the single test scale Q, validation split",
            },
            "warnings": self.warnings,
            "checkpoint": str(weights.relative_to(self.results_dir)),
            "wall_time_s": wall,
            "train_time_s": train_s,
            "images_per_s": images / max(train_s, 1e-9),
            "data_time_fraction": (
                sum(e["data_time_fraction"] * e["wall_s"] for e in log) / max(train_s, 1e-9)
            ),
            "device": str(self.device) + (f" x{self.dist.world_size}" if self.dist.enabled else ""),
            "world_size": self.dist.world_size,
            "machine": machine_name(machine_info(self.device)),
            "torch_version": torch.__version__,
            "code_version": self.code_version,
            "created": utc_now(),
        }
        if self.dist.is_main:
            save_torch({k: v.detach().cpu() for k, v in self.model.state_dict().items()}, weights)
            store.write_record(self.results_dir, RUNS, self.run_id, record)
            (self.folder / LAST_CHECKPOINT).unlink(missing_ok=True)
        if self.dist.enabled:
            import torch.distributed as td

            td.barrier()
        return record
