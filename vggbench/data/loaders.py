"""Batches for training and evaluation.

TrainLoader, in-memory sets (airbench's way): the whole split is moved to the device once as uint8;
each batch is a slice of the epoch's permutation, gathered and augmented on the device.
TrainLoader, streamed sets: a torch DataLoader whose workers decode files (a list per batch, since
sizes differ), then the same augmentation on the device. A decoded folder of mixed sizes
(cache.PackedImages) takes that path without workers: its batches are views of one buffer. On a
GPU the workers only read the files' bytes and the batch's JPEGs are decoded on the device with
nvJPEG (vggbench.data.decode).

Determinism and data parallelism: the permutation of epoch e depends on (seed, e) only, and the
augmentation draws of global batch b on (seed, e, b) only. A global batch holds
batch_size * world_size samples; rank r takes its contiguous slice of the samples and of the draws.
So world_size ranks with per-rank batch B / world_size see exactly the samples, and the crops,
flips and colour shifts, of one process with batch B.

`TrainLoader.data_time` is the host time spent inside the loader during the last epoch (waiting
for decoded batches, gathering, launching the augmentation). On CUDA the augmentation kernels run
asynchronously, so their device time shows up in the training step instead; the in-memory path
makes no host sync.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from vggbench.data.augment import TrainAugment
from vggbench.data.cache import PackedImages
from vggbench.data.decode import FileBytes, decode_batch
from vggbench.data.imagesets import FolderImages, ImageSet
from vggbench.errors import VggbenchError


def mix_seed(*parts: object) -> int:
    """A 63-bit seed from several values (seed, epoch, batch, ...), without accidental collisions."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little") >> 1


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of an epoch: a function of (n, seed, epoch) only, the same on every rank."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(mix_seed("perm", seed, epoch)))


def rank_bounds(length: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of rank's contiguous share of a global batch of `length` (torch.tensor_split's split)."""
    base, extra = divmod(length, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class _Decode(torch.utils.data.Dataset):
    """Worker-side decoding of a streamed set; None for an unreadable file in skip mode."""

    def __init__(self, imageset: ImageSet) -> None:
        self.imageset = imageset

    def __len__(self) -> int:
        return len(self.imageset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, int]:
        if isinstance(self.imageset, FolderImages):
            return self.imageset.try_get(i)
        return self.imageset.get(i)


def _collate_list(
    items: list[tuple[torch.Tensor | None, int]],
) -> tuple[list[torch.Tensor | None], torch.Tensor]:
    return [image for image, _ in items], torch.tensor([label for _, label in items], dtype=torch.int64)


def decodes_on_device(imageset: ImageSet, device: torch.device) -> bool:
    """Whether a streamed set's files are decoded on the device (nvJPEG on a GPU), the workers only
    reading bytes; on a CPU the workers decode with PIL."""
    return device.type == "cuda" and isinstance(imageset, FolderImages)


def _stream(
    imageset: ImageSet,
    batches: list[list[int]],
    workers: int,
    device: torch.device,
    dataset: torch.utils.data.Dataset | None = None,
) -> Iterator:
    """Batches (lists) of `dataset`'s items for `batches`' indices: decoded images by default."""
    return iter(
        DataLoader(
            dataset if dataset is not None else _Decode(imageset),
            batch_sampler=batches,
            num_workers=workers,
            collate_fn=_collate_list,
            pin_memory=device.type == "cuda",
            # its own generator: DataLoader draws its base seed from it, not from the global RNG that
            # dropout uses, so a streamed run's masks are those of a cached or in-memory run
            generator=torch.Generator(),
        )
    )


def check_one_batch(images: int, batch_size: int, world_size: int) -> None:
    """A training set holds at least one global batch (an epoch drops the last, partial one)."""
    if images == 0 or images < batch_size * world_size:
        raise VggbenchError(
            f"the training set has {images} images, fewer than one batch of {batch_size * world_size} "
            f"({batch_size} per process x {world_size}); lower the batch size or use more data"
        )


class TrainLoader:
    """Augmented training batches for one rank; see the module docstring."""

    def __init__(
        self,
        imageset: ImageSet,
        augment: TrainAugment,
        batch_size: int,
        device: torch.device | str,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
        workers: int = 0,
        gpu_decode: bool = True,
    ) -> None:
        if batch_size < 1:
            raise VggbenchError(f"batch size {batch_size} must be at least 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise VggbenchError(f"rank {rank} of world size {world_size} is not a valid process")
        if workers < 0:
            raise VggbenchError(f"workers {workers} must be at least 0")
        self.imageset = imageset
        self.augment = augment
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.workers = workers
        self.gpu_decode = gpu_decode  # False: a GPU's streamed batches are decoded by the workers (bench)
        self.global_batch = batch_size * world_size
        n = len(imageset)
        if n == 0 or drop_last:
            check_one_batch(n, batch_size, world_size)
        self.batches_per_epoch = n // self.global_batch if drop_last else math.ceil(n / self.global_batch)
        self.data_time = 0.0
        self.skipped = 0  # unreadable files dropped from batches (streamed sets in skip mode)
        if imageset.in_memory:
            self.images = imageset.images.to(self.device)  # type: ignore[attr-defined]
            self.labels = imageset.labels.to(self.device)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def global_batches(self, epoch: int) -> list[torch.Tensor]:
        """Indices (CPU) of every global batch of an epoch, in order."""
        perm = epoch_permutation(len(self.imageset), self.seed, epoch)
        g = self.global_batch
        return [perm[b * g : (b + 1) * g] for b in range(self.batches_per_epoch)]

    def batch_draws(self, epoch: int, batch: int, length: int):
        """The augmentation draws of a whole global batch (every rank draws the same)."""
        generator = torch.Generator().manual_seed(mix_seed("augment", self.seed, epoch, batch))
        return self.augment.draw(length, generator)

    def epoch(self, e: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (x float (b, 3, crop, crop), y int64 (b,)) on the device; sets data_time when done."""
        self.data_time = 0.0
        started = time.perf_counter()
        batches = self.global_batches(e)
        bounds = [rank_bounds(len(batch), self.rank, self.world_size) for batch in batches]
        if self.imageset.in_memory:
            perm = torch.cat(batches).to(self.device, non_blocking=True) if batches else None
            offset = 0
            for b, (batch, (start, stop)) in enumerate(zip(batches, bounds)):
                index = perm[offset + start : offset + stop]
                offset += len(batch)
                params = self.batch_draws(e, b, len(batch))[start:stop]
                x = self.augment.apply(self.images[index], params)
                y = self.labels[index]
                self.data_time += time.perf_counter() - started
                yield x, y
                started = time.perf_counter()
            return
        mine = [batch[start:stop].tolist() for batch, (start, stop) in zip(batches, bounds)]
        packed = self.imageset if isinstance(self.imageset, PackedImages) else None
        on_device = packed is None and self.gpu_decode and decodes_on_device(self.imageset, self.device)
        if packed is not None:  # decoded already: gathered here, no workers
            stream = iter((packed.gather(ids, self.device), packed.labels[ids]) for ids in mine)
        else:
            files = FileBytes(self.imageset) if on_device else None  # type: ignore[arg-type]
            stream = _stream(self.imageset, mine, self.workers, self.device, files)
        for b, (batch, (start, stop)) in enumerate(zip(batches, bounds)):
            images, labels = next(stream)
            sources = [packed.sources[i] for i in mine[b]] if packed is not None else None
            if on_device:
                paths = [self.imageset.paths[i] for i in mine[b]]  # type: ignore[attr-defined]
                images = decode_batch(images, paths, self.device, self.imageset.skip_bad_images)  # type: ignore[attr-defined]
            params = self.batch_draws(e, b, len(batch))[start:stop]
            keep = [i for i, image in enumerate(images) if image is not None]
            if len(keep) < len(images):
                self.skipped += len(images) - len(keep)
                if not keep:
                    continue
                params, labels = params[torch.tensor(keep)], labels[keep]
                images = [images[i] for i in keep]
            on_device_images = [image.to(self.device, non_blocking=True) for image in images]
            x = self.augment.apply(on_device_images, params, sources)  # sources: never skipped (no files)
            y = labels.to(self.device, non_blocking=True)
            self.data_time += time.perf_counter() - started
            yield x, y
            started = time.perf_counter()


class EvalLoader:
    """Unaugmented batches in a fixed order: (uint8 images on the device, labels on the device).

    In-memory sets: consecutive slices, each a (b, 3, H, W) tensor. Streamed sets whose sizes are
    known (FolderImages.scan) are ordered by (size, index) when group_sizes, so each batch is one
    (b, 3, H, W) tensor of one size; `order` holds the resulting sample order. Otherwise batches are
    consecutive and come as a tensor when their images share a size, else as a list of (3, H, W).
    """

    def __init__(
        self,
        imageset: ImageSet,
        batch_size: int,
        device: torch.device | str,
        workers: int = 0,
        group_sizes: bool = True,
    ) -> None:
        if batch_size < 1:
            raise VggbenchError(f"batch size {batch_size} must be at least 1")
        self.imageset = imageset
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.workers = workers
        self.skipped = 0
        n = len(imageset)
        sizes = [imageset.size_of(i) for i in range(n)] if not imageset.in_memory else None
        if sizes is not None and group_sizes and all(s is not None for s in sizes):
            self.order = sorted(range(n), key=lambda i: (sizes[i], i))
            self._batches = []
            for i in self.order:
                if (
                    self._batches
                    and len(self._batches[-1]) < batch_size
                    and sizes[self._batches[-1][0]] == sizes[i]
                ):
                    self._batches[-1].append(i)
                else:
                    self._batches.append([i])
        else:
            self.order = list(range(n))
            self._batches = [self.order[i : i + batch_size] for i in range(0, n, batch_size)]

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor | list[torch.Tensor], torch.Tensor]]:
        if self.imageset.in_memory:
            images, labels = self.imageset.images, self.imageset.labels  # type: ignore[attr-defined]
            for batch in self._batches:
                sl = slice(batch[0], batch[-1] + 1)
                yield (
                    images[sl].to(self.device, non_blocking=True),
                    labels[sl].to(self.device, non_blocking=True),
                )
            return
        for images, labels in _stream(self.imageset, self._batches, self.workers, self.device):
            keep = [i for i, image in enumerate(images) if image is not None]
            if len(keep) < len(images):
                self.skipped += len(images) - len(keep)
                if not keep:
                    continue
                images, labels = [images[i] for i in keep], labels[keep]
            labels = labels.to(self.device, non_blocking=True)
            if all(image.shape == images[0].shape for image in images):
                yield torch.stack(images).to(self.device, non_blocking=True), labels
            else:
                yield [image.to(self.device, non_blocking=True) for image in images], labels
