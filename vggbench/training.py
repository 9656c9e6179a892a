"""The paper's training recipe (Section 3.1): the loop, the plateau schedule, checkpoint/resume,
distributed data parallel, and one stored record per run.

`train(config, results_dir=...)` is the library entry point (the CLI and the ablation code call it):
- A run is identified by its `TrainConfig` (`config.run_id`, a hash of the fields that define the
  result). Asking for a stored run again returns its record instead of retraining, unless `force`.
- Recipe: SGD with momentum 0.9 and weight decay 5e-4, dropout 0.5, lr 1e-2 divided by 10 when the
  validation top-1 error has not improved for `patience` epochs, at most 3 times; batch 256, split
  into micro-batches (gradient accumulation) when it exceeds `max_device_batch`.
- Init: `paper` (normal, std `init_std`), `glorot`, `kaiming` (the default: see DEFAULT_INIT),
  `preinit` (A's first four convs and three FC layers copied from a stored run of net A), or
  `init_from` a stored run (fine-tuning, e.g. S=384 from S=256 at lr 1e-3).
- A checkpoint after every epoch (and on Ctrl-C) holds model, optimizer, schedule, epoch, step, RNG
  states and the config; `resume` continues bit-exactly on CPU.
- Validation each epoch: top-1/top-5 error of the center crop of the val images rescaled to the
  single test scale Q (Q = S, or the jitter midpoint), FC net in eval mode. The full test
  protocols (dense, multi-crop) live in vggbench/evaluate/.
- torchrun: RANK / WORLD_SIZE / LOCAL_RANK in the environment start a process group (NCCL on GPUs,
  gloo on CPU); each rank takes its slice of every global batch and DDP averages the gradients, so
  the result equals one process on the same global batch. Only rank 0 prints and writes.

Files: <results>/runs/<id>.json (the record), <results>/checkpoints/<id>/last.pt (resume state,
removed when the run completes) and model.pt (final weights, a plain FC-form state dict).
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vggbench import paper, store
from vggbench.data import DATA_SEED
from vggbench.errors import VggbenchError
from vggbench.models import (
    INIT_SCHEMES,
    PREINIT_MAPPINGS,
    VGG,
    ModelSpec,
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
from vggbench.scales import parse_train_scale, test_scales, to_pixels

RUNS = "runs"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.pt"
FINAL_WEIGHTS = "model.pt"
CHECKPOINT_FORMAT = 1

INIT_CHOICES = INIT_SCHEMES + ("preinit",)
#: The paper's normal init (std 0.01) leaves VGG-A (no batch norm) at chance for 10+ epochs at
#: width 1/8 and 32 px, and so does std 0.1 (it diverges); He et al.'s init trains from the first
#: epoch (measured on Fashion-MNIST, see the notes). `--init paper --init-std 0.01` reproduces the paper.
DEFAULT_INIT = "kaiming"
DEFAULT_INIT_STD = 0.01  # the paper's "10^-2 variance" as commonly implemented (std 0.1 literally)
DEFAULT_EPOCHS = 10  # the paper trained 74 epochs on ImageNet; pass --epochs 74 to match
DEFAULT_PATIENCE = 2  # the paper does not say how long "stops improving" is
LOG_EVERY = 20  # steps between host syncs (progress, loss checks, Ctrl-C agreement across ranks)
NOT_LEARNING_EPOCHS = 3  # warn when validation error stays at chance this many epochs
NOT_LEARNING = "the run is not learning"  # starts that warning; ablations count such runs as stalled
CHANCE_MARGIN = 1.5  # "at chance": top-1 accuracy below 1.5x the accuracy of guessing
EXPLODING_LOSS = 50.0  # x ln(classes): a mean training loss above this is divergence

Progress = Callable[[dict[str, Any]], None]
EpochHook = Callable[["EpochEnd"], None]


# --- The config that defines a run ---------------------------------------------------------------


def _execution(default: Any) -> Any:
    """A field that says how to run, not what: it does not enter the run id."""
    return field(default=default, metadata={"identity": False})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. `run_id` hashes the identity fields (not the
    execution fields: data location, device batch limit, determinism, compilation, workers)."""

    # model (num_classes comes from the dataset)
    config: str = "A"
    width: float = 1.0
    crop: int = paper.PAPER_CROP
    fc_width: int | None = None
    dropout: float = paper.DROPOUT
    # data and scale
    data: str = "synthetic"
    limit_train: int | None = None
    limit_val: int | None = None
    val_split: float | None = None
    skip_bad_images: bool = False
    scale: str = "256"  # paper units: "256", "384" or a jitter range "256:512"
    # initialisation
    init: str = DEFAULT_INIT
    init_std: float = DEFAULT_INIT_STD
    preinit_from: str | None = None
    preinit_mapping: str = "stage"
    init_from: str | None = None
    # recipe
    lr: float = paper.LEARNING_RATE
    momentum: float = paper.MOMENTUM
    weight_decay: float = paper.WEIGHT_DECAY
    batch_size: int = paper.BATCH_SIZE
    epochs: int = DEFAULT_EPOCHS
    patience: int = DEFAULT_PATIENCE
    max_lr_decreases: int = paper.MAX_LR_DECREASES
    seed: int = 0
    # execution
    data_root: str | None = _execution(None)
    download: bool = _execution(False)
    max_device_batch: int | None = _execution(None)
    deterministic: bool = _execution(False)
    compile: bool = _execution(False)
    workers: int = _execution(0)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        model = self.model_spec(1)  # validates config, width, crop, dropout, fc width
        set_(self, "config", model.architecture.name)
        set_(self, "scale", str(parse_train_scale(self.scale)))
        if self.init not in INIT_CHOICES:
            raise VggbenchError(f"unknown init {self.init!r}; choose one of {', '.join(INIT_CHOICES)}")
        if self.init == "preinit" and not self.preinit_from:
            raise VggbenchError("--init preinit needs --preinit-from RUN, a stored run of net A")
        if self.preinit_from and self.init != "preinit":
            raise VggbenchError("--preinit-from needs --init preinit")
        if self.preinit_mapping not in PREINIT_MAPPINGS:
            raise VggbenchError(
                f"unknown pre-init mapping {self.preinit_mapping!r}; choose one of {', '.join(PREINIT_MAPPINGS)}"
            )
        if self.init_from and self.init == "preinit":
            raise VggbenchError("--init-from and --init preinit both set the initial weights; use one")
        checks = [
            (
                self.init_std > 0,
                f"init std {self.init_std} must be positive; the paper's is 0.01 (or 0.1 literally)",
            ),
            (
                self.lr > 0 and math.isfinite(self.lr),
                f"learning rate {self.lr} must be positive; the paper's is 0.01",
            ),
            (0 <= self.momentum < 1, f"momentum {self.momentum} must be in [0, 1); the paper's is 0.9"),
            (self.weight_decay >= 0, f"weight decay {self.weight_decay} must be at least 0"),
            (self.batch_size >= 1, f"batch size {self.batch_size} must be at least 1"),
            (self.epochs >= 1, f"epochs {self.epochs} must be at least 1"),
            (self.patience >= 1, f"patience {self.patience} must be at least 1 epoch"),
            (self.max_lr_decreases >= 0, f"max lr decreases {self.max_lr_decreases} must be at least 0"),
            (
                self.max_device_batch is None or self.max_device_batch >= 1,
                f"max device batch {self.max_device_batch} must be at least 1",
            ),
            (
                self.limit_train is None or self.limit_train >= 1,
                f"--limit-train {self.limit_train} must be at least 1",
            ),
            (
                self.limit_val is None or self.limit_val >= 1,
                f"--limit-val {self.limit_val} must be at least 1",
            ),
            (
                self.val_split is None or 0 < self.val_split < 1,
                f"--val-split {self.val_split} must be in (0, 1)",
            ),
            (self.workers >= 0, f"workers {self.workers} must be at least 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise VggbenchError(message)

    def model_spec(self, num_classes: int) -> ModelSpec:
        return ModelSpec(self.config, num_classes, self.width, self.crop, self.fc_width, self.dropout)

    @property
    def train_scale(self):
        return parse_train_scale(self.scale)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def identity(self) -> dict[str, Any]:
        """The fields that define the result; options that a run ignores are left out."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("identity", True)}
        if self.init != "paper":
            out.pop("init_std")
        if self.init != "preinit":
            out.pop("preinit_mapping")
        return out

    @property
    def run_id(self) -> str:
        return store.record_id(self.identity())


# --- The plateau schedule ------------------------------------------------------------------------


@dataclass
class PlateauSchedule:
    """lr = base * factor^decreases; a decrease after `patience` consecutive epochs whose
    validation top-1 error is not below the best so far, at most `max_decreases` times."""

    base_lr: float
    patience: int = DEFAULT_PATIENCE
    max_decreases: int = paper.MAX_LR_DECREASES
    factor: float = paper.LR_DECAY_FACTOR
    best: float | None = None
    bad_epochs: int = 0
    decreases: int = 0

    @property
    def lr(self) -> float:
        return self.base_lr * self.factor**self.decreases

    def step(self, top1_err: float) -> bool:
        """Record an epoch's validation error; True when the lr was just decreased."""
        if self.best is None or top1_err < self.best:
            self.best, self.bad_epochs = top1_err, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience and self.decreases < self.max_decreases:
            self.decreases += 1
            self.bad_epochs = 0
            return True
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
    device, and one host sync every `LOG_EVERY` steps. `_Run._epoch` drives it and `vggbench bench`
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
    imageset,
    q_pixels: int,
    stats,
    device: torch.device,
    batch_size: int = 256,
    channels_last: bool = False,
) -> tuple[float, float]:
    """(top-1, top-5) error in percent: center crop of each val image rescaled to Q, FC net, eval mode."""
    from vggbench.data import EvalLoader, eval_preprocess, same_size_groups
    from vggbench.evaluate.protocols import center_crop

    was_training = model.training
    model.eval()
    crop = model.spec.crop
    k = min(5, model.spec.num_classes)
    correct1 = torch.zeros((), dtype=torch.long, device=device)
    correct5 = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    try:
        for images, labels in EvalLoader(imageset, batch_size, device):
            labels = torch.as_tensor(labels)
            for indices, group in same_size_groups(images):
                group_labels = labels[indices]
                x = center_crop(eval_preprocess(group, q_pixels, stats), crop)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(device, bf16=device.type == "cuda"):
                    logits = model(x)
                top = logits.float().topk(k, dim=1).indices
                group_labels = group_labels.to(device)
                correct1 += (top[:, 0] == group_labels).sum()
                correct5 += (top == group_labels[:, None]).any(dim=1).sum()
                seen += len(group_labels)
    finally:
        model.train(was_training)
    if seen == 0:
        raise VggbenchError("the validation split is empty; use --val-split or a larger --limit-val")
    return 100.0 * (1 - correct1.item() / seen), 100.0 * (1 - correct5.item() / seen)


# --- Checkpoints, stored runs --------------------------------------------------------------------


def checkpoint_dir(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / CHECKPOINTS / run_id


def has_checkpoint(results_dir: Path, config: TrainConfig) -> bool:
    """Whether an interrupted run of this config can be resumed (`train(..., resume=True)`)."""
    return (checkpoint_dir(results_dir, config.run_id) / LAST_CHECKPOINT).exists()


def _atomic_save(obj: Any, path: Path) -> None:
    store.atomic_write(path, lambda handle: torch.save(obj, handle))


def _load_checkpoint(path: Path) -> dict[str, Any]:
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


def _config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k} {a.get(k)!r} here, {b.get(k)!r} there" for k in keys if a.get(k) != b.get(k)]


def _no_checkpoint_error(results_dir: Path, config: TrainConfig) -> VggbenchError:
    """--resume without a checkpoint of this config: name the closest other checkpoint's differences."""
    mine = config.identity()
    best: tuple[int, str, list[str]] | None = None
    for path in sorted((Path(results_dir) / CHECKPOINTS).glob(f"*/{LAST_CHECKPOINT}")):
        try:
            other = TrainConfig.from_dict(_load_checkpoint(path)["config"]).identity()
        except (VggbenchError, KeyError, TypeError):
            continue
        diff = _config_differences(mine, other)
        if best is None or len(diff) < best[0]:
            best = (len(diff), path.parent.name, diff)
    message = f"nothing to resume: no checkpoint of this config (run {config.run_id}) in {Path(results_dir) / CHECKPOINTS}"
    if best:
        message += f"; checkpoint {best[1]} is of another config ({'; '.join(best[2][:3])})"
    return VggbenchError(message + "; rerun without --resume to start it")


def code_version() -> str:
    """The git commit of the source tree (with '+dirty' for local changes), else the package version."""
    here = Path(__file__).resolve().parent
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


def _rng_state() -> dict[str, Any]:
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


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"].tolist()), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError, IndexError):
            torch.cuda.set_rng_state_all(state["cuda"])


def _seed_for(*parts: int) -> int:
    """A 63-bit seed from integers (seed, epoch, rank), the same on every machine."""
    return int(store.record_id({"seed": list(parts)}, length=15), 16)


# --- Ctrl-C ---------------------------------------------------------------------------------------


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the checkpoint was saved; the message says how to resume.
    A KeyboardInterrupt, so that callers running many arms (ablations) stop too."""


class _InterruptFlag:
    """The first Ctrl-C sets a flag the loop checks between steps (so the checkpoint holds a whole
    step); a second one interrupts at once."""

    def __init__(self) -> None:
        self.set = False
        self._previous = None

    def __enter__(self) -> _InterruptFlag:
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
            state = _load_checkpoint(last)
            raise VggbenchError(
                f"run {run_id} has a checkpoint from epoch {state.get('epoch')} of {config.epochs} ({last}); "
                "pass --resume to continue it or --force to start over"
            )
        checkpoint = _load_checkpoint(last)
        stored_config = checkpoint.get("config", {})
        if TrainConfig.from_dict(stored_config).identity() != config.identity():
            diff = _config_differences(config.identity(), TrainConfig.from_dict(stored_config).identity())
            raise VggbenchError(
                f"checkpoint {last} is of another config ({'; '.join(diff[:3])}); "
                "rerun without --resume or with --force to start over"
            )
    elif resume and not force:
        raise _no_checkpoint_error(results_dir, config)

    dist = distributed_from_env()
    target = resolve_device(device, dist)
    try:
        with process_group(dist, target), determinism(config.deterministic, target):
            return _Run(config, results_dir, target, dist, _Log(dist, quiet, progress), on_epoch_end).run(
                checkpoint
            )
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:
        kept = f"the checkpoint {last} is kept" if last.exists() else "no checkpoint was written yet"
        raise TrainingInterrupted(
            f"interrupted; {kept}; rerun the same command with --resume to continue"
        ) from None


class _Run:
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
        self.log, self.on_epoch_end, self.flag = log, on_epoch_end, _InterruptFlag()
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
        _atomic_save(state, path)
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
            f"run {self.run_id}: {c.config} width {c.width:g} crop {c.crop} S={c.scale} (Q={self.q_paper}, "
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
            _set_rng_state(self.rng)  # the RNG state at the start of this epoch
        epoch_rng = _rng_state()
        torch.manual_seed(
            _seed_for(c.seed, epoch, dist.rank)
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
            if done < steps and self._interrupted(done, steps):
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

    def _interrupted(self, done: int, steps: int) -> bool:
        if not self.dist.enabled:
            return self.flag.set
        if done % LOG_EVERY and done != steps:
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
        self.rng, self.partial, self.start_step = _rng_state(), None, 0
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
            _atomic_save({k: v.detach().cpu() for k, v in self.model.state_dict().items()}, weights)
            store.write_record(self.results_dir, RUNS, self.run_id, record)
            (self.folder / LAST_CHECKPOINT).unlink(missing_ok=True)
        if self.dist.enabled:
            import torch.distributed as td

            td.barrier()
        return record
