"""The results store: one JSON record per run and per evaluation, written atomically, and the
typed records themselves (`RunRecord`, `EvalRecord`).

Layout: <root>/<kind>/<id>.json, kind being "runs", "evals", "ablations" or "bench". A record's id
derives from what defines it, so asking for the same thing twice finds the stored record. Records
carry a `schema` number: a record of another schema is refused with a one-line error (regenerate it),
never half-read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, BinaryIO

from vggbench import fs
from vggbench.errors import VggbenchError

DEFAULT_ROOT = Path("results")
RUNS, EVALS = "runs", "evals"
SCHEMA = 4  # 4: the data fingerprint in every run id; 3: the paper's 0-255 input, LRN alpha, width-scaled
#: init; 2: typed records; 1: untyped dicts


def record_id(config: dict[str, Any], length: int = 12) -> str:
    """A stable id for a config: the hash of its canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write via a temporary file, fsync and rename, so a reader never sees half a file and an
    interrupted or failed write (a full disk) leaves the old file as it was and no temporary file
    (records, reports, checkpoints). The file is created with the process's umask (0644 under 022),
    so that a store shared on a cluster is readable to colleagues. A symbolic link is followed: its
    target is replaced, the link kept. A device, a FIFO or /dev/stdout is written through as it is
    (`fs.replaceable`), never replaced by a regular file, and opened to append: /dev/stdout
    redirected to a file keeps what was printed before. An OSError is a one-line
    `fs.FileSystemError`, and so is a RuntimeError of `write` (torch.save's on a full disk)."""
    path = Path(path)
    with fs.writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        target = fs.replaceable(path)
        if target is None:
            with open(path, "ab") as handle:
                _write_reporting_errno(write, handle)
            return
        fd, tmp = _create_temporary(target)
        try:
            with os.fdopen(fd, "wb") as handle:
                _write_reporting_errno(write, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise


def _write_reporting_errno(write: Callable[[BinaryIO], object], handle: BinaryIO) -> None:
    """`write(handle)`, an OSError of a write inside raised as itself: torch.save reports one (a
    full disk) as a RuntimeError ("unexpected pos ...") that names neither the file nor the reason."""
    recording = _Recording(handle)
    try:
        write(recording)  # type: ignore[arg-type]
    except RuntimeError:
        if recording.error is None:
            raise
        raise recording.error from None


class _Recording:
    """A binary handle that remembers the OSError of its last failed write; the rest is the handle's."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.error = handle, None

    def write(self, data: bytes) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new hidden file beside `path`, opened for writing with mode 0666 less the umask (what
    open() gives; tempfile.mkstemp would make it 0600 whatever the umask)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue


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
    return load_record(path)


def record_paths(root: Path, kind: str) -> list[Path]:
    """The record files of a kind, oldest file first."""
    folder = Path(root) / kind
    if not folder.is_dir():
        return []
    with fs.reading(folder):
        return sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))


def read_records(root: Path, kind: str) -> list[dict[str, Any]]:
    """Every record of a kind, oldest file first."""
    return [load_record(p) for p in record_paths(root, kind)]


def read_torch_file(path: Path, what: str, fix: str) -> Any:
    """torch.load on the CPU with weights only; an unreadable file is a VggbenchError that names
    the file (as `what`) and the fix."""
    import torch

    if _magic(path) not in TORCH_MAGIC:
        raise VggbenchError(
            f"cannot read {what} {path}: not a torch file (neither torch.save's zip nor a pickle); {fix}"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise VggbenchError(f"cannot read {what} {path}: {_first_reason(error)}; {fix}") from None


#: The first bytes of what torch.save writes: a zip archive, or a pickle of the legacy format.
TORCH_MAGIC = (b"PK", b"\x80")


def _magic(path: Path) -> bytes:
    with open(path, "rb") as handle:
        head = handle.read(2)
    return head if head.startswith(b"PK") else head[:1]


def _first_reason(error: Exception) -> str:
    """torch's text runs to many lines (how to allow unsafe globals); the one that says what failed,
    and for a global the weights-only unpickler refused, what it was."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    unpickler = [line for line in lines if line.startswith("WeightsUnpickler error")]
    refused = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", " ".join(lines))
    if refused:
        return f"it holds more than weights ({refused.group(1)}, refused: loading it could run code)"
    return (unpickler or lines or [type(error).__name__])[0]


def load_record(path: Path) -> dict[str, Any]:
    """One record file's JSON object; anything else (bad JSON, a list, a number) is corrupt."""
    try:
        with fs.reading(path):
            text = path.read_text()
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8 text"
        raise _corrupt(str(path), reason) from None
    if not isinstance(data, dict):
        raise _corrupt(str(path), f"a JSON {type(data).__name__}, not an object")
    return data


def find_run(root: Path, run_id_or_prefix: str) -> str:
    """The full id of a stored run from its id or a unique prefix (as git takes commits)."""
    folder = Path(root) / RUNS
    prefix = str(run_id_or_prefix).strip()
    if not prefix:
        raise VggbenchError("empty run id; give a run id from results/runs (a unique prefix is enough)")
    # matched as text, never as a glob pattern: '*' or 'a[b' in an id is a typo, not a wildcard
    stems = (p.stem for p in folder.glob("*.json")) if folder.is_dir() else ()
    matches = sorted(stem for stem in stems if stem.startswith(prefix))
    if not matches:
        raise VggbenchError(f"no stored run {prefix!r} in {folder}; train it first or check --results-dir")
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise VggbenchError(f"run id {prefix!r} is ambiguous in {folder} ({shown}); give more characters")
    return matches[0]


# --- Typed records ----------------------------------------------------------------------------


#: What a corrupt record's message says to do.
RECORD_FIX = "delete it and rerun the command that made it"


def _typed(cls: type, data: Any, where: str, kind: str = "record", fix: str = RECORD_FIX) -> Any:
    """A dataclass from its JSON dict: unknown keys are ignored, a missing key or a value of the
    wrong JSON type (a number where a list belongs) is an error ("corrupt KIND WHERE: ...; FIX").
    Nested dataclasses are checked as objects here and converted by the caller."""
    if not isinstance(data, dict):
        raise VggbenchError(
            f"corrupt {kind} {where}: expected an object for {cls.__name__}, found {_json_type(data)}; {fix}"
        )
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in known & data.keys():
        if not _matches(data[key], hints[key]):
            raise VggbenchError(
                f"corrupt {kind} {where}: {cls.__name__}.{key} is {_json_type(data[key])} "
                f"{data[key]!r:.40}, expected {_hint_name(hints[key])}; {fix}"
            )
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except TypeError as error:
        raise VggbenchError(f"corrupt {kind} {where}: {error}; {fix}") from None


def _corrupt(where: str, problem: str) -> VggbenchError:
    return VggbenchError(f"corrupt record {where}: {problem}; {RECORD_FIX}")


def _check_named_by_id(record_id_: str, where: str) -> None:
    """A record file is named by its record's id (`write_record`): one whose id differs was renamed,
    copied or edited, and `find_run` (by file name) would find a record of another run."""
    if where.endswith(".json") and Path(where).stem != record_id_:
        raise _corrupt(where, f"its id {record_id_!r:.40} is not its file name's")


def _check_in_store(relative: str, where: str) -> None:
    """A path a record names inside the store (a run's weights): relative, without '..', so that
    reading it never reads a file outside the store."""
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise _corrupt(where, f"its checkpoint {relative!r:.60} is not a path inside the store")


def _check_epochs(epochs: list, where: str) -> None:
    """A run's epochs are 1, 2, ..., n with n >= 1 (a run trains at least one)."""
    if not epochs:
        raise _corrupt(where, "it has no epochs (a run trains at least one)")
    numbers = [e.epoch for e in epochs]
    if numbers != list(range(1, len(epochs) + 1)):
        raise _corrupt(where, f"its epochs are numbered {numbers[:5]}, not 1 to {len(epochs)}")


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type hint: int, float (an int fits), str, bool, None,
    list[X], dict, Any, unions, and dataclasses (an object; `_typed` converts it)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin is list or hint is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value if args)
    if origin is dict or hint is dict or is_dataclass(hint):
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _hint_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) and not typing.get_args(hint) else str(hint)


def _check_schema(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise _corrupt(where, f"expected a JSON object, found {_json_type(data)}")
    if "schema" not in data and "id" not in data:  # records of every schema have an id
        raise _corrupt(where, "no id and no schema, not a vggbench record")
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
    #: data.fingerprint of the files it trained on (part of its id): `eval` notes when they changed
    data_fingerprint: str | None = None
    #: bf16 autocast, channels_last, torch.compile; {} in records made before they were recorded
    device_options: dict[str, bool] = field(default_factory=dict)
    status: str = "complete"
    kind: str = "run"
    schema: int = SCHEMA
    #: how the training images reached the loader: "in memory", "streamed" or "cached" (an image
    #: folder decoded once, data.cache); "" in records written before it was recorded
    train_data: str = ""
    #: the vggbench command line that made the run ([]: a library call, or a record made before it
    #: was recorded) and the package's version ("": not recorded); neither enters the id
    argv: list[str] = field(default_factory=list)
    package_version: str = ""

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
        """The record's fields, and its final val errors at top level (read back from the epochs)."""
        return {**asdict(self), "top1_err": self.top1_err, "top5_err": self.top5_err}

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> RunRecord:
        _check_schema(data, where)
        record = _typed(cls, data, where)
        record.data = _typed(DataSource, record.data, where)
        record.init = _typed(InitInfo, record.init, where)
        record.recipe = _typed(Recipe, record.recipe, where)
        record.epochs = [_typed(EpochMetrics, e, where) for e in record.epochs]
        _check_named_by_id(record.id, where)
        _check_in_store(record.checkpoint, where)
        _check_epochs(record.epochs, where)
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
        _check_named_by_id(record.id, where)
        return record


def write_run(root: Path, record: RunRecord) -> Path:
    return write_record(root, RUNS, record.id, record.to_json())


def read_run(root: Path, run_id: str) -> RunRecord | None:
    """A stored run by its full id, None when there is none."""
    data = read_record(root, RUNS, run_id)
    return None if data is None else RunRecord.from_json(data, str(Path(root) / RUNS / f"{run_id}.json"))


def read_runs(root: Path) -> list[RunRecord]:
    """Every stored run, oldest file first."""
    return [RunRecord.from_json(load_record(p), str(p)) for p in record_paths(root, RUNS)]


def write_eval(root: Path, record: EvalRecord) -> Path:
    return write_record(root, EVALS, record.id, record.to_json())


def read_eval(root: Path, identity: dict[str, Any]) -> EvalRecord | None:
    """The stored evaluation with this identity (`eval_identity`), None when there is none."""
    eval_id = record_id(identity)
    data = read_record(root, EVALS, eval_id)
    return None if data is None else EvalRecord.from_json(data, str(Path(root) / EVALS / f"{eval_id}.json"))


def read_evals(root: Path) -> list[EvalRecord]:
    """Every stored evaluation, oldest file first."""
    return [EvalRecord.from_json(load_record(p), str(p)) for p in record_paths(root, EVALS)]
