"""The training set's RGB statistics: mean (for mean subtraction) and the eigen-decomposition of the
RGB covariance (for AlexNet's PCA lighting noise), over the pixels of the training split.

Values are on the [0, 1] scale (uint8 / 255). Sums run in float64 over chunks of images, so no
float copy of the whole set is ever made. Results can be cached as JSON keyed by the set's
fingerprint, since a streamed set costs one full decoding pass; a cache file is checked field by
field before use (`why_corrupt`), and one that fails is said once and rebuilt.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vggbench.data.imagesets import ImageSet
from vggbench.errors import VggbenchError
from vggbench.store import atomic_write_text

PIXELS_PER_CHUNK = 1 << 20  # bounds the float64 temporaries (24 MiB)
STREAMED_SAMPLE = 20_000  # streamed sets: statistics from this many evenly spaced images by default
#: The largest eigenvalue of the RGB covariance of values in [0, 1]: at most the sum of the three
#: channels' variances, each at most 1/4.
MAX_EIGVAL = 0.75
ORTHONORMAL_TOLERANCE = 1e-3  # eigenvectors stored as float32, rounded by JSON


@dataclass(frozen=True)
class RGBStats:
    """mean (3,); eigval (3,) descending; eigvec (3, 3) with eigenvector k in column k."""

    mean: torch.Tensor
    eigval: torch.Tensor
    eigvec: torch.Tensor

    def to(self, device: torch.device | str) -> RGBStats:
        return RGBStats(self.mean.to(device), self.eigval.to(device), self.eigvec.to(device))

    def as_json(self) -> dict:
        return {"mean": self.mean.tolist(), "eigval": self.eigval.tolist(), "eigvec": self.eigvec.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> RGBStats:
        return cls(*(torch.tensor(data[k], dtype=torch.float32) for k in ("mean", "eigval", "eigvec")))


def why_corrupt(data: Any, key: str) -> str | None:
    """What is wrong with a statistics cache's JSON for the set `key`, else None: its key, its pixel
    count, 3 means in [0, 1], 3 eigenvalues in [0, MAX_EIGVAL] (descending) and 3 orthonormal
    eigenvectors, every one a finite number."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("fingerprint") != key:
        return "its fingerprint is not the training split's"
    if not _whole(data.get("pixels")) or data["pixels"] < 1:
        return "its pixel count is not a whole number of at least 1"
    mean, eigval, eigvec = data.get("mean"), data.get("eigval"), data.get("eigvec")
    if not _numbers(mean, 3) or not all(0 <= m <= 1 for m in mean):
        return f"its mean {mean!r:.60} is not 3 finite numbers in [0, 1]"
    if (
        not _numbers(eigval, 3)
        or not all(0 <= v <= MAX_EIGVAL for v in eigval)
        or eigval != sorted(eigval)[::-1]
    ):
        return f"its eigval {eigval!r:.60} is not 3 finite numbers in [0, {MAX_EIGVAL}], largest first"
    if not (isinstance(eigvec, list) and len(eigvec) == 3 and all(_numbers(row, 3) for row in eigvec)):
        return "its eigvec is not 3 rows of 3 finite numbers"
    gram = torch.tensor(eigvec, dtype=torch.float64).T @ torch.tensor(eigvec, dtype=torch.float64)
    if not torch.allclose(gram, torch.eye(3, dtype=torch.float64), atol=ORTHONORMAL_TOLERANCE):
        return "its eigvec's columns are not orthonormal"
    return None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numbers(values: Any, count: int) -> bool:
    """Whether `values` is a list of `count` finite JSON numbers (not booleans)."""
    return (
        isinstance(values, list)
        and len(values) == count
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    )


def _note_to_stderr(text: str) -> None:
    sys.stderr.write(f"note: {text}\n")


def stats_from_moments(count: int, total: torch.Tensor, outer: torch.Tensor) -> RGBStats:
    """RGBStats from the pixel count, the sum of pixels (3,) and the sum of outer products (3, 3),
    on 0..255."""
    if count == 0:
        raise VggbenchError("cannot compute RGB statistics of an empty training set")
    mean = total / count
    covariance = outer / count - torch.outer(mean, mean)
    eigval, eigvec = torch.linalg.eigh(covariance / 255.0**2)
    order = torch.argsort(eigval, descending=True)
    eigvec = eigvec[:, order]
    eigvec = eigvec * torch.where(eigvec.sum(0) < 0, -1.0, 1.0).to(eigvec)  # fix the sign convention
    return RGBStats((mean / 255.0).float(), eigval[order].clamp_min(0).float(), eigvec.float())


def _moments(pixels: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
    """(count, sum, sum of outer products) of uint8 (B, 3, H, W) pixels, in float64."""
    flat = pixels.permute(0, 2, 3, 1).reshape(-1, 3).double()  # (P, 3): twice as fast as (3, P) here
    return flat.shape[0], flat.sum(0), flat.T @ flat


def rgb_statistics(
    imageset: ImageSet,
    cache_dir: Path | None = None,
    *,
    max_images: int | None = None,
    device: torch.device | str | None = None,
    note: Callable[[str], None] = _note_to_stderr,
) -> RGBStats:
    """Mean RGB and the RGB covariance's eigen-decomposition over the set's pixels ([0, 1] scale).

    In-memory sets use every image unless `max_images` is given; streamed sets use every image up to
    STREAMED_SAMPLE evenly spaced ones by default (one decode each). `device` (e.g. cuda) is where
    the sums run (default: where the images are). Cached in
    cache_dir/rgb-stats-FINGERPRINT.json when cache_dir is given; `note` hears of a cache file that
    is corrupt ("corrupt: PATH (what), rebuilding").
    """
    n = len(imageset)
    if max_images is None and not imageset.in_memory:
        max_images = STREAMED_SAMPLE
    indices = (
        torch.arange(n)
        if max_images is None or max_images >= n
        else torch.linspace(0, n - 1, max_images).long()
    )
    key = f"{imageset.fingerprint()}-{len(indices)}"
    cache = Path(cache_dir) / f"rgb-stats-{key}.json" if cache_dir is not None else None
    if cache is not None and cache.is_file():
        try:
            data: Any = json.loads(cache.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            data, problem = None, f"unreadable: {error}"
        else:
            problem = why_corrupt(data, key)
        if problem is None:
            return RGBStats.from_json(data)
        note(f"corrupt: {cache} ({problem}), rebuilding")
    count, total, outer = 0, torch.zeros(3, dtype=torch.float64), torch.zeros(3, 3, dtype=torch.float64)
    if imageset.in_memory:
        images = imageset.images  # type: ignore[attr-defined]
        per_image = images.shape[2] * images.shape[3]
        chunk = max(1, PIXELS_PER_CHUNK // per_image)
        for start in range(0, len(indices), chunk):
            sel = indices[start : start + chunk]
            part = images[sel[0] : sel[-1] + 1] if max_images is None else images[sel.to(images.device)]
            c, s, o = _moments(part.to(device) if device is not None else part)
            count, total, outer = count + c, total + s.cpu(), outer + o.cpu()
    else:
        for i in indices.tolist():
            image, _ = imageset.get(i)
            c, s, o = _moments(image.unsqueeze(0))
            count, total, outer = count + c, total + s, outer + o
    stats = stats_from_moments(count, total, outer)
    if cache is not None:
        atomic_write_text(
            cache, json.dumps({"fingerprint": key, "pixels": count, **stats.as_json()}, indent=2) + "\n"
        )
    return stats
