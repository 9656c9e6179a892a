"""Where the models to evaluate come from: stored runs, checkpoint files, torchvision's weights.

Each becomes a `ModelSource`: the model, its train scale, its classes when known, and how its
inputs are normalised (its own normalisation, or the mean RGB of the split it was trained on).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from vggbench import paper, store
from vggbench.architectures import get_architecture
from vggbench.data import DATA_SEED, Dataset, load_dataset, rgb_statistics
from vggbench.errors import VggbenchError
from vggbench.evaluate.engine import MeanRGB, Normalization
from vggbench.models import VGG, ModelSpec, load_state, uninitialised_model
from vggbench.scales import TrainScale, parse_train_scale
from vggbench.store import DataSource, RunRecord

TORCHVISION_PREFIX = "torchvision:"
DEFAULT_CHECKPOINT_SCALE = "256"  # train scale assumed for a checkpoint or torchvision weights
STATS_CACHE = "cache"  # <results>/cache holds each training split's mean RGB


@dataclass
class ModelSource:
    """One model to evaluate, with what evaluating it needs besides the weights."""

    id: str  # run id, "checkpoint:<hash>" or "torchvision:vgg16"
    model: VGG
    train_scale: TrainScale
    classes: list[str] | None  # class names it was trained on, when known
    normalization: Normalization | None  # None: the training set's mean RGB (the paper)
    training_data: DataSource | None  # the images it was trained on (for that mean RGB), when known
    input_range: str = paper.INPUT_RANGE  # the scale its mean-RGB input was on (0-255: the paper's)
    data_fingerprint: str | None = None  # of the images it was trained on (a stored run's), when known

    @property
    def net(self) -> str:
        return self.model.spec.net


def load_run(
    root: Path, run_id_or_prefix: str, *, fully_convolutional: bool = False, device="cpu"
) -> tuple[RunRecord, VGG]:
    """A stored run's record and its model with the final weights (FC form unless asked)."""
    root = Path(root)
    run = store.read_run(root, store.find_run(root, run_id_or_prefix))
    if run.status != "complete":
        raise VggbenchError(f"run {run.id} did not complete; resume it with --resume")
    path = root / run.checkpoint
    if not path.exists():
        raise VggbenchError(f"run {run.id}: its weights {path} are missing; retrain it with --force")
    state = store.read_torch_file(path, "weights", f"retrain run {run.id} with --force")
    model = VGG(ModelSpec(**run.model), fully_convolutional=fully_convolutional)
    load_state(model, state)
    return run, model.to(device).eval()


def run_source(run: RunRecord, model: VGG) -> ModelSource:
    return ModelSource(
        run.id,
        model,
        parse_train_scale(run.train_scale),
        list(run.classes) or None,
        None,
        run.data,
        run.input_range,
        run.data_fingerprint,
    )


def select_runs(results_dir: Path, net: str | None, scale: str | None, data: str | None) -> list[str]:
    """Ids of the complete stored runs matching a filter (net, train scale, dataset)."""
    want_net = get_architecture(net).name if net else None
    want_scale = str(parse_train_scale(scale)) if scale else None
    chosen = [
        run.id
        for run in store.read_runs(results_dir)
        if run.status == "complete"
        and (not want_net or run.net == want_net)
        and (not want_scale or run.train_scale == want_scale)
        and (not data or data in (run.data.spec, run.dataset))
    ]
    if not chosen:
        what = ", ".join(f"{k} {v}" for k, v in (("config", net), ("scale", scale), ("data", data)) if v)
        raise VggbenchError(
            f"no complete stored run with {what} in {results_dir}/runs; train one first "
            "(vggbench train) or name a run"
        )
    return chosen


def torchvision_model(name: str, progress: bool = True) -> tuple[VGG, list[str], Normalization]:
    """A Table 1 net with torchvision's public ImageNet weights (`torchvision:vgg16` etc.): A, B,
    D, E as vgg11/13/16/19, IMAGENET1K_V1. Downloads through torchvision's weights API into the
    torch hub cache on first use. Returns the FC-form model, the 1000 class names and the
    normalisation those weights expect (ImageNet mean and std on the [0, 1] scale)."""
    key = name[len(TORCHVISION_PREFIX) :] if name.lower().startswith(TORCHVISION_PREFIX) else name
    key = key.strip().lower()
    valid = ", ".join(TORCHVISION_PREFIX + k for k in paper.TORCHVISION_CONFIG)
    if key not in paper.TORCHVISION_CONFIG:
        raise VggbenchError(
            f"unknown torchvision weights {name!r}; choose one of {valid} "
            "(torchvision's VGG without batch norm: nets A, B, D, E)"
        )
    from torchvision.models import get_model_weights  # lazy: only `eval --weights` needs torchvision.models

    weights = get_model_weights(key).IMAGENET1K_V1
    try:
        state = weights.get_state_dict(progress=progress)
    except Exception as error:  # no network, a broken cache file, ...
        raise VggbenchError(
            f"cannot fetch {key} weights ({weights.url}): {error}; check the network, or download "
            "the file and pass it with --checkpoint FILE --config "
            f"{paper.TORCHVISION_CONFIG[key]} --norm imagenet"
        ) from None
    model = uninitialised_model(ModelSpec(paper.TORCHVISION_CONFIG[key]))
    load_state(model, state)
    transform = weights.transforms()
    normalization = Normalization(tuple(transform.mean), tuple(transform.std), "imagenet")
    return model.eval(), list(weights.meta["categories"]), normalization


@dataclass(frozen=True)
class CheckpointFile:
    """A weights file's model, its content hash, and the training config it carried (if any)."""

    model: VGG
    sha: str
    config: dict


def _file_sha(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:  # (hashlib.file_digest needs Python 3.11)
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def load_checkpoint_file(
    path: str,
    net: str | None = None,
    classes: int | None = None,
    width: float | None = None,
    crop: int | None = None,
) -> CheckpointFile:
    """A model from a weights file: a plain state dict (ours in either head form, or torchvision's
    vgg11/13/16/19) or a training checkpoint ({'model': state, 'config': TrainConfig dict}).
    The architecture comes from the arguments, falling back on the checkpoint's own config; the
    number of classes defaults to the rows of FC8's weight."""
    file = Path(path).expanduser()
    if file.is_dir():
        raise VggbenchError(f"checkpoint {file} is a directory; give a weights file (.pt) in it")
    if not file.is_file():
        raise VggbenchError(f"checkpoint {file} does not exist; give a weights file (.pt)")
    loaded = store.read_torch_file(file, "checkpoint", "expected a torch state dict")
    stored: dict = {}
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        stored, state = dict(loaded.get("config") or {}), loaded["model"]
    elif isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        state = loaded["state_dict"]
    else:
        state = loaded
    if not isinstance(state, dict) or "classifier.6.weight" not in state:
        raise VggbenchError(
            f"checkpoint {file} holds no VGG state dict (no classifier.6.weight); "
            "expected the weights of a Table 1 net"
        )
    net = net or stored.get("net")
    if not net:
        raise VggbenchError(
            f"--checkpoint {file}: give --config (A, A-LRN, B, C, D, E or B-5x5) to rebuild the net"
        )
    spec = ModelSpec(
        net,
        classes or int(state["classifier.6.weight"].shape[0]),
        width or stored.get("width") or 1.0,
        crop or stored.get("crop") or paper.PAPER_CROP,
        stored.get("fc_width"),
        lrn_alpha=stored.get("lrn_alpha", paper.LRN_ALPHA),
    )
    model = uninitialised_model(spec)  # no random init: every weight comes from the file
    load_state(model, state)
    return CheckpointFile(model.eval(), _file_sha(file), stored)


def checkpoint_training_data(config: dict) -> DataSource | None:
    """The training split named by a checkpoint's config, when it names one."""
    if not config.get("data"):
        return None
    return DataSource(
        config["data"],
        config.get("data_root"),
        config.get("limit_train"),
        None,
        config.get("val_split"),
        config.get("skip_bad_images", False),
    )


def load_data(source: DataSource, limit_val: int | None = None) -> Dataset:
    """The dataset a `DataSource` names, with the data seed every run shares."""
    return load_dataset(
        source.spec,
        root=source.root,
        limit_train=source.limit_train,
        limit_val=limit_val,
        val_split=source.val_split,
        seed=DATA_SEED,
        skip_bad_images=source.skip_bad_images,
    )


def _same_training_split(a: DataSource, b: DataSource) -> bool:
    return (a.spec, a.limit_train, a.val_split, a.skip_bad_images) == (
        b.spec,
        b.limit_train,
        b.val_split,
        b.skip_bad_images,
    )


def source_stats(
    source: ModelSource, dataset: Dataset, data: DataSource, results_dir: Path
) -> MeanRGB | Normalization:
    """The normalisation of one source: its own (torchvision), else the mean RGB of the training
    split it was trained on (cached in <results>/cache), else of the eval dataset's train split.
    `data` says which images `dataset` holds."""
    if source.normalization is not None:
        return source.normalization
    cache = Path(results_dir) / STATS_CACHE
    own = source.training_data
    if own is None or _same_training_split(own, data):
        return MeanRGB(rgb_statistics(dataset.train, cache), source.input_range)
    return MeanRGB(rgb_statistics(load_data(own).train, cache), source.input_range)
