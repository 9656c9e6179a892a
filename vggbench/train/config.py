"""The config that defines a training run, its id, and the defaults of the recipe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from vggbench import paper, store
from vggbench.checks import SEED_LIMIT, in_range, positive, valid_seed
from vggbench.data import INPUT_RANGES
from vggbench.data.sources import beyond_split, check_data_options, data_fingerprint, data_kind, split_sizes
from vggbench.errors import VggbenchError
from vggbench.models import INIT_SCHEMES, PREINIT_MAPPINGS, ModelSpec
from vggbench.scales import TrainScale, parse_train_scale

INIT_CHOICES = INIT_SCHEMES + ("preinit",)
#: Glorot's init, which the paper says also trains its nets without pre-training. On the paper's
#: 0-255 input Kaiming's larger gain diverged or died at lr 0.005-0.01 for A at width 1/8, while
#: Glorot trained A at 0.01 and C, D, E at 0.005 (Fashion-MNIST, see the notes); the paper's normal
#: init leaves A at chance for the first epochs at this scale. `--init paper` reproduces the paper.
DEFAULT_INIT = "glorot"
DEFAULT_INIT_STD = 0.01  # the paper's "10^-2 variance" as commonly implemented (std 0.1 literally)
DEFAULT_EPOCHS = 10  # the paper trained 74 epochs on ImageNet; pass --epochs 74 to match
DEFAULT_PATIENCE = 2  # the paper does not say how long "stops improving" is
#: How a run ends: after `epochs` epochs, or by the paper's rule (after the lr was divided by 10
#: `max_lr_decreases` times, at the next plateau) with `epochs` as a cap.
STOP_RULES = ("epochs", "schedule")


def _execution(default: Any) -> Any:
    """A field that says how to run, not what: it does not enter the run id."""
    return field(default=default, metadata={"identity": False})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. `run_id` hashes the identity fields (not the
    execution fields: data location, device batch limit, determinism, compilation, memory format,
    workers) of the config `resolved` against its data: with the data's fingerprint, so that changed
    images make another run, and without limits that take a whole split."""

    # model (num_classes comes from the dataset)
    net: str = "A"  # Table 1 name; the CLI's --config
    width: float = 1.0
    crop: int = paper.PAPER_CROP
    fc_width: int | None = None
    dropout: float = paper.DROPOUT
    lrn_alpha: float = paper.LRN_ALPHA  # Krizhevsky's alpha; only nets with LRN use it
    # data, preprocessing and scale
    data: str = "synthetic"
    limit_train: int | None = None
    limit_val: int | None = None
    val_split: float | None = None
    skip_bad_images: bool = False
    #: data.fingerprint of the files `data` (and `data_root`) name; None: computed when needed
    #: (`resolved`), so a stored config keeps the fingerprint of the data it trained on
    data_fingerprint: str | None = None
    input_range: str = paper.INPUT_RANGE  # "0-255" (Caffe, the paper) or "0-1" (pixels / 255)
    scale: str = "256"  # paper units: "256", "384" or a jitter range "256:512"
    # initialisation
    init: str = DEFAULT_INIT
    init_std: float = DEFAULT_INIT_STD
    preinit_from: str | None = None
    preinit_mapping: str = "stage"
    init_from: str | None = None
    # recipe
    lr: float | None = None  # None: the paper's, 1e-3 when fine-tuning (init_from), else 1e-2
    momentum: float = paper.MOMENTUM
    weight_decay: float = paper.WEIGHT_DECAY
    batch_size: int = paper.BATCH_SIZE
    epochs: int = DEFAULT_EPOCHS
    patience: int = DEFAULT_PATIENCE
    max_lr_decreases: int = paper.MAX_LR_DECREASES
    stop: str = "epochs"  # or "schedule": the paper's stopping rule, `epochs` being the cap
    seed: int = 0
    bf16: bool = False  # bf16 autocast in training and validation: changes the numbers, so in the id when on
    # execution
    data_root: str | None = _execution(None)
    download: bool = _execution(False)
    max_device_batch: int | None = _execution(None)
    deterministic: bool = _execution(False)
    compile: bool = _execution(False)
    #: NHWC convolutions: only float rounding differs, and it was faster on the 2-core CPU too (README)
    channels_last: bool = _execution(True)
    workers: int = _execution(0)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        model = self.model_spec(1)  # validates net, width, crop, dropout, fc width
        set_(self, "net", model.architecture.name)
        set_(self, "scale", str(parse_train_scale(self.scale)))
        if self.lr is None:  # stored resolved, so that the run id and the record say which
            set_(self, "lr", paper.FINETUNE_LEARNING_RATE if self.init_from else paper.LEARNING_RATE)
        self._check_init()
        check_data_options(self.data, self.data_root, self.download, self.skip_bad_images)
        for ok, message in self._recipe_checks():
            if not ok:
                raise VggbenchError(message)

    def _check_init(self) -> None:
        if self.init not in INIT_CHOICES:
            raise VggbenchError(f"unknown init {self.init!r}; choose one of {', '.join(INIT_CHOICES)}")
        if self.init == "preinit" and not self.preinit_from:
            raise VggbenchError("--init preinit needs --preinit-from RUN, a stored run of net A")
        if self.preinit_from and self.init != "preinit":
            raise VggbenchError("--preinit-from needs --init preinit")
        if self.preinit_mapping not in PREINIT_MAPPINGS:
            raise VggbenchError(
                f"unknown pre-init mapping {self.preinit_mapping!r}; "
                f"choose one of {', '.join(PREINIT_MAPPINGS)}"
            )
        if self.init_from and self.init == "preinit":
            raise VggbenchError("--init-from and --init preinit both set the initial weights; use one")
        if not positive(self.init_std):
            raise VggbenchError(
                f"init std {self.init_std} must be positive and finite; "
                "the paper's is 0.01 (or 0.1 literally)"
            )

    def _recipe_checks(self) -> list[tuple[bool, str]]:
        """(condition, the error when it fails) for each number of the recipe and the data."""
        return [
            (
                positive(self.lr),
                f"learning rate {self.lr} must be a finite positive number; the paper's is 0.01",
            ),
            (
                in_range(self.momentum, 0, 1, high_open=True),
                f"momentum {self.momentum} must be in [0, 1); the paper's is 0.9",
            ),
            (
                in_range(self.weight_decay, 0),
                f"weight decay {self.weight_decay} must be a finite number of at least 0; "
                "the paper's is 5e-4",
            ),
            (
                valid_seed(self.seed),
                f"seed {self.seed} must be a whole number in [0, 2^63 = {SEED_LIMIT}); use e.g. 0, 1, 2",
            ),
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
                self.val_split is None or in_range(self.val_split, 0, 1, low_open=True, high_open=True),
                f"--val-split {self.val_split} must be in (0, 1)",
            ),
            (self.workers >= 0, f"workers {self.workers} must be at least 0"),
            (
                self.stop != "schedule" or self.epochs >= self.patience,
                f"epoch cap {self.epochs} is below the patience {self.patience}: the schedule could never "
                "lower the lr; raise --epochs or lower --patience",
            ),
            (
                self.stop != "schedule" or self.max_lr_decreases >= 1,
                "the schedule's stopping rule needs lr decreases (it stops at the plateau after the last "
                "one), but max lr decreases is 0 (a fixed lr); use --stop epochs or allow decreases",
            ),
            (
                self.stop in STOP_RULES,
                f"unknown stopping rule {self.stop!r}; choose epochs (train --epochs) or schedule "
                "(the paper's: stop at the plateau after the last lr decrease, --epochs as a cap)",
            ),
            (
                self.input_range in INPUT_RANGES,
                f"unknown input range {self.input_range!r}; choose one of {', '.join(INPUT_RANGES)}",
            ),
        ]

    def model_spec(self, num_classes: int) -> ModelSpec:
        return ModelSpec(
            self.net, num_classes, self.width, self.crop, self.fc_width, self.dropout, self.lrn_alpha
        )

    def data_source(self) -> store.DataSource:
        """Which images the run trains and validates on (what its record says)."""
        return store.DataSource(
            self.data, self.data_root, self.limit_train, self.limit_val, self.val_split, self.skip_bad_images
        )

    @property
    def train_scale(self) -> TrainScale:
        return parse_train_scale(self.scale)

    def resolved(self, say: Callable[[str], None] | None = None, *, fresh: bool = False) -> TrainConfig:
        """This config with its data resolved against the files: `data_fingerprint` set (a folder
        rescanned when `fresh`), and a --limit-train / --limit-val of at least its split's size
        dropped, since the subset would be the whole split (`say` hears when a limit exceeds it;
        the run is that of no limit). A config with a fingerprint is resolved already."""
        if self.data_fingerprint is not None:
            return self
        found = data_fingerprint(
            self.data, self.data_root, val_split=self.val_split, download=self.download, fresh=fresh
        )
        limits: dict[str, int | None] = {}
        if self.limit_train is not None or self.limit_val is not None:
            sizes = split_sizes(self.data, self.data_root, self.val_split, self.skip_bad_images, found)
            for split, size in zip(("train", "val"), sizes):
                limit = getattr(self, f"limit_{split}")
                if limit is not None and limit >= size:
                    limits[f"limit_{split}"] = None
                    if limit > size and say:
                        say(beyond_split(split, limit, size, self.data, "run"))
        return replace(self, data_fingerprint=found, **limits)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config's fields (what records and checkpoints store)."""
        return asdict(self.resolved())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def identity(self) -> dict[str, Any]:
        """The fields of the resolved config that define the result; options that a run ignores are
        left out, and so is an image folder's location (its fingerprint says which files it holds)."""
        resolved = self.resolved()
        out = {f.name: getattr(resolved, f.name) for f in fields(self) if f.metadata.get("identity", True)}
        if data_kind(out["data"]) == "imagefolder":
            out["data"] = "imagefolder"
        if self.init != "paper":
            out.pop("init_std")
        if self.init != "preinit":
            out.pop("preinit_mapping")
        if not self.model_spec(1).has_lrn:
            out.pop("lrn_alpha")
        if not self.bf16:  # fp32 runs keep the ids they had before the option existed
            out.pop("bf16")
        return out

    @property
    def run_id(self) -> str:
        return store.record_id(self.identity())
