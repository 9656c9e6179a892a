"""Dataset sources: a spec string to train and val image sets.

Specs: synthetic, fashion-mnist, cifar10, cifar100, imagefolder:PATH. The file formats (IDX for
Fashion-MNIST, the CIFAR pickles, an ImageNet-style folder tree) are read here directly, so no
torchvision dataset class is needed except to download.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vggbench import capabilities
from vggbench.data import fingerprint, synthetic
from vggbench.data.imagesets import FolderImages, ImageSet, TensorImages, stratified_split, stratified_subset
from vggbench.errors import VggbenchError
from vggbench.options import data_kind

DATA_SEED = 0  # the dataset (synthetic images, subsets, val split) is the same for every training seed
SYNTHETIC_SIZE, SYNTHETIC_CLASSES, SYNTHETIC_COUNT = 64, 10, (512, 128)  # `synthetic`: 64 px, 10 classes
PACKAGED = ("fashion-mnist", "cifar10", "cifar100")  # the sets read from files that --download fetches
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_ROOT = Path.home() / ".cache" / "vggbench" / "datasets"
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass
class Dataset:
    """A dataset's class names and its train and val image sets.

    `test` holds the official held-out split when `val_split` carved `val` out of train instead.
    """

    name: str
    classes: list[str]
    train: ImageSet
    val: ImageSet
    test: ImageSet | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def skipped(self) -> int:
        """Unreadable images dropped when the dataset was loaded in skip mode."""
        return sum(getattr(s, "skipped", 0) for s in (self.train, self.val, self.test) if s is not None)


# --- IDX (Fashion-MNIST) -----------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (gzip-compressed when its name ends in .gz) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise VggbenchError(f"cannot read {path}: {error}; delete it and download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise VggbenchError(f"{path} is not an IDX file (bad magic number); delete it and download it again")
    dtype, ndim = np.dtype(IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise VggbenchError(
            f"{path} is truncated: {len(data) - header} bytes of data for shape {shape}; "
            "delete it and download it again"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _find_file(folders: list[Path], stem: str) -> Path | None:
    for folder in folders:
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def fashion_mnist_folders(root: Path | None) -> list[Path]:
    if root is not None:
        root = Path(root)
        return [root / "FashionMNIST" / "raw", root / "fashion-mnist", root]
    if capabilities.absent("fashion-mnist"):
        return []  # VGGBENCH_ABSENT hides the default folders
    return [DEBIAN_FASHION_MNIST, DEFAULT_ROOT / "FashionMNIST" / "raw"]


def fashion_mnist_files(root: Path | None, download: bool) -> dict[str, tuple[Path, Path]]:
    """{split: (images file, labels file)}, downloading them first when asked and missing."""
    folders = fashion_mnist_folders(root)
    if download and _find_file(folders, FASHION_MNIST_FILES["val"][1]) is None:
        target = Path(root) if root is not None else DEFAULT_ROOT
        _torchvision_download("FashionMNIST", target)
        folders = fashion_mnist_folders(target)
    files = {}
    for split, (images_stem, labels_stem) in FASHION_MNIST_FILES.items():
        images_path, labels_path = _find_file(folders, images_stem), _find_file(folders, labels_stem)
        if images_path is None or labels_path is None:
            missing = images_stem if images_path is None else labels_stem
            raise VggbenchError(
                f"Fashion-MNIST file {missing}(.gz) not found in "
                f"{', '.join(str(f) for f in folders) or 'the default folders (hidden by VGGBENCH_ABSENT)'}; "
                "install Debian's dataset-fashion-mnist (make data) or pass --data-root / --download"
            )
        files[split] = (images_path, labels_path)
    return files


def load_fashion_mnist(root: Path | None, download: bool) -> Dataset:
    splits = {}
    for split, (images_path, labels_path) in fashion_mnist_files(root, download).items():
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.shape != (images.shape[0],):
            raise VggbenchError(
                f"{images_path} and {labels_path} do not match (shapes {images.shape}, "
                f"{labels.shape}); delete them and download them again"
            )
        grey = torch.from_numpy(images.copy()).unsqueeze(1)
        splits[split] = TensorImages(
            grey.expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(labels.astype(np.int64))
        )
    return Dataset("fashion-mnist", list(FASHION_MNIST_CLASSES), splits["train"], splits["val"])


# --- CIFAR -------------------------------------------------------------------------------------

CIFAR = {
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "batches.meta",
        "label_names",
        "labels",
        "CIFAR10",
    ),
    "cifar100": (
        "cifar-100-python",
        ["train"],
        ["test"],
        "meta",
        "fine_label_names",
        "fine_labels",
        "CIFAR100",
    ),
}


#: What a CIFAR pickle holds besides dicts, lists, strings and numbers: numpy arrays (as numpy
#: pickles them under each protocol and version) and byte strings from Python 2's pickles. Nothing
#: else is unpickled: a global outside this set could run code.
CIFAR_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _CifarUnpickler(pickle.Unpickler):
    """pickle.Unpickler that admits only CIFAR_GLOBALS: a crafted batch cannot run its payload."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in CIFAR_GLOBALS:
            raise pickle.UnpicklingError(
                f"it holds {module}.{name}, which a CIFAR batch never does (refused: unpickling it could "
                "run code)"
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    """A CIFAR file's dict, read through `_CifarUnpickler`; anything else is a one-line error."""
    try:
        with open(path, "rb") as handle:
            data = _CifarUnpickler(handle, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise _cifar_error(path, str(error) or type(error).__name__) from None
    if not isinstance(data, dict):
        raise _cifar_error(path, f"it holds a {type(data).__name__}, not a dict")
    return data


def _cifar_error(path: Path, reason: str) -> VggbenchError:
    reason = " ".join(reason.split())  # one line, whatever the pickle said
    return VggbenchError(f"cannot read CIFAR file {path}: {reason}; delete the folder and download it again")


def _cifar_field(path: Path, batch: dict, key: str) -> object:
    if key not in batch:
        raise _cifar_error(path, f"it has no {key!r} entry")
    return batch[key]


def _cifar_batch(path: Path, labels_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch file's (N, 3, 32, 32) uint8 images and N labels in [0, num_classes), checked."""
    batch = _unpickle(path)
    data, labels = _cifar_field(path, batch, "data"), _cifar_field(path, batch, labels_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise _cifar_error(
            path, f"its 'data' is not uint8 rows of 3072 pixels (found {type(data).__name__} {shape})"
        )
    whole = (int, np.integer)
    if not isinstance(labels, list) or not all(
        isinstance(n, whole) and not isinstance(n, bool) for n in labels
    ):
        raise _cifar_error(path, f"its {labels_key!r} is not a list of whole numbers")
    if len(labels) != len(data) or any(not 0 <= label < num_classes for label in labels):
        raise _cifar_error(
            path, f"its {len(labels)} labels do not match its {len(data)} images in [0, {num_classes})"
        )
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def cifar_folder(name: str, root: Path | None, download: bool) -> Path:
    """The folder holding a CIFAR set's pickles (downloading them first when asked and missing),
    each of its files checked to be there."""
    folder_name, train_files, val_files, meta_file, _names_key, _labels_key, tv_name = CIFAR[name]
    base = Path(root) if root is not None else DEFAULT_ROOT
    candidates = [base / folder_name, base]
    folder = next((c for c in candidates if (c / meta_file).is_file()), None)
    if folder is None and download:
        _torchvision_download(tv_name, base)
        folder = base / folder_name
    if folder is None:
        raise VggbenchError(
            f"{name} not found: no {folder_name}/{meta_file} under {base}; pass --data-root "
            f"pointing at the folder holding {folder_name} (torchvision's layout), or --download"
        )
    for file in train_files + val_files:
        if not (folder / file).is_file():
            raise VggbenchError(f"{name} file {folder / file} is missing; download the dataset again")
    return folder


def load_cifar(name: str, root: Path | None, download: bool) -> Dataset:
    _folder_name, train_files, val_files, meta_file, names_key, labels_key, _tv_name = CIFAR[name]
    folder = cifar_folder(name, root, download)
    meta = folder / meta_file
    names = _cifar_field(meta, _unpickle(meta), names_key)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _cifar_error(meta, f"its {names_key!r} is not a list of class names")
    classes = list(names)

    def read(files: list[str]) -> TensorImages:
        batches = [_cifar_batch(folder / file, labels_key, len(classes)) for file in files]
        images = np.concatenate([images for images, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        return TensorImages(torch.from_numpy(images), torch.from_numpy(labels))

    return Dataset(name, classes, read(train_files), read(val_files))


def _torchvision_download(class_name: str, root: Path) -> None:
    import torchvision.datasets

    root.mkdir(parents=True, exist_ok=True)
    dataset_class = getattr(torchvision.datasets, class_name)
    try:
        for train in (True, False):
            dataset_class(str(root), train=train, download=True)
    except Exception as error:  # network errors come in many types
        raise VggbenchError(
            f"downloading {class_name} into {root} failed: {error}; check the network or "
            "download it by hand into that folder"
        ) from None


# --- ImageFolder -------------------------------------------------------------------------------


def is_image_name(name: str) -> bool:
    """Whether a file of this name is one of an ImageFolder's images (by extension, not hidden)."""
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _is_image(path: Path) -> bool:
    return is_image_name(path.name) and path.is_file()


def _class_folders(split: Path) -> list[Path]:
    return sorted(
        (d for d in split.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name
    )


def _no_class_folders(split: Path) -> VggbenchError:
    loose = sum(1 for p in split.iterdir() if _is_image(p))
    hint = f" (it holds {loose} loose images: sort them into one folder per class)" if loose else ""
    return VggbenchError(f"{split} has no class folders{hint}; expected {split}/CLASS/IMAGE files")


def _folder_split(split: Path, classes: list[str], skip_bad_images: bool) -> FolderImages:
    index = {name: k for k, name in enumerate(classes)}
    folders = _class_folders(split)
    if not folders:
        raise _no_class_folders(split)
    paths, labels = [], []
    for folder in folders:
        if folder.name not in index:
            raise VggbenchError(
                f"class folder {folder} is not a class of the train split; val classes must be train classes"
            )
        images = sorted(p for p in folder.rglob("*") if _is_image(p))
        if not images:
            raise VggbenchError(
                f"class folder {folder} holds no images (extensions {', '.join(IMAGE_EXTENSIONS)}); "
                "add images or remove the folder"
            )
        paths += images
        labels += [index[folder.name]] * len(images)
    return FolderImages(paths, labels, skip_bad_images).scan()


def _folder_splits(path: Path, val_split: float | None) -> tuple[Path, Path | None]:
    """(train folder, val folder or None when --val-split carves val from train) of an ImageFolder,
    checked to be one: a train folder of at least 2 class folders, and a val folder or a --val-split."""
    if not path.is_dir():
        raise VggbenchError(
            f"image folder {path} does not exist; pass imagefolder:PATH with PATH/train "
            "and PATH/val holding one folder per class"
        )
    train_dir, val_dir = path / "train", path / "val"
    if not train_dir.is_dir():
        raise VggbenchError(
            f"{path} has no train folder; expected {train_dir}/CLASS/IMAGE files (and a val folder alike)"
        )
    classes = _class_folders(train_dir)
    if not classes:
        raise _no_class_folders(train_dir)
    if len(classes) == 1:
        raise VggbenchError(
            f"{train_dir} has 1 class folder ({classes[0].name}); a classifier needs at least 2: "
            "add a folder per class"
        )
    if val_dir.is_dir():
        return train_dir, val_dir
    if val_split is None:
        raise VggbenchError(
            f"{path} has no val folder; add {val_dir}/CLASS/IMAGE files or pass --val-split "
            "(e.g. 0.1) to hold out part of train"
        )
    return train_dir, None


def load_imagefolder(path: Path, skip_bad_images: bool, val_split: float | None) -> Dataset:
    path = Path(path).expanduser()
    train_dir, val_dir = _folder_splits(path, val_split)
    classes = [d.name for d in _class_folders(train_dir)]
    train = _folder_split(train_dir, classes, skip_bad_images)
    val = _folder_split(val_dir, classes, skip_bad_images) if val_dir else None  # else carved from train
    return Dataset(f"imagefolder:{path}", classes, train, val)  # type: ignore[arg-type]


# --- Which data a spec names, and its fingerprint -----------------------------------------------


def check_data_options(
    spec: str, root: Path | str | None = None, download: bool = False, skip_bad_images: bool = False
) -> str:
    """The spec's kind, once the data options given apply to it: --data-root and --download to the
    packaged sets only, --skip-bad-images to image folders only (a one-line error otherwise)."""
    kind = data_kind(spec)
    where = {
        "synthetic": "synthetic data (it is generated)",
        "imagefolder": "imagefolder:PATH (PATH says where)",
    }
    if root is not None and kind not in PACKAGED:
        raise VggbenchError(f"--data-root does not apply to {where[kind]}; leave it out")
    if download and kind not in PACKAGED:
        raise VggbenchError(
            f"--download does not apply to {where[kind]}; only {', '.join(PACKAGED)} download"
        )
    if skip_bad_images and kind != "imagefolder":
        raise VggbenchError(
            f"--skip-bad-images does not apply to {kind}: only image folders hold files that may not "
            "decode; leave it out"
        )
    return kind


def folder_path(spec: str) -> Path:
    """The folder of an imagefolder:PATH spec."""
    return Path(spec.strip().split(":", 1)[1]).expanduser()


def data_fingerprint(
    spec: str,
    root: Path | str | None = None,
    *,
    val_split: float | None = None,
    download: bool = False,
    fresh: bool = False,
) -> str:
    """The fingerprint of the files a spec names (see data.fingerprint): an ImageFolder's image
    list (its train and val splits), a packaged set's files (downloaded first when `download` and
    missing), the synthetic generator's parameters. `fresh` rescans a folder instead of trusting
    the memo. Missing data, and data options that do not apply, are the same one-line errors as
    loading it."""
    kind = check_data_options(spec, root, download)
    root = Path(root) if root is not None else None
    if kind == "synthetic":
        return fingerprint.params_fingerprint(
            generator=synthetic.GENERATOR_VERSION,
            seed=DATA_SEED,
            size=SYNTHETIC_SIZE,
            classes=SYNTHETIC_CLASSES,
            count=SYNTHETIC_COUNT,
        )
    if kind == "fashion-mnist":
        files = [f for pair in fashion_mnist_files(root, download).values() for f in pair]
        return fingerprint.files_fingerprint(files)
    if kind in CIFAR:
        _folder_name, train_files, val_files, meta_file, *_ = CIFAR[kind]
        folder = cifar_folder(kind, root, download)
        return fingerprint.files_fingerprint([folder / f for f in (meta_file, *train_files, *val_files)])
    path = folder_path(spec)
    _folder_splits(path, val_split)
    return fingerprint.folder_scan(path, ("train", "val"), is_image_name, fresh=fresh).fingerprint


_split_sizes_memo: dict[tuple, tuple[int, int]] = {}


def beyond_split(split: str, limit: int, size: int, spec: str, what: str) -> str:
    """The one wording for a --limit-train / --limit-val above its split (train's and eval's note):
    the whole split is used, and the run or evaluation is the one without the limit."""
    return (
        f"--limit-{split} {limit} is more than the {size} {split} images of {spec}: using all {size} "
        f"(the {what} is the one without --limit-{split})"
    )


def split_sizes(
    spec: str, root: Path | str | None, val_split: float | None, skip_bad_images: bool, data_fingerprint_: str
) -> tuple[int, int]:
    """(train images, val images) of the whole splits, after --val-split and the skip of bad images:
    loads the set once per process and fingerprint (what --limit-train / --limit-val are checked
    against)."""
    key = (spec, str(root), val_split, skip_bad_images, data_fingerprint_)
    if key not in _split_sizes_memo:
        dataset = load_dataset(
            spec,
            root=Path(root) if root is not None else None,
            val_split=val_split,
            skip_bad_images=skip_bad_images,
        )
        _split_sizes_memo[key] = (len(dataset.train), len(dataset.val))
    return _split_sizes_memo[key]


# --- Entry point -------------------------------------------------------------------------------


def load_dataset(
    spec: str,
    *,
    root: Path | None = None,
    limit_train: int | None = None,
    limit_val: int | None = None,
    val_split: float | None = None,
    seed: int = 0,
    download: bool = False,
    skip_bad_images: bool = False,
    synthetic_size: int = SYNTHETIC_SIZE,
    synthetic_classes: int = SYNTHETIC_CLASSES,
    synthetic_count: tuple[int, int] = SYNTHETIC_COUNT,
) -> Dataset:
    """Load a dataset by spec (see options.DATASETS_HELP).

    `val_split` holds out a stratified fraction of train as val (the official val, if any, then
    becomes `Dataset.test`); `limit_train` / `limit_val` take stratified subsets (seeded) after that.
    """
    for label, limit in (("limit-train", limit_train), ("limit-val", limit_val)):
        if limit is not None and limit < 1:
            raise VggbenchError(f"--{label} {limit} must be at least 1 (or left out for the whole split)")
    if val_split is not None and not 0 < val_split < 1:
        raise VggbenchError(f"--val-split {val_split} must be a fraction strictly between 0 and 1, e.g. 0.1")
    kind = check_data_options(spec, root, download, skip_bad_images)
    if kind == "synthetic":
        dataset = _load_synthetic(seed, synthetic_size, synthetic_classes, synthetic_count)
    elif kind == "fashion-mnist":
        dataset = load_fashion_mnist(root, download)
    elif kind in CIFAR:
        dataset = load_cifar(kind, root, download)
    else:
        dataset = load_imagefolder(folder_path(spec), skip_bad_images, val_split)

    if val_split is not None:
        train_idx, val_idx = stratified_split(dataset.train.labels, val_split, seed)
        if dataset.val is not None:
            dataset.test = dataset.val
        dataset.val = dataset.train.subset(val_idx)
        dataset.train = dataset.train.subset(train_idx)
    if limit_train is not None:
        dataset.train = dataset.train.subset(stratified_subset(dataset.train.labels, limit_train, seed))
    if limit_val is not None:
        dataset.val = dataset.val.subset(stratified_subset(dataset.val.labels, limit_val, seed + 1))
    return dataset


def _load_synthetic(seed: int, size: int, classes: int, count: tuple[int, int]) -> Dataset:
    if size < 1:
        raise VggbenchError(f"synthetic image size {size} must be positive, e.g. 64")
    if classes < 2:
        raise VggbenchError(f"synthetic classes {classes} must be at least 2")
    n_train, n_val = count
    if n_train < 1 or n_val < 1:
        raise VggbenchError(f"synthetic counts {count} must both be at least 1, e.g. (512, 128)")
    train = synthetic.make_split(n_train, size, classes, seed, stream=0)
    val = synthetic.make_split(n_val, size, classes, seed, stream=1)
    return Dataset("synthetic", synthetic.class_names(classes), train, val)
