"""The results store: one JSON record per run and per evaluation, written atomically, and the
typed records themselves (`RunRecord`, `EvalRecord`).

Layout: <root>/<kind>/<id>.json, kind being "runs", "evals", "ablations" or "bench". A record's id
derives from what defines it, so asking for the same thing twice finds the stored record. Records
carry a `schema` number: a record of another schema is refused with a one-line error (regenerate it),
never half-read.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO

from vggbench.errors import VggbenchError

DEFAULT_ROOT = Path("results")
RUNS, EVALS = "runs", "evals"
SCHEMA = 3  # 3: the paper's 0-255 input, LRN alpha, width-scaled init; 2: typed records; 1: untyped dicts


def record_id(config: dict[str, Any], length: int = 12) -> str:
    """A stable id for a config: the hash of its canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write via a temporary file, fsync and rename, so a reader never sees half a file and an
    interrupted write leaves the old file as it was (records, reports, checkpoints)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def write_record(root: Path, kind: str, record_id_: str, record: dict[str, Any]) -> Path:
    path = Path(root) / kind / f"{record_id_}.json"
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return path


def read_record(root: Path, kind: str, record_id_: str) -> dict[str, Any] | None:
    path = Path(root) / kind / f"{record_id_}.json"
    if not path.exists():
        return None
    return _load(path)


def read_records(root: Path, kind: str) -> list[dict[str, Any]]:
    """Every record of a kind, oldest file first."""
    folder = Path(root) / kind
    if not folder.is_dir():
        return []
    return [_load(p) for p in sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))]


def read_torch_file(path: Path, what: str, fix: str) -> Any:
    """torch.load on the CPU with weights only; an unreadable file is a VggbenchError that names
    the file (as `what`) and the fix."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise VggbenchError(f"cannot read {what} {path}: {error}; {fix}") from None


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise VggbenchError(
            f"corrupt record {path}: {error.msg}; delete it and rerun the command that made it"
        ) from None


def find_run(root: Path, run_id_or_prefix: str) -> str:
    """The full id of a stored run from its id or a unique prefix (as git takes commits)."""
    folder = Path(root) / RUNS
    prefix = str(run_id_or_prefix).strip()
    if not prefix:
        raise VggbenchError("empty run id; give a run id from results/runs (a unique prefix is enough)")
    matches = sorted(p.stem for p in folder.glob(f"{prefix}*.json")) if folder.is_dir() else []
    if not matches:
        raise VggbenchError(f"no stored run {prefix!r} in {folder}; train it first or check --results-dir")
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise VggbenchError(f"run id {prefix!r} is ambiguous in {folder} ({shown}); give more characters")
    return matches[0]


# --- Typed records ----------------------------------------------------------------------------


def _typed(cls: type, data: Any, where: str) -> Any:
    """A dataclass from its JSON dict: unknown keys are ignored, a missing key is an error."""
    if not isinstance(data, dict):
        raise VggbenchError(f"corrupt record {where}: expected an object for {cls.__name__}")
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except TypeError as error:
        raise VggbenchError(
            f"corrupt record {where}: {error}; delete it and rerun the command that made it"
        ) from None


def _check_schema(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise VggbenchError(f"corrupt record {where}: expected a JSON object; delete it and rerun")
    if data.get("schema") != SCHEMA:
        raise VggbenchError(
            f"record {where} is of an older format (schema {data.get('schema', 1)}, this vggbench reads "
            f"{SCHEMA}); regenerate it (make reference, or rerun the command that made it) or delete it"
        )


@dataclass(frozen=True)
class DataSource:
    """Which images a run trained and validated on: `data.load_dataset`'s arguments."""

    spec: str  # "fashion-mnist", "cifar10", "imagefolder:/path", "synthetic", ...
    root: str | None = None
    limit_train: int | None = None
    limit_val: int | None = None
    val_split: float | None = None
    skip_bad_images: bool = False


@dataclass
class EpochMetrics:
    """One epoch of training and its validation (center crop at the single test scale Q)."""

    epoch: int  # 1-based
    train_loss: float
    lr: float
    wall_s: float
    images_per_s: float
    data_time_fraction: float
    val_top1_err: float = float("nan")
    val_top5_err: float = float("nan")
    val_s: float = 0.0


@dataclass
class InitInfo:
    """How a run's weights started: the scheme, its std, and what was copied from another run.

    `random` is the scheme that drew the weights nothing was copied into (for pre-init: the source
    run's); `std` is the paper scheme's std as given, for the full-width net, and `layer_std` what
    the layers after the first used at the run's width (std / sqrt(width)); `input_std` is the
    input's std that Kaiming and Glorot divided the first layer by."""

    scheme: str
    std: float | None = None
    random: str | None = None
    layer_std: float | None = None
    input_std: float | None = None
    preinit_from: str | None = None
    preinit_mapping: str | None = None
    copied_layers: list[str] = field(default_factory=list)


@dataclass
class Recipe:
    """The optimisation recipe a run used, and where its plateau schedule ended."""

    lr: float
    momentum: float
    weight_decay: float
    dropout: float
    batch_size: int
    accumulation: int
    epochs: int
    patience: int
    max_lr_decreases: int
    stop: str  # "epochs" or "schedule" (the paper's stopping rule, epochs as the cap)
    lr_decreases: int
    final_lr: float


@dataclass
class RunRecord:
    """One completed training run (<root>/runs/<id>.json).

    `config` is the run's `train.TrainConfig` as a dict (its fields define the id); the fields
    beside it are what the rest of the code reads, so no reader needs the config's keys."""

    id: str
    net: str  # Table 1 name: A, A-LRN, B, C, D, E, B-5x5
    model: dict[str, Any]  # models.ModelSpec.to_dict()
    config: dict[str, Any]
    data: DataSource
    dataset: str  # the loaded dataset's name
    classes: list[str]
    train_images: int
    skipped_images: int
    val_images: int
    seed: int
    width: float
    crop: int
    train_scale: str  # paper units: "256" or "256:512"
    train_scale_pixels: list[int]
    input_range: str  # "0-255" (the paper's) or "0-1": the scale of pixel values minus the mean RGB
    val_scale: float  # the single test scale Q of validation, paper units
    val_scale_pixels: int
    init: InitInfo
    init_from: str | None
    recipe: Recipe
    epochs: list[EpochMetrics]
    #: "schedule" (the paper's rule completed: 3 lr decreases, then a plateau), "epoch cap" or
    #: "stalled" (at chance error for its last epochs)
    stopped_by: str
    val_slope: float | None  # the val top-1 error's slope over the last epochs, points per epoch
    warnings: list[str]
    checkpoint: str  # the final weights, relative to the store's root
    wall_time_s: float
    train_time_s: float
    images_per_s: float
    data_time_fraction: float
    device: str
    world_size: int
    machine: str
    torch_version: str
    code_version: str
    created: str
    #: bf16 autocast, channels_last, torch.compile; {} in records made before they were recorded
    device_options: dict[str, bool] = field(default_factory=dict)
    status: str = "complete"
    kind: str = "run"
    schema: int = SCHEMA

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def top1_err(self) -> float:
        """The last epoch's validation top-1 error (center crop at Q, validation split)."""
        return self.epochs[-1].val_top1_err

    @property
    def top5_err(self) -> float:
        return self.epochs[-1].val_top5_err

    def recipe_key(self) -> dict[str, Any]:
        """The config without what differs between seeds of one recipe (the seed, and the ids of the
        runs it started from, which differ by seed): runs with equal keys are repeats over seeds."""
        key = {k: v for k, v in self.config.items() if k not in ("seed", "init_from", "preinit_from")}
        key.pop("channels_last", None)  # an execution field that records before it existed lack
        if not key.get("bf16"):
            key.pop("bf16", None)  # fp32, as every record made before the option existed
        key.update(
            init_from=bool(self.config.get("init_from")), preinit_from=bool(self.config.get("preinit_from"))
        )
        return key

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> RunRecord:
        _check_schema(data, where)
        record = _typed(cls, data, where)
        record.data = _typed(DataSource, record.data, where)
        record.init = _typed(InitInfo, record.init, where)
        record.recipe = _typed(Recipe, record.recipe, where)
        record.epochs = [_typed(EpochMetrics, e, where) for e in record.epochs]
        return record


@dataclass
class MemberErrors:
    """One fused model's own errors, beside the fusion's."""

    top1_err: float
    top5_err: float


@dataclass
class EvalLimits:
    """Which images an evaluation saw: the validation subset and the training split behind the mean RGB."""

    limit_val: int | None = None
    max_images: int | None = None
    val_split: float | None = None
    limit_train: int | None = None


def eval_identity(
    runs: Sequence[str],
    method: str,
    test_scales: Sequence,
    dataset: str,
    limits: EvalLimits,
    normalization: Sequence[str],
) -> dict[str, Any]:
    """What defines an evaluation: the one definition behind its id, used to write and to find it."""
    return {
        "runs": list(runs),
        "method": method,
        "test_scales": _plain(test_scales),
        "dataset": dataset,
        "limits": asdict(limits),
        "normalization": list(normalization),
    }


def _plain(scales: Sequence) -> list:
    """Scale sets as JSON lists: one shared list, or one list per fused model."""
    return [list(s) if isinstance(s, (list, tuple)) else s for s in scales]


@dataclass
class EvalRecord:
    """One evaluation (<root>/evals/<id>.json): one method, one model or a fusion, one scale set."""

    id: str
    runs: list[str]  # run ids, "checkpoint:<hash>" or "torchvision:vgg16"
    nets: list[str]  # their Table 1 names
    train_scales: list[str]  # paper units
    method: str
    test_scales: list  # paper units: one list, or one per fused model
    test_scales_px: list
    scales_spec: str  # what the user asked for: single, multi, jitter or a list
    crop: int
    dataset: str
    limits: EvalLimits
    normalization: list[str]  # per model: "train mean RGB" or a Normalization's name
    images: int
    top1_err: float
    top5_err: float
    top5_k: int  # min(5, classes): what "top-5" means here
    members: list[MemberErrors]  # each fused model alone; empty when not fused
    forward_passes_per_image: float
    macs_per_image: float
    seconds: float
    images_per_s: float
    device: str
    machine: str
    torch_version: str
    created: str
    class_counts: list[int] | None = None  # images per class of a --max-images subset; None: the whole split
    kind: str = "eval"
    schema: int = SCHEMA

    @property
    def fused(self) -> bool:
        return len(self.runs) > 1

    def identity(self) -> dict[str, Any]:
        return eval_identity(
            self.runs, self.method, self.test_scales, self.dataset, self.limits, self.normalization
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> EvalRecord:
        _check_schema(data, where)
        record = _typed(cls, data, where)
        record.limits = _typed(EvalLimits, record.limits, where)
        record.members = [_typed(MemberErrors, m, where) for m in record.members]
        return record


def write_run(root: Path, record: RunRecord) -> Path:
    return write_record(root, RUNS, record.id, record.to_json())


def read_run(root: Path, run_id: str) -> RunRecord | None:
    """A stored run by its full id, None when there is none."""
    data = read_record(root, RUNS, run_id)
    return None if data is None else RunRecord.from_json(data, str(Path(root) / RUNS / f"{run_id}.json"))


def read_runs(root: Path) -> list[RunRecord]:
    """Every stored run, oldest file first."""
    return [RunRecord.from_json(d, f"in {Path(root) / RUNS}") for d in read_records(root, RUNS)]


def write_eval(root: Path, record: EvalRecord) -> Path:
    return write_record(root, EVALS, record.id, record.to_json())


def read_eval(root: Path, identity: dict[str, Any]) -> EvalRecord | None:
    """The stored evaluation with this identity (`eval_identity`), None when there is none."""
    eval_id = record_id(identity)
    data = read_record(root, EVALS, eval_id)
    return None if data is None else EvalRecord.from_json(data, str(Path(root) / EVALS / f"{eval_id}.json"))


def read_evals(root: Path) -> list[EvalRecord]:
    """Every stored evaluation, oldest file first."""
    return [EvalRecord.from_json(d, f"in {Path(root) / EVALS}") for d in read_records(root, EVALS)]
