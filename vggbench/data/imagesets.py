"""Image sets: the one interface the loaders, statistics and evaluation read images through.

Two kinds: `TensorImages` holds a whole split in memory as one uint8 (N, 3, H, W) tensor (every
image the same size: Fashion-MNIST, CIFAR, synthetic); `FolderImages` streams files from disk,
decoding each with PIL when it is asked for (any sizes: ImageFolder / ImageNet layouts).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from vggbench.data.fingerprint import digest, entry_line
from vggbench.errors import VggbenchError

BAD_IMAGE_FIX = "delete or replace it, or pass --skip-bad-images to skip unreadable images"


class ImageSet:
    """A labelled set of RGB uint8 images. Subclasses fill `labels` and implement `get`."""

    labels: torch.Tensor  # int64 (N,)
    in_memory: bool = False

    def __len__(self) -> int:
        return int(self.labels.numel())

    def get(self, i: int) -> tuple[torch.Tensor, int]:
        """Image i as uint8 (3, H, W) and its label."""
        raise NotImplementedError

    def subset(self, indices: torch.Tensor) -> ImageSet:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A short hash that changes when the images or labels change (keys caches)."""
        raise NotImplementedError

    def size_of(self, i: int) -> tuple[int, int] | None:
        """(H, W) of image i when known without decoding it, else None."""
        return None


class TensorImages(ImageSet):
    """A split held in memory: `images` uint8 (N, 3, H, W), `labels` int64 (N,)."""

    in_memory = True

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if labels.shape != (images.shape[0],):
            raise ValueError(f"{images.shape[0]} images but labels of shape {tuple(labels.shape)}")
        self.images = images
        self.labels = labels
        self._fingerprint: str | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def get(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])

    def size_of(self, i: int) -> tuple[int, int]:
        return self.image_size

    def subset(self, indices: torch.Tensor) -> TensorImages:
        indices = torch.as_tensor(indices, dtype=torch.int64)
        return TensorImages(self.images[indices], self.labels[indices])

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.blake2b(digest_size=8)
            digest.update(repr(tuple(self.images.shape)).encode())
            digest.update(self.images.detach().cpu().contiguous().numpy().tobytes())
            digest.update(self.labels.cpu().numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def __repr__(self) -> str:
        return f"TensorImages({len(self)} x {tuple(self.images.shape[1:])})"


def decode_image(path: Path, data: bytes | None = None) -> torch.Tensor:
    """Decode a file (or its bytes `data`, already read) to uint8 (3, H, W) RGB; any failure becomes
    a VggbenchError naming the file."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as image:
            array = np.asarray(image.convert("RGB"))
    except Exception as error:  # PIL raises many types for bad files
        raise VggbenchError(f"cannot read image {path}: {error}; {BAD_IMAGE_FIX}") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def read_image_size(path: Path) -> tuple[int, int] | None:
    """(H, W) from the file's header (cheap: PIL reads lazily); None when it is not an image."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:
        return None
    return height, width


class FolderImages(ImageSet):
    """Images streamed from files, decoded with PIL on access (RGB, any sizes).

    `scan()` reads every header once (threaded): it finds files that are not images and records
    sizes, so evaluation can group same-size images without decoding them. A file that fails only
    when decoded (e.g. a truncated JPEG) raises from `get`; the loaders, in skip mode, drop it from
    its batch and count it instead (`TrainLoader.skipped`, `EvalLoader.skipped`).
    """

    in_memory = False

    def __init__(
        self,
        paths: Sequence[Path | str],
        labels: Sequence[int] | torch.Tensor,
        skip_bad_images: bool = False,
        sizes: Sequence[tuple[int, int] | None] | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
        if len(self.paths) != self.labels.numel():
            raise ValueError(f"{len(self.paths)} paths but {self.labels.numel()} labels")
        self.skip_bad_images = skip_bad_images
        self.sizes: list[tuple[int, int] | None] = (
            list(sizes) if sizes is not None else [None] * len(self.paths)
        )
        self.skipped = 0  # images dropped by scan() in skip mode
        self.skipped_paths: list[Path] = []

    def get(self, i: int) -> tuple[torch.Tensor, int]:
        return decode_image(self.paths[i]), int(self.labels[i])

    def try_get(self, i: int) -> tuple[torch.Tensor | None, int]:
        """Like get, but in skip mode a file that cannot be decoded gives None instead of raising."""
        try:
            return self.get(i)
        except VggbenchError:
            if not self.skip_bad_images:
                raise
            return None, int(self.labels[i])

    def size_of(self, i: int) -> tuple[int, int] | None:
        return self.sizes[i]

    def subset(self, indices: torch.Tensor) -> FolderImages:
        chosen = [int(i) for i in torch.as_tensor(indices, dtype=torch.int64)]
        out = FolderImages(
            [self.paths[i] for i in chosen],
            self.labels[chosen],
            self.skip_bad_images,
            [self.sizes[i] for i in chosen],
        )
        out.skipped, out.skipped_paths = self.skipped, list(self.skipped_paths)  # keep the load-time count
        return out

    def scan(self, threads: int | None = None) -> FolderImages:
        """Read every header: record sizes; drop (skip mode, counted) or reject files that are not images."""
        threads = threads or min(32, (os.cpu_count() or 1) * 4)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            sizes = list(pool.map(read_image_size, self.paths, chunksize=64))
        bad = [i for i, size in enumerate(sizes) if size is None]
        if bad and not self.skip_bad_images:
            first = self.paths[bad[0]]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise VggbenchError(
                f"cannot read image {first}{more}: not an image PIL can open; {BAD_IMAGE_FIX}"
            )
        keep = [i for i, size in enumerate(sizes) if size is not None]
        self.skipped_paths = [self.paths[i] for i in bad]
        self.skipped = len(bad)
        self.paths = [self.paths[i] for i in keep]
        self.labels = self.labels[keep] if bad else self.labels
        self.sizes = [sizes[i] for i in keep]
        return self

    def fingerprint(self) -> str:
        """The folder scheme of data.fingerprint over this set's own files, in order, with their labels:
        each file's path, size and mtime in ns (a missing file counts as size and mtime -1)."""
        lines = []
        for path, label in zip(self.paths, self.labels.tolist()):
            try:
                stat = path.stat()
                size, mtime_ns = stat.st_size, stat.st_mtime_ns
            except OSError:
                size = mtime_ns = -1
            lines.append(entry_line(str(path), size, mtime_ns, label))
        return digest(lines)

    def __repr__(self) -> str:
        return f"FolderImages({len(self)} files)"


def stratified_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Sorted indices of n samples, each class represented in proportion to its share of labels.

    Per-class quotas are the floors of the proportional shares, the remainder going to the classes
    with the largest fractional parts (largest remainder, ties to the lower class); within a class
    the samples are a seeded random choice. Deterministic in (labels, n, seed).
    """
    labels = torch.as_tensor(labels, dtype=torch.int64).cpu()
    total = labels.numel()
    if n >= total:
        return torch.arange(total)
    if n < 1:
        raise VggbenchError(f"a subset of {n} samples is empty; ask for at least 1")
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * n / total
    quota = exact.floor().long()
    remainder = n - int(quota.sum())
    if remainder:
        order = sorted(range(len(classes)), key=lambda k: (-(exact[k] - quota[k]).item(), k))
        for k in order[:remainder]:
            quota[k] += 1
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for cls, q in zip(classes.tolist(), quota.tolist()):
        members = torch.nonzero(labels == cls).flatten()
        chosen.append(members[torch.randperm(members.numel(), generator=generator)[:q]])
    return torch.cat(chosen).sort().values


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, val indices): a stratified `fraction` of the samples held out for validation."""
    labels = torch.as_tensor(labels, dtype=torch.int64).cpu()
    n_val = max(1, round(labels.numel() * fraction))
    val = stratified_subset(labels, n_val, seed)
    mask = torch.ones(labels.numel(), dtype=torch.bool)
    mask[val] = False
    return torch.nonzero(mask).flatten(), val
