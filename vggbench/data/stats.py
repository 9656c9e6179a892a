"""The training set's RGB statistics: mean (for mean subtraction) and the eigen-decomposition of the
RGB covariance (for AlexNet's PCA lighting noise), over the pixels of the training split.

Values are on the [0, 1] scale (uint8 / 255). Sums run in float64 over chunks of images, so no
float copy of the whole set is ever made. Results can be cached as JSON keyed by the set's
fingerprint, since a streamed set costs one full decoding pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from vggbench.data.imagesets import ImageSet
from vggbench.errors import VggbenchError
from vggbench.store import atomic_write_text

PIXELS_PER_CHUNK = 1 << 20  # bounds the float64 temporaries (24 MiB)
STREAMED_SAMPLE = 20_000  # streamed sets: statistics from this many evenly spaced images by default


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
) -> RGBStats:
    """Mean RGB and the RGB covariance's eigen-decomposition over the set's pixels ([0, 1] scale).

    In-memory sets use every image unless `max_images` is given; streamed sets use every image up to
    STREAMED_SAMPLE evenly spaced ones by default (one decode each). `device` (e.g. cuda) is where
    the sums run (default: where the images are). Cached in
    cache_dir/rgb-stats-FINGERPRINT.json when cache_dir is given.
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
            return RGBStats.from_json(json.loads(cache.read_text()))
        except (json.JSONDecodeError, KeyError):
            pass  # a damaged cache is recomputed and overwritten
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
