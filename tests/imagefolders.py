"""Generated ImageFolder trees (root/train/CLASS/i.png, root/val/...) for the fingerprint tests and
the fingerprint benchmark: small random PNGs, deterministic by seed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def write_class(folder: Path, count: int, size: int = 8, seed: int = 0) -> list[Path]:
    """`count` random size x size RGB PNGs 0.png, 1.png, ... in folder (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def write_image_folder(
    root: Path, classes: Sequence[str], train: int, val: int, size: int = 8, seed: int = 0
) -> Path:
    """An ImageFolder of `train` and `val` images per class (val 0: no val folder)."""
    for k, name in enumerate(classes):
        write_class(root / "train" / name, train, size, seed=seed + 2 * k)
        if val:
            write_class(root / "val" / name, val, size, seed=seed + 2 * k + 1)
    return root
