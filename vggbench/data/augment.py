"""The paper's training augmentation (Section 3.1) on whole batches, on the images' device, and
the evaluation-side rescale.

Per image: a training scale S drawn in [Smin, Smax] (pixels for the crop; fixed when Smin == Smax),
an isotropic rescale so the shorter side is S, one random crop x crop, a random horizontal flip,
AlexNet's PCA colour shift (alpha ~ N(0, pca_std) per image, shift = eigvec @ (alpha * eigval)) and
mean RGB subtraction. Output values are pixel values minus the mean on the input range's scale:
0-255 (Caffe's, the paper's only preprocessing; the default) or 0-1 (pixels / 255).

How: rescale + crop + flip is one `F.grid_sample` call over the batch with a per-image affine
(diagonal: scale, shift, mirror) grid: output pixel j of image i samples the rescaled image at
crop offset + j (mirrored when flipped), i.e. the source at ((offset + j + 0.5) / f - 0.5) with
f = S / shorter side; this is exactly what `F.interpolate(scale_factor=f, align_corners=False)`
followed by the crop computes, without materialising the rescaled images. Bilinear sampling does
not low-pass filter, so a downscale would alias. When the batch's images are larger than Smax,
the batch is first reduced with antialiased interpolation (`antialias=True`) so its shorter side
is Smax (not the batch's largest draw: that would make a rank's slice of a global batch, and an
image cached at Smax by data.cache, come out otherwise than in one process); what remains for
grid_sample is then an upscale or a downscale by at most Smax / Smin (2x for the paper's [256, 512]), where
bilinear's two taps alias only mildly. At small crops on Fashion-MNIST / CIFAR every S is an
upscale and nothing aliases.

The random draws (`draw`) are separate from their application (`apply`): the loaders draw for a
whole global batch and give each rank its slice, so data-parallel runs see the same augmentation.
Draws are made on the generator's device (CPU for a CPU generator) so a seed gives the same
augmentation whatever device the images are on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vggbench import paper
from vggbench.data.stats import RGBStats
from vggbench.errors import VggbenchError
from vggbench.scales import TrainScale

Images = torch.Tensor | list[torch.Tensor]
#: The value of a white pixel in the net's input, per input range: 0-255 is the paper's (Caffe).
PIXEL_MAX = {"0-255": 255.0, "0-1": 1.0}
INPUT_RANGES = tuple(PIXEL_MAX)


def pixel_max(input_range: str) -> float:
    """The scale of an input range ("0-255" or "0-1")."""
    if input_range not in PIXEL_MAX:
        raise VggbenchError(f"unknown input range {input_range!r}; choose one of {', '.join(INPUT_RANGES)}")
    return PIXEL_MAX[input_range]


def input_std(stats: RGBStats, input_range: str) -> float:
    """The std of the net's input per channel (the RMS over RGB) on the input range's scale: what
    init schemes that assume unit-variance input divide their first layer by."""
    return float(stats.eigval.sum() / 3) ** 0.5 * pixel_max(input_range)


@dataclass(frozen=True)
class AugmentParams:
    """One batch's random draws: S in pixels (n,), crop offsets as fractions of the free range
    (n, 2: y, x, in [0, 1)), flips (n,) and PCA coefficients alpha (n, 3)."""

    scale: torch.Tensor
    offset: torch.Tensor
    flip: torch.Tensor
    alpha: torch.Tensor

    def __len__(self) -> int:
        return int(self.scale.numel())

    def __getitem__(self, index: slice | torch.Tensor) -> AugmentParams:
        return AugmentParams(self.scale[index], self.offset[index], self.flip[index], self.alpha[index])


def crop_offsets(params: AugmentParams, height: int, width: int, crop: int) -> tuple[torch.Tensor, ...]:
    """Per image: f, rescaled (H', W') and integer crop offsets (oy, ox) for a source of (height, width)."""
    factor = params.scale.double() / min(height, width)
    rescaled_h = torch.round(height * factor).long().clamp_min(crop)
    rescaled_w = torch.round(width * factor).long().clamp_min(crop)
    oy = torch.minimum((params.offset[:, 0].double() * (rescaled_h - crop + 1)).long(), rescaled_h - crop)
    ox = torch.minimum((params.offset[:, 1].double() * (rescaled_w - crop + 1)).long(), rescaled_w - crop)
    return factor, rescaled_h, rescaled_w, oy, ox


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


class TrainAugment:
    """Section 3.1's augmentation on a batch: uint8 (B, 3, H, W) or a list of uint8 (3, H, W)."""

    def __init__(
        self,
        crop: int,
        scale: TrainScale,
        stats: RGBStats,
        pca_std: float = paper.PCA_LIGHTING_STD,
        flip: bool = True,
        input_range: str = paper.INPUT_RANGE,
    ) -> None:
        if crop < 1:
            raise VggbenchError(f"crop {crop} must be positive")
        if pca_std < 0:
            raise VggbenchError(
                f"PCA lighting std {pca_std} must be at least 0 (0 turns the colour shift off)"
            )
        self.crop = crop
        self.scale = scale
        self.smin, self.smax = scale.pixels(crop)
        self.stats = stats
        self.pca_std = pca_std
        self.flip = flip
        self.input_range = input_range
        self.pixel_max = pixel_max(input_range)
        self._stats_on: dict[torch.device, RGBStats] = {}

    def __repr__(self) -> str:
        return (
            f"TrainAugment(crop={self.crop}, S={self.smin}..{self.smax}px, pca_std={self.pca_std}, "
            f"flip={self.flip}, input {self.input_range})"
        )

    def draw(self, n: int, generator: torch.Generator) -> AugmentParams:
        """The random draws for n images, returned on the CPU."""
        device = generator.device
        scale = torch.randint(self.smin, self.smax + 1, (n,), generator=generator, device=device)
        offset = torch.rand(n, 2, generator=generator, device=device)
        flip = torch.rand(n, generator=generator, device=device) < 0.5
        alpha = torch.randn(n, 3, generator=generator, device=device) * self.pca_std
        if not self.flip:
            flip = torch.zeros_like(flip)
        return AugmentParams(scale.cpu(), offset.cpu(), flip.cpu(), alpha.cpu())

    def __call__(self, images: Images, generator: torch.Generator) -> torch.Tensor:
        return self.apply(images, self.draw(len(images), generator))

    def apply(
        self, images: Images, params: AugmentParams, sources: list[tuple[int, int]] | None = None
    ) -> torch.Tensor:
        """float32 (B, 3, crop, crop) on the images' device for given draws. `sources`: per image of a
        list, the (H, W) it was decoded at when it is stored reduced (see rescale_crop_flip)."""
        if isinstance(images, torch.Tensor):
            geometric = self.rescale_crop_flip(images, params)
        else:
            if not images:
                raise ValueError("empty batch")
            device = images[0].device
            geometric = torch.empty(len(images), 3, self.crop, self.crop, device=device)
            for members, batch in same_size_groups(images, sources):
                index = torch.tensor(members)
                source = sources[members[0]] if sources else None
                geometric[index.to(device)] = self.rescale_crop_flip(batch, params[index], source)
        return self.colour(geometric, params.alpha)

    def rescale_crop_flip(
        self, images: torch.Tensor, params: AugmentParams, source: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Isotropic rescale to S, crop and flip of same-size images: float [0, 1] (B, 3, crop, crop).

        `source`: the (H, W) the images were decoded at, when they are stored reduced (data.cache
        keeps images at shorter side S_max): sizes and crop offsets are then those of the source, so
        the crops are where they would be in the source, and only the pixels went through one more
        resize."""
        crop = self.crop
        x = _to_float(images)
        height, width = x.shape[-2:]
        source_h, source_w = source or (height, width)
        largest = max(self.smax, int(params.scale.max()))  # Smax: independent of the batch's draws
        if min(source_h, source_w) > largest:  # antialiased pre-reduction (see the module docstring)
            ratio = largest / min(source_h, source_w)
            size = (max(crop, round(source_h * ratio)), max(crop, round(source_w * ratio)))
            if size != (height, width):
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
            height, width = size
        factor, _, _, oy, ox = crop_offsets(params, height, width, crop)
        # The affine map per image is diagonal (scale, translate, mirror): build the sampling grid as
        # a * base + b per axis instead of F.affine_grid's batched matmul (several times faster).
        sign = torch.where(params.flip, -1.0, 1.0).double()
        ax, bx = crop / (factor * width) * sign, (2 * ox + crop) / (factor * width) - 1
        ay, by = crop / (factor * height), (2 * oy + crop) / (factor * height) - 1
        coefficients = torch.stack([ax, bx, ay, by], 1).to(device=x.device, dtype=x.dtype, non_blocking=True)
        base = (torch.arange(crop, device=x.device, dtype=x.dtype) * 2 + 1) / crop - 1  # output pixel centres
        gx = coefficients[:, 0:1] * base + coefficients[:, 1:2]  # (B, crop)
        gy = coefficients[:, 2:3] * base + coefficients[:, 3:4]
        grid = torch.stack(
            [gx.unsqueeze(1).expand(-1, crop, -1), gy.unsqueeze(2).expand(-1, -1, crop)], dim=-1
        )
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _stats(self, device: torch.device) -> RGBStats:
        if device not in self._stats_on:
            self._stats_on[device] = self.stats.to(device)
        return self._stats_on[device]

    def colour_shift(self, alpha: torch.Tensor) -> torch.Tensor:
        """AlexNet's PCA lighting shift per image (B, 3): eigvec @ (alpha * eigval)."""
        stats = self._stats(alpha.device)
        return ((alpha * stats.eigval).unsqueeze(1) * stats.eigvec).sum(-1)  # not a matmul: tiny, and BLAS
        # start-up dominated a (B, 3) @ (3, 3) product on the CPU

    def colour(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Add the PCA shift, subtract the mean RGB and scale to the input range, in place on x."""
        stats = self._stats(x.device)
        shift = self.colour_shift(alpha.to(x.device, non_blocking=True)) - stats.mean
        x = x.add_(shift.view(-1, 3, 1, 1))
        return x if self.pixel_max == 1.0 else x.mul_(self.pixel_max)


def rescale_shorter_side(images: torch.Tensor, side: int) -> torch.Tensor:
    """Isotropic bilinear rescale of (B, 3, H, W) so the shorter side is `side` (antialiased when
    shrinking). Returns float: uint8 input comes back on the [0, 1] scale, float input keeps its scale."""
    x = _to_float(images)
    height, width = x.shape[-2:]
    short = min(height, width)
    if short == side:
        return x
    size = (side, round(width * side / height)) if height <= width else (round(height * side / width), side)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=side < short)


def eval_preprocess(
    images: Images, q_pixels: int, stats: RGBStats, input_range: str = paper.INPUT_RANGE
) -> torch.Tensor | list[torch.Tensor]:
    """Test-time preprocessing (Section 3.2): rescale so the shorter side is Q, subtract the mean RGB,
    on the input range's scale (0-255 by default, as in training).

    No crop: the evaluation protocols crop (or not) themselves. A list of differently sized images
    gives a list of (3, H, W) results."""
    if isinstance(images, list):
        return [eval_preprocess(image.unsqueeze(0), q_pixels, stats, input_range)[0] for image in images]  # type: ignore[index]
    x = rescale_shorter_side(images, q_pixels)
    x = x - stats.mean.to(x.device).view(1, 3, 1, 1)  # out of place: x may be the caller's tensor
    scale = pixel_max(input_range)
    return x if scale == 1.0 else x.mul_(scale)


def same_size_groups(
    images: Images, sources: list[tuple[int, int]] | None = None
) -> list[tuple[list[int], torch.Tensor]]:
    """Equal-shape groups of a batch (and of equal source sizes, when given): [(indices in the
    batch, uint8 (g, 3, H, W))]."""
    if isinstance(images, torch.Tensor):
        return [(list(range(images.shape[0])), images)]
    by_shape: dict[tuple, list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        by_shape[(tuple(image.shape), sources[index] if sources else None)].append(index)
    return [(idx, torch.stack([images[i] for i in idx])) for idx in by_shape.values()]
