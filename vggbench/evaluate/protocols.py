"""The paper's test protocols (Section 3.2) on tensors, and top-k error.

Each protocol gives one softmax posterior per image and test scale Q (pixels of the shorter side),
on a float batch already rescaled to Q and normalised:
- center: one crop x crop center crop, through the FC net.
- dense: the fully-convolutional net on the whole rescaled image (any aspect ratio); the class
  score map is spatially averaged (the paper's "sum-pooled"; a mean, which gives the same argmax
  and, unlike a sum, the same softmax as the FC net at Q = crop), then softmax; the softmax of the
  image and of its horizontal flip are averaged.
- multi-crop: a 5x5 regular grid of crop x crop crops (corners included) x 2 flips = 50 crops per
  scale (150 over three scales), through the FC net; softmax averaged over the crops.
- multi-crop+dense: the average of the two methods' posteriors (each already averaged over scales).
Fusion (Table 6) averages posteriors over models.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from vggbench import paper
from vggbench.errors import VggbenchError
from vggbench.models import VGG
from vggbench.options import parse_choices

CENTER, DENSE, MULTI_CROP, BOTH = "center", "dense", "multi-crop", "multi-crop+dense"
METHODS = (CENTER, DENSE, MULTI_CROP, BOTH)
BASE_METHODS = (CENTER, DENSE, MULTI_CROP)
METHOD_HELP = "center, dense, multi-crop or multi-crop+dense (repeat the option or give a comma list)"
_METHOD_ALIASES = {
    "multi-crop&dense": BOTH,
    "dense+multi-crop": BOTH,
    "multicrop": MULTI_CROP,
    "both": BOTH,
}


def parse_methods(specs: Iterable[str]) -> list[str]:
    """'dense', 'multi-crop,dense', ... -> canonical method names in METHODS order, no repeats."""
    return parse_choices(
        specs,
        METHODS,
        what="method",
        none_given="no evaluation method given",
        choices_help=METHOD_HELP,
        aliases=_METHOD_ALIASES,
        normalize=lambda s: s.strip().lower().replace("_", "-").replace(" ", ""),
    )


def base_methods(methods: Iterable[str]) -> list[str]:
    """The protocols that must run for `methods` (multi-crop+dense needs both of its parts)."""
    needed = set()
    for method in methods:
        needed.update((DENSE, MULTI_CROP) if method == BOTH else (method,))
    return [m for m in BASE_METHODS if m in needed]


def check_scales(scales_px: Sequence[int], crop: int) -> tuple[int, ...]:
    """Test scales in pixels: at least one, none below the crop, none twice (the engine averages
    each model's posteriors over its scales with weight 1 / their number, which a repeat would skew)."""
    scales = tuple(int(q) for q in scales_px)
    if not scales:
        raise VggbenchError("no test scale given; use --scales single, multi, jitter or e.g. 224,256,288")
    small = [q for q in scales if q < crop]
    if small:
        raise VggbenchError(
            f"test scale {small[0]} px is below the crop ({crop} px): a crop cannot be cut from a "
            "smaller image; "
            f"use scales of at least {crop} px (224 in paper units)"
        )
    repeated = sorted({q for q in scales if scales.count(q) > 1})
    if repeated:
        raise VggbenchError(
            f"test scale {repeated[0]} px is given twice (two scales that round to the same pixels at "
            "this crop count once); give each scale once"
        )
    return scales


# --- The protocols, on a float batch already rescaled to Q and normalised ----------------------


def scores_to_probabilities(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over classes of (N, K) logits or of a (N, K, h, w) map spatially averaged first."""
    if scores.dim() == 4:
        scores = scores.mean(dim=(2, 3))
    return torch.softmax(scores.float(), dim=1)


def dense_probabilities(conv_model: VGG, x: torch.Tensor, flip: bool = True) -> torch.Tensor:
    """Dense evaluation of a batch of equal-size images: (N, K) posteriors.

    The image and its horizontal flip go through the net as one batch of 2N."""
    n = x.shape[0]
    inputs = torch.cat([x, x.flip(-1)]) if flip else x
    probs = scores_to_probabilities(conv_model(inputs))
    return 0.5 * (probs[:n] + probs[n:]) if flip else probs


def grid_offsets(length: int, crop: int, grid: int = paper.CROP_GRID) -> torch.Tensor:
    """`grid` regularly spaced crop offsets along a side, first 0 and last length - crop."""
    if length < crop:
        raise VggbenchError(f"an image side of {length} px is below the crop ({crop} px)")
    return torch.linspace(0, length - crop, grid).round().long()


def grid_crops(x: torch.Tensor, crop: int, grid: int = paper.CROP_GRID, flips: bool = True) -> torch.Tensor:
    """The multi-crop views of a batch: (N, grid*grid*(2 if flips), C, crop, crop).

    Crops are cut by advanced indexing in one gather (no loop over crops): row-major over the grid,
    then, with `flips`, the same crops mirrored horizontally in the same order."""
    n, c, h, w = x.shape
    span = torch.arange(crop, device=x.device)
    rows = grid_offsets(h, crop, grid).to(x.device)[:, None] + span  # (grid, crop)
    cols = grid_offsets(w, crop, grid).to(x.device)[:, None] + span
    crops = x[:, :, rows[:, None, :, None], cols[None, :, None, :]]  # (N, C, grid, grid, crop, crop)
    crops = crops.permute(0, 2, 3, 1, 4, 5).reshape(n, grid * grid, c, crop, crop)
    return torch.cat([crops, crops.flip(-1)], dim=1) if flips else crops


def center_crop(x: torch.Tensor, crop: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if min(h, w) < crop:
        raise VggbenchError(f"an image of {h}x{w} px is smaller than the crop ({crop} px)")
    top, left = (h - crop) // 2, (w - crop) // 2
    return x[..., top : top + crop, left : left + crop]


def center_probabilities(fc_model: VGG, x: torch.Tensor, crop: int) -> torch.Tensor:
    return scores_to_probabilities(fc_model(center_crop(x, crop)))


def multi_crop_probabilities(
    fc_model: VGG,
    x: torch.Tensor,
    crop: int,
    max_batch: int = 250,
    grid: int = paper.CROP_GRID,
    flips: bool = True,
) -> torch.Tensor:
    """Multi-crop evaluation of a batch of equal-size images: (N, K), the mean softmax over crops.

    All crops of an image go through the net in the same forward pass; a pass holds as many whole
    images' crops as fit in `max_batch` net inputs (at least one image)."""
    crops = grid_crops(x, crop, grid, flips)
    n, per_image = crops.shape[:2]
    step = max(1, max_batch // per_image)
    out = []
    for start in range(0, n, step):
        chunk = crops[start : start + step]
        probs = scores_to_probabilities(fc_model(chunk.reshape(-1, *chunk.shape[2:])))
        out.append(probs.view(chunk.shape[0], per_image, -1).mean(dim=1))
    return torch.cat(out)


def fuse(posteriors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Table 6's fusion: the mean of several models' softmax posteriors."""
    if not posteriors:
        raise VggbenchError("nothing to fuse")
    shapes = {tuple(p.shape) for p in posteriors}
    if len(shapes) > 1:
        raise VggbenchError(
            f"cannot fuse posteriors of different shapes {sorted(shapes)}: the models' class sets differ"
        )
    return torch.stack(list(posteriors)).mean(dim=0)


def check_same_classes(class_sets: Sequence[Sequence[str] | int], names: Sequence[str] | None = None) -> None:
    """Fusion needs one class set: the same class names in the same order (or the same count)."""

    def key(classes: Sequence[str] | int) -> object:
        return classes if isinstance(classes, int) else list(classes)

    for index, other in enumerate(class_sets[1:], start=1):
        if key(other) != key(class_sets[0]):
            who = f"{names[0]} and {names[index]}" if names else f"model 1 and model {index + 1}"
            raise VggbenchError(
                f"cannot fuse {who}: their class sets differ; fuse only models trained on one dataset"
            )


# --- Errors ------------------------------------------------------------------------------------


def effective_k(k: int, num_classes: int) -> int:
    """Top-k with fewer than k classes is top-K (every label is then in the top K: error 0)."""
    return min(k, num_classes)


def topk_correct(
    scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> dict[int, torch.Tensor]:
    """How many labels are among the top-min(k, K) classes, for each k: a count on the scores'
    device (no host sync, so a loop can add them up and read them once)."""
    labels = labels.to(scores.device).long()
    top = scores.topk(effective_k(max(ks), scores.shape[1]), dim=1).indices
    hits = top == labels[:, None]
    return {k: hits[:, : effective_k(k, scores.shape[1])].any(dim=1).sum() for k in ks}
