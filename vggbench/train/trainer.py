"""The training run: `train()` (the library entry point) and `Trainer` (one run from setup to its
record). What callers see during a run is in `events`, the recipe's stop rules in `recipe`."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import torch
import torch.distributed as td
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from vggbench import store
from vggbench.data import (
    DATA_SEED,
    TrainAugment,
    TrainLoader,
    input_std,
    load_dataset,
    mix_seed,
    rgb_statistics,
)
from vggbench.data.cache import CacheOptions, TrainSet, cached_train_set
from vggbench.data.loaders import check_one_batch
from vggbench.errors import VggbenchError
from vggbench.evaluate.sources import load_run
from vggbench.locks import run_lock
from vggbench.models import VGG, init_weights, load_state, paper_layer_stds, preinit_from
from vggbench.recipe import (
    NOT_LEARNING,
    NOT_LEARNING_EPOCHS,
    STALLED_EPOCHS,
    not_learning,
    stalled,
    val_slope,
)
from vggbench.runtime import (
    Distributed,
    autocast,
    check_device_options,
    determinism,
    distributed_from_env,
    machine_info,
    machine_name,
    process_group,
    resolve_device,
    synchronize,
    utc_now,
)
from vggbench.signals import signum_of
from vggbench.store import EpochMetrics, InitInfo, Recipe, RunRecord
from vggbench.tracking import current_command, package_version, write_epochs_csv
from vggbench.train.checkpoint import (
    FINAL_WEIGHTS,
    LAST_CHECKPOINT,
    Checkpoint,
    InterruptFlag,
    PartialEpoch,
    TrainingInterrupted,
    checkpoint_dir,
    checkpoint_to_resume,
    code_version,
    remove_stale_checkpoint,
    restore,
    rng_state,
    save_torch,
    set_rng_state,
)
from vggbench.train.config import ResolvedConfig, TrainConfig, resolve
from vggbench.train.events import EpochEnd, EpochHook, Interval, Log, Progress, StepProgress
from vggbench.train.loop import PlateauSchedule, StepLoop, micro_batches, validate

EXPLODING_LOSS = 50.0  # x ln(classes): a mean training loss above this is divergence


# --- The entry point -------------------------------------------------------------------------------


@contextlib.contextmanager
def _one_process_per_run(results_dir: Path, run_id: str, dist: Distributed) -> Iterator[None]:
    """Hold the run's lock (checkpoints/<id>/lock) from the stored-record check to the record write,
    so that two processes sharing a store never train one run: a second one waits, says so once,
    and then finds the run stored. Under torchrun rank 0 holds it."""
    if not dist.is_main:
        yield
        return
    lock = run_lock(checkpoint_dir(results_dir, run_id))
    lock.acquire(lambda holder: sys.stderr.write(f"run {run_id} is being trained by {holder}; waiting\n"))
    try:
        yield
    finally:
        lock.release()


def train(
    config: TrainConfig | ResolvedConfig,
    *,
    results_dir: Path = store.DEFAULT_ROOT,
    device: str = "auto",
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
    progress: Progress | None = None,
    on_epoch_end: EpochHook | None = None,
    cache: CacheOptions = CacheOptions(),
) -> RunRecord:
    """Train (or find) the run of `config`; return its record.

    A stored, complete record of the same config is returned without training unless `force`.
    An interrupted run's checkpoint is continued with `resume`; without `resume` or `force` a
    leftover checkpoint is an error (so that it is never overwritten by accident). `force` starts
    over; `force` with `resume` continues an interrupted `force` run's checkpoint.
    A complete run's folder keeps a last.pt only for one of two reasons. Older than the record: the
    process died between writing the record and removing the checkpoint; it is stale and removed
    here. Newer: a `force` run started after the record (interrupted, or still going); it is kept
    for `resume` with `force`.
    `progress(StepProgress)` runs every LOG_EVERY steps; `on_epoch_end(EpochEnd)` runs after each
    epoch's checkpoint (raising KeyboardInterrupt there stops the run with the checkpoint intact).
    Ctrl-C saves a checkpoint and raises TrainingInterrupted. `cache` says where an image folder's
    decoded training images are cached (data.cache); it changes how the run executes, not its id.
    The config is resolved once against its data (`resolve`, the folder rescanned; a ResolvedConfig
    is not resolved again), so the run is that of the files as they are now: changed images train a
    new run. What the run needs (its device, the runs it starts from) is checked before its lock and
    folder are made, so that bad input leaves nothing behind.
    """
    results_dir = Path(results_dir)
    dist = distributed_from_env()
    log = Log(dist, quiet, progress)
    resolved = resolve(config, lambda text: log.line(f"note: {text}"), fresh=True)
    target = resolve_device(device, dist)
    check_device_options(target, resolved.config.bf16, resolved.config.compile)
    to_train = force or not _stored(results_dir, resolved.id)
    if to_train:  # a stored run needs no source weights
        check_sources(results_dir, resolved.config)
    last = checkpoint_dir(results_dir, resolved.id) / LAST_CHECKPOINT

    def trainer() -> Trainer:
        return prepared or Trainer(resolved, results_dir, target, dist, log, on_epoch_end, cache)

    try:
        prepared = None
        if to_train:
            prepared = trainer()
            prepared.prepare()  # the data, checked against the recipe before anything is written
        with _one_process_per_run(results_dir, resolved.id, dist):
            return _train_locked(results_dir, resolved, log.quiet, force, resume, trainer)
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt as interrupt:
        kept = f"the checkpoint {last} is kept" if last.exists() else "no checkpoint was written yet"
        raise TrainingInterrupted(f"interrupted; {kept}", signum_of(interrupt)) from None


def _stored(results_dir: Path, run_id: str) -> bool:
    stored = store.read_run(results_dir, run_id)
    return stored is not None and stored.status == "complete"


def _train_locked(
    results_dir: Path,
    resolved: ResolvedConfig,
    quiet: bool,
    force: bool,
    resume: bool,
    trainer: Callable[[], Trainer],
) -> RunRecord:
    """`train` under the run's lock: the stored run, or the run trained (from its checkpoint) by
    `trainer()`."""
    last = checkpoint_dir(results_dir, resolved.id) / LAST_CHECKPOINT
    stored = None if force else store.read_run(results_dir, resolved.id)
    if stored is not None and stored.status == "complete":
        remove_stale_checkpoint(results_dir, resolved.id, last, quiet)
        return stored
    checkpoint = checkpoint_to_resume(results_dir, resolved, resume) if resume or not force else None
    run = trainer()
    with process_group(run.dist, run.device), determinism(resolved.config.deterministic, run.device):
        return run.run(checkpoint)


def check_sources(results_dir: Path, config: TrainConfig) -> None:
    """The stored runs that --init-from and --preinit-from name exist, completed and have their
    weights (which load later, with the data)."""
    for flag, name in (("--init-from", config.init_from), ("--preinit-from", config.preinit_from)):
        if name:
            try:
                run = store.read_run(results_dir, store.find_run(results_dir, name))
            except VggbenchError as error:
                raise VggbenchError(f"{flag} {name}: {error}") from None
            if run is None or run.status != "complete":
                raise VggbenchError(f"{flag} {name}: that run did not complete; resume it with --resume")
            if not (results_dir / run.checkpoint).is_file():
                raise VggbenchError(
                    f"{flag} {name}: the weights of run {run.id} ({results_dir / run.checkpoint}) are "
                    "missing; retrain it with --force"
                )


# --- One run ---------------------------------------------------------------------------------------


class Trainer:
    """One training run's state; `run` trains from scratch or from a checkpoint and returns the
    run's record."""

    def __init__(
        self,
        resolved: ResolvedConfig,
        results_dir: Path,
        device: torch.device,
        dist: Distributed,
        log: Log,
        on_epoch_end: EpochHook | None,
        cache: CacheOptions = CacheOptions(),
    ) -> None:
        self.resolved, self.config, self.run_id = resolved, resolved.config, resolved.id
        self.results_dir, self.device, self.dist = results_dir, device, dist
        self.cache = cache
        self.log, self.on_epoch_end, self.flag = log, on_epoch_end, InterruptFlag()
        self.folder = checkpoint_dir(results_dir, self.run_id)
        self.channels_last = resolved.config.channels_last
        self.prepared = False

    def run(self, checkpoint: Checkpoint | None) -> RunRecord:
        self.code_version = code_version()  # of the code that starts (or resumes) the run
        self._load_data()
        self._build_model()
        self._start(checkpoint)
        self.log.line(self._describe())
        with self.flag:  # from here on, Ctrl-C stops between steps and saves a checkpoint
            epoch = self.start_epoch
            while epoch < self.config.epochs and self._stopped_by() is None:
                for group in self.optimizer.param_groups:
                    group["lr"] = self.schedule.lr
                metrics = self._epoch(epoch)
                self._after_epoch(epoch, metrics)
                epoch += 1
        return self._finish()

    def _stopped_by(self) -> str | None:
        """Why the run ends now, or None to train on: "stalled" (at chance for STALLED_EPOCHS epochs,
        under the schedule rule), "schedule" (the paper's rule completed) or "epoch cap"."""
        c = self.config
        if c.stop == "schedule" and self._stalled(STALLED_EPOCHS):
            return "stalled"
        if c.stop == "schedule" and self.schedule.finished:
            return "schedule"
        return "epoch cap" if len(self.epochs) >= c.epochs else None

    def _stalled(self, epochs: int) -> bool:
        """The recipe's rule (`recipe.stalled`): the last `epochs` epochs' val top-1 error at chance."""
        return stalled([e.val_top1_err for e in self.epochs], self.num_classes, epochs)

    def _end_reason(self) -> str:
        """What the record says ended the run: a run whose last epochs were at chance is "stalled",
        however it ended."""
        if self._stalled(min(NOT_LEARNING_EPOCHS, len(self.epochs))):
            return "stalled"
        return self._stopped_by() or "epoch cap"

    # -- setup ----------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Load the data and check it against the recipe (a batch per epoch, the classes of the run
        it fine-tunes); nothing is written, so that bad input leaves nothing behind."""
        if self.prepared:
            return
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
        check_one_batch(len(self.dataset.train), self.per_rank_batch, dist.world_size)
        if c.init_from:
            source = store.read_run(self.results_dir, store.find_run(self.results_dir, c.init_from))
            if source is not None and source.num_classes != self.num_classes:
                raise VggbenchError(
                    f"--init-from {source.id}: that run has {source.num_classes} classes, this dataset "
                    f"{self.num_classes}; fine-tune from a run on the same classes"
                )
        self.prepared = True

    def _load_data(self) -> None:
        c, dist = self.config, self.dist
        self.prepare()
        self.stats = rgb_statistics(self.dataset.train, self.results_dir / "cache")
        self.scale = c.train_scale
        self.q_paper, self.q_pixels = self.resolved.test_scale, self.resolved.test_pixels
        # The loader's batch is per process; its draws depend on (seed, epoch, batch) only, so resuming
        # and data parallelism see the same crops, flips and colour shifts as one uninterrupted process.
        self.train_set = self._train_set()
        self.loader = TrainLoader(
            self.train_set.imageset,
            TrainAugment(c.crop, self.scale, self.stats, input_range=c.input_range),
            self.per_rank_batch,
            self.device,
            c.seed,
            rank=dist.rank,
            world_size=dist.world_size,
            drop_last=True,
            workers=c.workers,
        )

    def _train_set(self) -> TrainSet:
        """The training images as the loader reads them: a folder that fits the cache budget decoded
        once and mapped from the cache. Rank 0 builds the cache before the other ranks look, so every
        rank maps the same file."""
        c, dist = self.config, self.dist
        if dist.enabled and not dist.is_main:
            td.barrier()
        train_set = cached_train_set(
            self.dataset.train,
            self.resolved.train_pixels[1],
            self.cache,
            device=self.device,
            threads=c.workers or None,
            warn=self.log.warning,
            note=self.log.line,
        )
        if dist.enabled and dist.is_main:
            td.barrier()
        if train_set.built:
            self.log.line(
                f"decoded {len(train_set.imageset)} training images in {train_set.decode_s:.1f} s into "
                f"{train_set.file} (later runs map it)"
            )
        return train_set

    def _build_model(self) -> None:
        c = self.config
        self.spec = c.model_spec(self.num_classes)
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
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_model = DistributedDataParallel(self.model, device_ids=ids)
        if c.compile:
            self.step_model = torch.compile(self.step_model)

    def _initialise(self) -> InitInfo:
        """Initial weights per the config; returns what the record says about them."""
        c = self.config
        if c.init == "preinit":
            info = self._preinit()
        else:
            info = self._random_init(c.init, c.init_std)
        if c.init_from:
            info.scheme = self._load_init_from()
        return info

    def _random_init(self, scheme: str, std: float) -> InitInfo:
        """Draw every weight with `scheme` (the seed's generator); what the record says about it."""
        spec, generator = self.spec, torch.Generator().manual_seed(self.config.seed)
        spread = input_std(self.stats, self.config.input_range)
        init_weights(self.model, scheme, std, generator, input_std=spread)
        if scheme == "paper":
            return InitInfo(scheme, std, random=scheme, layer_std=paper_layer_stds(spec, std)[-1])
        return InitInfo(scheme, random=scheme, input_std=spread)

    def _preinit(self) -> InitInfo:
        """Copy A's first four convs and three FC layers from a stored run; the other layers are drawn
        with the source run's own random scheme (the paper's normal init for its A)."""
        c = self.config
        record, source = load_run(self.results_dir, c.preinit_from)
        if record.net != "A":
            self.log.line(
                f"note: pre-initialising from run {record.id}, a net {record.net} (the paper uses net A)"
            )
        scheme = record.init.random or "kaiming"
        info = self._random_init(scheme, record.init.std or c.init_std)
        copied = preinit_from(self.model, source.state_dict(), source.spec, c.preinit_mapping)
        self.log.line(
            f"pre-initialised from run {record.id}: copied {len(copied)} layers "
            f"({', '.join(copied) or 'none'}); the rest random ({scheme}, as the source run)"
        )
        info.scheme = f"preinit (rest {scheme})"
        info.preinit_from, info.preinit_mapping, info.copied_layers = (
            record.id,
            c.preinit_mapping,
            list(copied),
        )
        return info

    def _load_init_from(self) -> str:
        """Start from a stored run's weights (fine-tuning); returns the init scheme's name."""
        record, source = load_run(self.results_dir, self.config.init_from)
        try:
            load_state(self.model, source.state_dict())
        except VggbenchError as error:
            raise VggbenchError(
                f"--init-from {record.id} (config {record.net}, width {record.width}, crop {record.crop}): "
                f"{error}"
            ) from None
        return f"init-from {record.id}"

    def _start(self, checkpoint: Checkpoint | None) -> None:
        """The run's state before its first epoch: empty, or the checkpoint's."""
        self.epochs: list[EpochMetrics] = []
        self.warnings: list[str] = []
        self.elapsed, self.started = 0.0, time.perf_counter()
        self.start_epoch, self.start_step = 0, 0
        self.partial: PartialEpoch | None = None
        self.rng: dict | None = None
        if checkpoint is None:
            return
        restore(checkpoint, self.folder / LAST_CHECKPOINT, self.model, self.optimizer)
        self.schedule.load_state_dict(checkpoint.schedule)
        self.epochs, self.warnings = list(checkpoint.epochs), list(checkpoint.warnings)
        self.init_info, self.elapsed = checkpoint.init, checkpoint.elapsed
        self.start_epoch, self.start_step, self.partial = (
            checkpoint.epoch,
            checkpoint.step,
            checkpoint.partial,
        )
        self.rng = checkpoint.rng
        self.log.line(
            f"resuming run {self.run_id} after epoch {self.start_epoch}"
            + (f", step {self.start_step}" if self.start_step else "")
        )

    def _describe(self) -> str:
        c = self.config
        micro = self.per_rank_batch // self.accumulation
        return (
            f"run {self.run_id}: {c.net} width {c.width:g} crop {c.crop} S={c.scale} (Q={self.q_paper}, "
            f"{self.q_pixels} px) on {self.dataset.name} ({len(self.dataset.train)} train / "
            f"{len(self.dataset.val)} val, {self.num_classes} classes), init {self.init_info.scheme}, "
            f"batch {c.batch_size}"
            + (f" = {self.accumulation} x {micro}" if self.accumulation > 1 else "")
            + (f" over {self.dist.world_size} processes" if self.dist.enabled else "")
            + f", device {self.device}"
            + "".join(f", {name}" for name, on in self._device_options().items() if on)
        )

    def _device_options(self) -> dict[str, bool]:
        """How the device ran the run (bf16 changes its numbers; the others only its speed)."""
        c = self.config
        return {"bf16": c.bf16, "channels_last": c.channels_last, "compile": c.compile}

    # -- one epoch ------------------------------------------------------------------------------

    def _epoch(self, epoch: int) -> EpochMetrics:
        """Train one epoch (from `start_step` when resuming inside it); the epoch's metrics."""
        steps = self.loader.batches_per_epoch
        resume_step = self.start_step if epoch == self.start_epoch else 0
        partial = self.partial if resume_step else None
        epoch_rng = self._seed_epoch(epoch)
        loop = StepLoop(
            self.step_model,
            self.optimizer,
            self.device,
            accumulation=self.accumulation,
            autocast=autocast(self.device, bf16=self.config.bf16),
            channels_last=self.channels_last,
            done=resume_step,
        )
        if partial:
            loop.loss_sum += partial.loss_sum.to(self.device)
        self.model.train()
        started = time.perf_counter()
        interval = Interval(resume_step)
        batches = self.loader.epoch(epoch)
        for step, (x, y) in enumerate(batches):
            if step < resume_step:  # drawn again so that the loader's RNG moves as it did before
                continue
            if step == resume_step and partial:
                torch.set_rng_state(partial.dropout_rng)
            mean = loop.step(x, y, last=step + 1 == steps)
            if mean is not None:
                self._check_loss(mean, epoch, loop.done)
                rate = interval.images_per_s(loop.done, self.config.batch_size)
                self.log.step(StepProgress(epoch + 1, self.config.epochs, loop.done, steps, mean, rate))
            if loop.done < steps and self._interrupted(synced=mean is not None):
                train_s = time.perf_counter() - started + (partial.train_s if partial else 0.0)
                self._stop_inside_epoch(epoch, loop, epoch_rng, train_s)
        if hasattr(batches, "close"):
            batches.close()
        synchronize(self.device)
        return self._epoch_metrics(epoch, loop, time.perf_counter() - started, resume_step, partial)

    def _seed_epoch(self, epoch: int) -> dict:
        """Set the RNGs for an epoch; returns their state at its start (what a checkpoint inside it keeps)."""
        if epoch == self.start_epoch and self.rng is not None:
            set_rng_state(self.rng)  # resuming: the RNG state at the start of this epoch
        epoch_rng = rng_state()
        # dropout masks: a function of (seed, epoch, rank)
        torch.manual_seed(mix_seed("dropout", self.config.seed, epoch, self.dist.rank))
        return epoch_rng

    def _stop_inside_epoch(self, epoch: int, loop: StepLoop, epoch_rng: dict, train_s: float) -> NoReturn:
        """Ctrl-C between two steps: save where the epoch stands and stop."""
        partial = PartialEpoch(loop.loss_sum.cpu(), torch.get_rng_state(), train_s)
        self.rng = epoch_rng
        path = self._save(epoch, loop.done, partial)
        raise TrainingInterrupted(
            f"interrupted in epoch {epoch + 1} at step {loop.done} of {self.loader.batches_per_epoch}; "
            f"checkpoint saved to {path}",
            self.flag.signum,
        )

    def _epoch_metrics(
        self, epoch: int, loop: StepLoop, elapsed: float, resume_step: int, partial: PartialEpoch | None
    ) -> EpochMetrics:
        """The epoch's training metrics (the loss averaged over ranks), after the divergence checks."""
        steps = self.loader.batches_per_epoch
        if self.dist.enabled:
            td.all_reduce(loop.loss_sum, op=td.ReduceOp.SUM)
            loop.loss_sum /= self.dist.world_size
        train_loss = loop.loss_sum.item() / steps
        self._check_loss(train_loss, epoch, steps)
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            self._diverged(float("nan"), epoch, steps)
        data_time = float(getattr(self.loader, "data_time", 0.0) or 0.0)
        return EpochMetrics(
            epoch=epoch + 1,
            train_loss=train_loss,
            lr=self.schedule.lr,
            wall_s=elapsed + (partial.train_s if partial else 0.0),
            images_per_s=(steps - resume_step) * self.config.batch_size / max(elapsed, 1e-9),
            data_time_fraction=min(1.0, data_time / max(elapsed, 1e-9)),
        )

    def _interrupted(self, synced: bool) -> bool:
        """Whether Ctrl-C was pressed. Under DDP the ranks agree on it at the steps where the loop
        synced with the host anyway (`synced`), so that all of them stop at the same step."""
        if not self.dist.enabled:
            return self.flag.set
        if not synced:
            return False
        flag = torch.tensor([1.0 if self.flag.set else 0.0], device=self.device)
        td.all_reduce(flag, op=td.ReduceOp.MAX)
        return bool(flag.item())

    def _check_loss(self, loss: float, epoch: int, step: int) -> None:
        if not math.isfinite(loss) or loss > EXPLODING_LOSS * math.log(max(self.num_classes, 2)):
            self._diverged(loss, epoch, step)

    def _diverged(self, loss: float, epoch: int, step: int) -> NoReturn:
        last = self.folder / LAST_CHECKPOINT
        kept = (
            f"the last good checkpoint (epoch {epoch}) is kept at {last}"
            if last.exists()
            else "no checkpoint was written"
        )
        raise VggbenchError(
            f"training diverged: loss {loss:.4g} in epoch {epoch + 1} at step {step} "
            f"(lr {self.schedule.lr:g}); {kept}; try a lower --lr or another --init"
        )

    # -- after an epoch -------------------------------------------------------------------------

    def _after_epoch(self, epoch: int, metrics: EpochMetrics) -> None:
        """Validate, step the schedule, log, checkpoint, call the hook, honour Ctrl-C."""
        t0 = time.perf_counter()
        metrics.val_top1_err, metrics.val_top5_err = self._validate()
        metrics.val_s = time.perf_counter() - t0
        decreased = self.schedule.step(metrics.val_top1_err)
        self.epochs.append(metrics)
        self.log.line(
            f"epoch {metrics.epoch}/{self.config.epochs}: loss {metrics.train_loss:.4f}, val top-1 err "
            f"{metrics.val_top1_err:.2f}% top-5 err {metrics.val_top5_err:.2f}%, lr {metrics.lr:g}, "
            f"{metrics.images_per_s:.0f} img/s, data {100 * metrics.data_time_fraction:.0f}% of train time"
            + (f"; lr -> {self.schedule.lr:g}" if decreased else "")
        )
        self._warn_if_not_learning()
        self.rng, self.partial, self.start_step = rng_state(), None, 0
        self._save(epoch + 1, 0)
        if self.dist.is_main:
            write_epochs_csv(self.folder, self.epochs)
        if self.on_epoch_end is not None:
            end = EpochEnd(epoch + 1, dataclasses.replace(metrics), self.model, self.optimizer, self.schedule)
            self.on_epoch_end(end)
        if self.flag.set:
            raise TrainingInterrupted(
                f"interrupted after epoch {epoch + 1}; checkpoint saved to {self.folder / LAST_CHECKPOINT}",
                self.flag.signum,
            )

    def _validate(self) -> tuple[float, float]:
        """(top-1, top-5) validation error, measured on rank 0 and shared with the other ranks."""
        top1 = top5 = 0.0
        if self.dist.is_main:
            top1, top5 = validate(
                self.model,
                self.dataset.val,
                self.q_pixels,
                self.stats,
                self.device,
                input_range=self.config.input_range,
                batch_size=max(self.per_rank_batch // self.accumulation, 1),
                channels_last=self.channels_last,
                bf16=self.config.bf16,
            )
        if self.dist.enabled:
            shared = torch.tensor([top1, top5], dtype=torch.float64, device=self.device)
            td.broadcast(shared, src=0)
            top1, top5 = shared.tolist()
        return top1, top5

    def _warn_if_not_learning(self) -> None:
        """Warn once when the run is not learning (the recipe's rule, `recipe.not_learning`)."""
        if self.warnings or not not_learning([e.val_top1_err for e in self.epochs], self.num_classes):
            return
        fix = (
            "VGG without batch norm often stalls with the paper's small normal init: try --init glorot "
            "(the default), or --init preinit from a trained A as the paper did"
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

    def _save(self, epoch: int, step: int, partial: PartialEpoch | None = None) -> Path:
        """Write the checkpoint (rank 0); `epoch` epochs and `step` steps of the next are done."""
        path = self.folder / LAST_CHECKPOINT
        if self.dist.is_main:
            Checkpoint(
                run_id=self.run_id,
                config=dataclasses.asdict(self.config),
                epoch=epoch,
                step=step,
                model=self.model.state_dict(),
                optimizer=self.optimizer.state_dict(),
                schedule=self.schedule.state_dict(),
                rng=self.rng,
                epochs=self.epochs,
                init=self.init_info,
                warnings=self.warnings,
                elapsed=self.elapsed + (time.perf_counter() - self.started),
                partial=partial,
            ).save(path)
        return path

    # -- the record -----------------------------------------------------------------------------

    def _finish(self) -> RunRecord:
        """Write the final weights and the record (rank 0), remove the checkpoint; the record."""
        record = self._record()
        if self.dist.is_main:
            weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
            save_torch(weights, self.folder / FINAL_WEIGHTS)
            store.write_run(self.results_dir, record)
            (self.folder / LAST_CHECKPOINT).unlink(missing_ok=True)
        if self.dist.enabled:
            td.barrier()
        return record

    def _record(self) -> RunRecord:
        c, epochs = self.config, self.epochs
        train_s = sum(e.wall_s for e in epochs)
        images = len(epochs) * self.loader.batches_per_epoch * c.batch_size
        return RunRecord(
            id=self.run_id,
            net=c.net,
            model=self.spec.to_dict(),
            config=dataclasses.asdict(c),
            data=c.data_source(),
            data_fingerprint=c.data_fingerprint,
            dataset=self.dataset.name,
            classes=list(self.dataset.classes),
            train_images=len(self.dataset.train),
            skipped_images=self.dataset.skipped,
            val_images=len(self.dataset.val),
            seed=c.seed,
            width=c.width,
            crop=c.crop,
            train_scale=c.scale,
            train_scale_pixels=list(self.resolved.train_pixels),
            input_range=c.input_range,
            val_scale=self.q_paper,
            val_scale_pixels=self.q_pixels,
            init=self.init_info,
            init_from=c.init_from,
            recipe=self._recipe(),
            epochs=list(epochs),
            stopped_by=self._end_reason(),
            val_slope=val_slope([e.val_top1_err for e in epochs]),
            warnings=list(self.warnings),
            checkpoint=str((self.folder / FINAL_WEIGHTS).relative_to(self.results_dir)),
            wall_time_s=self.elapsed + (time.perf_counter() - self.started),
            train_time_s=train_s,
            images_per_s=images / max(train_s, 1e-9),
            data_time_fraction=sum(e.data_time_fraction * e.wall_s for e in epochs) / max(train_s, 1e-9),
            train_data=self.train_set.path,
            device=str(self.device) + (f" x{self.dist.world_size}" if self.dist.enabled else ""),
            device_options=self._device_options(),
            world_size=self.dist.world_size,
            machine=machine_name(machine_info(self.device)),
            torch_version=torch.__version__,
            code_version=self.code_version,
            created=utc_now(),
            argv=current_command(),
            package_version=package_version(),
        )

    def _recipe(self) -> Recipe:
        c = self.config
        return Recipe(
            lr=c.lr,
            momentum=c.momentum,
            weight_decay=c.weight_decay,
            dropout=c.dropout,
            batch_size=c.batch_size,
            accumulation=self.accumulation,
            epochs=c.epochs,
            patience=c.patience,
            max_lr_decreases=c.max_lr_decreases,
            stop=c.stop,
            lr_decreases=self.schedule.decreases,
            final_lr=self.schedule.lr,
        )
