"""A synthetic, learnable image set made by code: shapes and textures at random positions and sizes.

Class k draws shape k mod 10 (disk, square, triangle, cross, ring, striped disk, checkered square,
diamond, ellipse, pair of dots); classes 10 and up add stripes at a class-specific orientation and
frequency (relative to the object's size, so the texture scales with it). Each image has a random
centre, a random radius (12% to 40% of the side: scale matters), random foreground and background
colours kept apart, and Gaussian pixel (luminance) noise. Everything is vectorised; deterministic by seed.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from vggbench.data.imagesets import TensorImages
from vggbench.data.loaders import mix_seed

SHAPES = (
    "disk",
    "square",
    "triangle",
    "cross",
    "ring",
    "striped-disk",
    "checkered-square",
    "diamond",
    "ellipse",
    "dots",
)
RADIUS_RANGE = (0.12, 0.40)  # object radius as a fraction of the image side
NOISE_STD = 0.08
#: Enters the synthetic set's fingerprint (hence run ids): bump it when the images drawn change.
GENERATOR_VERSION = 1
PIXELS_PER_CHUNK = 1 << 22  # pixels generated per vectorised step (bounds the temporary masks)


def class_names(num_classes: int) -> list[str]:
    names = []
    for k in range(num_classes):
        texture = k // len(SHAPES)
        names.append(SHAPES[k % len(SHAPES)] + (f"-stripes{texture}" if texture else ""))
    return names


def _shape_mask(shape: int, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Foreground mask of one shape on object-relative coordinates (broadcast to (n, S, S))."""
    radius2 = dx * dx + dy * dy
    adx, ady = dx.abs(), dy.abs()
    name = SHAPES[shape]
    if name == "disk":
        return radius2 <= 1
    if name == "square":
        return torch.maximum(adx, ady) <= 0.8
    if name == "triangle":
        return (dy >= -0.8) & (dy <= 0.8) & (adx <= (dy + 0.8) * 0.6)
    if name == "cross":
        return ((adx <= 0.25) & (ady <= 0.9)) | ((ady <= 0.25) & (adx <= 0.9))
    if name == "ring":
        return (radius2 <= 1) & (radius2 >= 0.55**2)
    if name == "striped-disk":
        return (radius2 <= 1) & (torch.sin(math.pi * 2.5 * dx) > 0)
    if name == "checkered-square":
        return (torch.maximum(adx, ady) <= 0.8) & (
            torch.sin(math.pi * 2 * dx) * torch.sin(math.pi * 2 * dy) > 0
        )
    if name == "diamond":
        return adx + ady <= 1
    if name == "ellipse":
        return dx * dx + (dy / 0.45) ** 2 <= 1
    return ((dx - 0.5) ** 2 + dy * dy <= 0.16) | ((dx + 0.5) ** 2 + dy * dy <= 0.16)  # dots


def _texture_mask(texture: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Stripes at a texture-specific orientation and frequency (texture >= 1)."""
    angle = (texture.float() * 0.61).view(-1, 1, 1)
    freq = (1.5 + 0.5 * (texture % 3).float()).view(-1, 1, 1)
    return torch.sin(math.pi * freq * (dx * torch.cos(angle) + dy * torch.sin(angle))) > 0


def _generate(labels: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    n = labels.numel()
    ramp = torch.arange(size, dtype=torch.float32) + 0.5
    radius = (
        RADIUS_RANGE[0] + (RADIUS_RANGE[1] - RADIUS_RANGE[0]) * torch.rand(n, generator=generator)
    ) * size
    centre = radius.unsqueeze(1) + torch.rand(n, 2, generator=generator) * (size - 2 * radius).unsqueeze(1)
    foreground = torch.rand(n, 3, generator=generator)
    background = (foreground + 0.3 + 0.4 * torch.rand(n, 3, generator=generator)) % 1.0
    dx = (ramp.view(1, 1, -1) - centre[:, 0].view(-1, 1, 1)) / radius.view(-1, 1, 1)  # (n, 1, S)
    dy = (ramp.view(1, -1, 1) - centre[:, 1].view(-1, 1, 1)) / radius.view(-1, 1, 1)  # (n, S, 1)
    mask = torch.zeros(n, size, size, dtype=torch.bool)
    shapes, textures = labels % len(SHAPES), labels // len(SHAPES)
    for shape in torch.unique(shapes).tolist():
        members = torch.nonzero(shapes == shape).flatten()
        sx, sy = dx[members], dy[members]
        part = _shape_mask(shape, sx, sy)
        textured = textures[members] > 0
        if textured.any():
            part = part & (_texture_mask(textures[members], sx, sy) | ~textured.view(-1, 1, 1))
        mask[members] = part
    mask = mask.unsqueeze(1)
    noise = torch.randn(n, 1, size, size, generator=generator).mul_(NOISE_STD * 255)  # luminance noise
    image = mask.float().mul_(255).mul((foreground - background).view(n, 3, 1, 1))  # (n, 3, S, S)
    image.add_(noise).add_(background.view(n, 3, 1, 1) * 255 + 0.5)
    return image.clamp_(0, 255).to(torch.uint8)


def make_split(count: int, size: int, num_classes: int, seed: int, stream: int) -> TensorImages:
    """`count` images of `size` pixels, classes balanced, from the (seed, stream) random stream."""
    generator = torch.Generator().manual_seed(mix_seed("synthetic", seed, stream))
    labels = torch.arange(count) % num_classes
    labels = labels[torch.randperm(count, generator=generator)]
    chunk = max(1, PIXELS_PER_CHUNK // (size * size))
    images = torch.empty(count, 3, size, size, dtype=torch.uint8)
    for start in range(0, count, chunk):
        images[start : start + chunk] = _generate(labels[start : start + chunk], size, generator)
    return TensorImages(images, labels)


def write_jpeg_folder(
    root: Path,
    count: int,
    sides: tuple[int, int] = (32, 32),
    num_classes: int = 10,
    seed: int = 0,
    val: int = 0,
    max_aspect: float = 1.0,
    quality: int = 90,
) -> Path:
    """An ImageFolder of the generator's images as JPEGs (root/train/<class>/<i>.jpg, and `val`
    images under root/val), for the data benchmarks: each image's shorter side is drawn from
    `sides` (inclusive) and its aspect from [1, max_aspect] (1: square, as CIFAR's; 4/3: like
    photos); deterministic by seed."""
    from PIL import Image  # lazy: only writing a folder needs PIL here

    names = class_names(num_classes)
    generator = torch.Generator().manual_seed(mix_seed("jpeg-folder", seed))
    for split, n in (("train", count), ("val", val)):
        for folder in names if n else ():
            (Path(root) / split / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            label = i % num_classes
            short = int(torch.randint(sides[0], sides[1] + 1, (1,), generator=generator))
            long = int(short * (1 + torch.rand(1, generator=generator).item() * (max_aspect - 1)))
            image = _generate(torch.tensor([label]), long, generator)[0, :, :short, :]
            path = Path(root) / split / names[label] / f"{i:06d}.jpg"
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(path, quality=quality)
    return Path(root)
