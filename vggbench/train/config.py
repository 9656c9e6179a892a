"""The config that defines a training run (TrainConfig, its fields and checks from
`vggbench.recipe`'s settings), the config resolved against its data (`resolve`) and the run id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, make_dataclass, replace
from typing import Any

from vggbench import paper, store
from vggbench.data.sources import beyond_split, check_data_options, data_fingerprint, data_kind, split_sizes
from vggbench.errors import VggbenchError
from vggbench.models import ModelSpec
from vggbench.recipe import SETTINGS, schedule_problem
from vggbench.scales import TrainScale, parse_train_scale, test_scales, to_pixels


class _TrainConfig:
    """Everything that defines a training run: one field per setting of `recipe.SETTINGS`, and
    `data_fingerprint`. A run resolves its config once against its data (`resolve`); the run id is a
    hash of the resolved config's identity (`run_id`): with the data's fingerprint, so that changed
    images make another run, and without limits that take a whole split."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        model = self.model_spec(1)  # validates net, width, crop, dropout, fc width, LRN alpha
        set_(self, "net", model.architecture.name)
        set_(self, "scale", str(parse_train_scale(self.scale)))
        if self.lr is None:  # stored resolved, so that the run id and the record say which
            set_(self, "lr", paper.FINETUNE_LEARNING_RATE if self.init_from else paper.LEARNING_RATE)
        for setting in SETTINGS:
            problem = setting.problem(getattr(self, setting.name))
            if problem:
                raise VggbenchError(problem)
        self._check_init()
        check_data_options(self.data, self.data_root, self.download, self.skip_bad_images)
        self._check_schedule()

    def _check_init(self) -> None:
        if self.init == "preinit" and not self.preinit_from:
            raise VggbenchError("--init preinit needs --preinit-from RUN, a stored run of net A")
        if self.preinit_from and self.init != "preinit":
            raise VggbenchError("--preinit-from needs --init preinit")
        if self.init_from and self.init == "preinit":
            raise VggbenchError("--init-from and --init preinit both set the initial weights; use one")

    def _check_schedule(self) -> None:
        problem = schedule_problem(self.epochs, self.patience, self.max_lr_decreases)
        if self.stop != "schedule" or problem is None:
            return
        if problem == "max_lr_decreases":
            raise VggbenchError(
                "the schedule's stopping rule needs lr decreases (it stops at the plateau after the last "
                "one), but max lr decreases is 0 (a fixed lr); use --stop epochs or allow decreases"
            )
        raise VggbenchError(
            f"{problem}: the schedule could never lower the lr; raise --epochs or lower --patience"
        )

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
        """This config resolved against its data (`resolve`)."""
        return resolve(self, say, fresh=fresh).config

    def to_dict(self) -> dict[str, Any]:
        """The resolved config's fields (what records and checkpoints store)."""
        return asdict(self.resolved())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def identity(self) -> dict[str, Any]:
        """The identity of the resolved config (`identity`)."""
        return identity(self.resolved())

    @property
    def run_id(self) -> str:
        """The id of the resolved config. For callers that ask once: a run resolves its config once
        (`resolve`) and reads the id it holds."""
        return resolve(self).id


def _field(setting: Any) -> tuple[str, Any, Any]:
    return (
        setting.name,
        setting.type | None if setting.optional else setting.type,
        field(default=setting.default),
    )


#: The dataclass of the settings (frozen: a config is a value, changed with dataclasses.replace).
#: data_fingerprint is data.fingerprint of the files `data` (and `data_root`) name; None: computed
#: when needed (`resolved`), so a stored config keeps the fingerprint of the data it trained on.
TrainConfig = make_dataclass(
    "TrainConfig",
    [*(_field(s) for s in SETTINGS), ("data_fingerprint", str | None, field(default=None))],
    bases=(_TrainConfig,),
    frozen=True,
)
TrainConfig.__module__ = __name__
TrainConfig.__doc__ = _TrainConfig.__doc__


@dataclass(frozen=True)
class ResolvedConfig:
    """A config resolved once against its data (`resolve`): what a run's id, folders and record read.

    `config` has its data's fingerprint, and no --limit-train / --limit-val that takes a whole split;
    `id` is `run_id(config)`; `train_pixels` is S in pixels (min, max) and `test_scale` the single
    test scale Q that validation uses, in the paper's units and (at least the crop) in pixels."""

    config: TrainConfig
    id: str
    train_pixels: tuple[int, int]
    test_scale: int
    test_pixels: int


def resolve(
    config: TrainConfig | ResolvedConfig, say: Callable[[str], None] | None = None, *, fresh: bool = False
) -> ResolvedConfig:
    """The config with its data resolved against the files: the fingerprint set (a folder rescanned
    when `fresh`; one the config holds already is kept, so a stored config stays the run it was), and
    a limit of at least its split's size dropped, since the subset would be the whole split (`say`
    hears when a limit exceeds it: the run is that of no limit). Counting a split's images loads it,
    so that happens only for a limit. A ResolvedConfig is returned as it is."""
    if isinstance(config, ResolvedConfig):
        return config
    if config.data_fingerprint is None:
        found = data_fingerprint(
            config.data, config.data_root, val_split=config.val_split, download=config.download, fresh=fresh
        )
        config = replace(config, data_fingerprint=found, **_limits_within(config, found, say))
    scale = config.train_scale
    q_paper = test_scales("single", scale)[0]
    return ResolvedConfig(
        config,
        run_id(config),
        scale.pixels(config.crop),
        q_paper,
        max(config.crop, to_pixels(q_paper, config.crop)),
    )


def _limits_within(config: TrainConfig, found: str, say: Callable[[str], None] | None) -> dict[str, None]:
    """The limits to drop: those of at least their split's size."""
    if config.limit_train is None and config.limit_val is None:
        return {}
    dropped: dict[str, None] = {}
    sizes = split_sizes(config.data, config.data_root, config.val_split, config.skip_bad_images, found)
    for split, size in zip(("train", "val"), sizes):
        limit = getattr(config, f"limit_{split}")
        if limit is not None and limit >= size:
            dropped[f"limit_{split}"] = None
            if limit > size and say:
                say(beyond_split(split, limit, size, config.data, "run"))
    return dropped


def identity(config: TrainConfig) -> dict[str, Any]:
    """The fields of a config with its data's fingerprint that define the result: the settings that
    enter the run id (for this config), and the fingerprint; an image folder's location is left out
    (its fingerprint says which files it holds)."""
    if config.data_fingerprint is None:
        raise ValueError("identity() of a config without its data's fingerprint: resolve() it first")
    out = {
        s.name: getattr(config, s.name)
        for s in SETTINGS
        if (s.identity(config) if callable(s.identity) else s.identity)
    }
    out["data_fingerprint"] = config.data_fingerprint
    if data_kind(out["data"]) == "imagefolder":
        out["data"] = "imagefolder"
    return out


def run_id(config: TrainConfig) -> str:
    """The run id of a config with its data's fingerprint: a hash of its identity (no I/O)."""
    return store.record_id(identity(config))
