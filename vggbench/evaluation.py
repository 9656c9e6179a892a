"""The paper's test protocols (Section 3.2) and top-1/top-5 error, on tensors.

Protocols, each giving one softmax posterior per image and test scale Q (pixels of the shorter side):
- center: one crop x crop center crop of the image rescaled to Q, through the FC net.
- dense: the fully-convolutional net on the whole rescaled image (any aspect ratio); the class
  score map is spatially averaged (the paper's "sum-pooled"; a mean, which gives the same argmax
  and, unlike a sum, the same softmax as the FC net at Q = crop), then softmax; the softmax of the
  image and of its horizontal flip are averaged.
- multi-crop: a 5x5 regular grid of crop x crop crops (corners included) x 2 flips = 50 crops per
  scale (150 over three scales), through the FC net; softmax averaged over the crops.
- multi-crop+dense: the average of the two methods' posteriors (each already averaged over scales).
Over several test scales the posteriors are averaged over scales; fusion averages posteriors over
models (Table 6). Each model's posterior is computed once per base method and scale and reused for
fusion and for multi-crop+dense.

Costs: forward passes per image (net evaluations, summed over scales, flips, crops and fused
models) and MACs per image (multiply-accumulates, the conv form at each actual input size for
dense, the FC form at the crop for center and multi-crop), counted exactly as
`counting.count_macs` counts them but from shapes alone (a meta-device pass), so that ImageNet's
many image sizes cost nothing to count.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from vggbench import paper
from vggbench.counting import macs_per_pass
from vggbench.data import same_size_groups
from vggbench.errors import VggbenchError
from vggbench.models import VGG, ModelSpec, to_fully_connected, to_fully_convolutional, uninitialised_model
from vggbench.options import parse_choices
from vggbench.runtime import machine_info, machine_name, resolve_device, synchronize, utc_now
from vggbench.store import RunRecord

CENTER, DENSE, MULTI_CROP, BOTH = "center", "dense", "multi-crop", "multi-crop+dense"
METHODS = (CENTER, DENSE, MULTI_CROP, BOTH)
BASE_METHODS = (CENTER, DENSE, MULTI_CROP)
METHOD_HELP = "center, dense, multi-crop or multi-crop+dense (repeat the option or give a comma list)"
_METHOD_ALIASES = {"multi-crop&dense": BOTH, "dense+multi-crop": BOTH, "multicrop": MULTI_CROP, "both": BOTH}

#: An uint8 batch (b, 3, H, W) or a list of uint8 images (3, H_i, W_i) of different sizes.
Images = torch.Tensor | Sequence[torch.Tensor]
#: uint8 images (g, 3, H, W) of one shape and a test scale Q in pixels -> float net input on the device.
Prepare = Callable[[torch.Tensor, int], torch.Tensor]


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
    """Test scales in pixels: at least one, none below the crop."""
    scales = tuple(int(q) for q in scales_px)
    if not scales:
        raise VggbenchError("no test scale given; use --scales single, multi, jitter or e.g. 224,256,288")
    small = [q for q in scales if q < crop]
    if small:
        raise VggbenchError(
            f"test scale {small[0]} px is below the crop ({crop} px): a crop cannot be cut from a smaller image; "
            f"use scales of at least {crop} px (224 in paper units)"
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
    probabilities: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> dict[int, int]:
    """How many labels are among the top-min(k, K) classes, for each k."""
    labels = labels.to(probabilities.device).long()
    top = probabilities.topk(effective_k(max(ks), probabilities.shape[1]), dim=1).indices
    hits = top == labels[:, None]
    return {k: int(hits[:, : effective_k(k, probabilities.shape[1])].any(dim=1).sum()) for k in ks}


def topk_errors(
    probabilities: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """{'top1_err': %, 'top5_err': %}: the percentage of images whose label is not among the
    k highest-scoring classes; with K < k classes, top-k means top-K (error 0 by definition)."""
    n = len(labels)
    if n == 0:
        raise VggbenchError("no images to evaluate")
    correct = topk_correct(probabilities, labels, ks)
    return {f"top{k}_err": 100.0 * (n - correct[k]) / n for k in ks}


# --- Evaluation over a dataset ----------------------------------------------------------------


@dataclass
class EvalResult:
    """One method's result over a set of images (for one model or a fusion of several)."""

    method: str
    top1_err: float
    top5_err: float
    images: int
    forward_passes_per_image: float
    macs_per_image: float
    seconds: float
    images_per_s: float
    scales_px: tuple = ()  # the test scales in pixels; one tuple per model when fused models differ
    crop: int = 0
    top5_k: int = 5  # min(5, classes): what "top-5" means here
    members: list[dict[str, float]] = field(default_factory=list)  # each fused model's errors alone

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Net:
    fc: VGG
    conv: VGG
    spec: ModelSpec


def _nets(models: Sequence[VGG], device: torch.device | str) -> list[_Net]:
    if not models:
        raise VggbenchError("no model to evaluate")
    nets = []
    for model in models:
        fc = model if not model.fully_convolutional else to_fully_connected(model)
        conv = model if model.fully_convolutional else to_fully_convolutional(model)
        nets.append(_Net(fc.to(device).eval(), conv.to(device).eval(), model.spec))
    classes = [n.spec.num_classes for n in nets]
    if len(set(classes)) > 1:
        raise VggbenchError(
            f"cannot fuse models with different numbers of classes {classes}; fuse models of one dataset"
        )
    crops = {n.spec.crop for n in nets}
    if len(crops) > 1:
        raise VggbenchError(
            f"cannot fuse models trained at different crops {sorted(crops)}; fuse models of one crop size"
        )
    return nets


def _per_model_scales(
    scales_px: Sequence[int] | Sequence[Sequence[int]], n_models: int, crop: int
) -> list[tuple[int, ...]]:
    """One scale set shared by every model, or one per model (Table 6's submission fuses nets each
    at its own multi-scale set)."""
    if scales_px and all(isinstance(s, (list, tuple)) for s in scales_px):
        if len(scales_px) != n_models:
            raise VggbenchError(
                f"{len(scales_px)} scale sets for {n_models} models; give one set or one per model"
            )
        return [check_scales(s, crop) for s in scales_px]
    return [check_scales(scales_px, crop)] * n_models


def evaluate_batches(
    models: Sequence[VGG],
    batches: Iterable[tuple[Images, torch.Tensor]],
    prepare: Prepare | Sequence[Prepare],
    *,
    methods: Sequence[str],
    scales_px: Sequence[int] | Sequence[Sequence[int]],
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    max_images: int | None = None,
    flip: bool = True,
    progress: Callable[[int], None] | None = None,
) -> dict[str, EvalResult]:
    """Evaluate one model, or the fusion of several, with each of `methods` over `scales_px`.

    `batches` yields (uint8 images, labels); `prepare(images, q)` rescales a same-shape uint8 group
    to test scale q and normalises it (the net's input, on `device`): one for all models or one per
    model (fused runs trained on different data have different mean RGBs). `scales_px` is one scale
    set for all models or one per model. Each model's posterior is computed once per base method
    and scale and reused for fusion and for multi-crop+dense.

    `batch_size` caps the net inputs of one forward pass (dense counts an image and its flip as two;
    the 50 crops of an image are never split, and several images' crops share a pass). Timing
    covers preprocessing and the forward passes of each base method (multi-crop+dense: both),
    excluding data loading; on a GPU the device is synchronised around each timed part."""
    device = torch.device(device)
    methods = parse_methods(methods)
    bases = base_methods(methods)
    nets = _nets(models, device)
    crop, num_classes = nets[0].spec.crop, nets[0].spec.num_classes
    per_model = _per_model_scales(scales_px, len(nets), crop)
    prepares = list(prepare) if isinstance(prepare, (list, tuple)) else [prepare] * len(nets)
    if len(prepares) != len(nets):
        raise VggbenchError(
            f"{len(prepares)} preprocessings for {len(nets)} models; give one or one per model"
        )
    distinct = list(dict.fromkeys(prepares))  # models sharing a preprocessing share its rescaled images
    scales = tuple(sorted(set().union(*per_model)))
    ks = (1, 5)
    n_models = len(nets)
    correct = {m: dict.fromkeys(ks, 0) for m in methods}
    member_correct = {m: [dict.fromkeys(ks, 0) for _ in nets] for m in methods}
    seconds = dict.fromkeys(bases, 0.0)
    prep_seconds = 0.0
    macs = dict.fromkeys(bases, 0)
    passes = dict.fromkeys(bases, 0)
    seen = 0
    views = paper.CROP_GRID**2 * (2 if flip else 1)
    per_view = {DENSE: 2 if flip else 1, MULTI_CROP: views, CENTER: 1}
    with torch.inference_mode():
        for images, labels in batches:
            labels = torch.as_tensor(labels).long()
            if max_images is not None and seen + len(labels) > max_images:
                keep = max_images - seen
                images, labels = images[:keep], labels[:keep]
            b = len(labels)
            if b == 0:
                break
            if int(labels.max()) >= num_classes or int(labels.min()) < 0:
                raise VggbenchError(
                    f"a label ({int(labels.max())}) is outside the model's {num_classes} classes; "
                    "evaluate on the dataset the model was trained on"
                )
            posterior = {
                (i, m): torch.zeros(b, num_classes, device=device) for i in range(n_models) for m in bases
            }
            groups = same_size_groups(images)
            for q in scales:
                for prep in distinct:
                    users = [i for i in range(n_models) if prepares[i] is prep and q in per_model[i]]
                    if not users:
                        continue
                    # rescale each original shape once, then merge groups that land on one shape
                    merged: dict[tuple[int, int], list[tuple[list[int], torch.Tensor]]] = defaultdict(list)
                    synchronize(device)
                    start = time.perf_counter()
                    for indices, group in groups:
                        x = prep(group.to(device), q)
                        merged[tuple(x.shape[-2:])].append((indices, x))
                    synchronize(device)
                    prep_seconds += time.perf_counter() - start
                    for (h, w), parts in merged.items():
                        x = torch.cat([p for _, p in parts]) if len(parts) > 1 else parts[0][1]
                        if min(h, w) < crop:
                            raise VggbenchError(
                                f"an image rescaled to {h}x{w} px is smaller than the crop ({crop} px)"
                            )
                        where = torch.tensor([i for idx, _ in parts for i in idx], device=device)
                        g = len(where)
                        for i in users:
                            net = nets[i]
                            for method in bases:
                                start = time.perf_counter()
                                if method == DENSE:
                                    step = max(1, batch_size // per_view[DENSE])
                                    p = torch.cat(
                                        [
                                            dense_probabilities(net.conv, x[s : s + step], flip)
                                            for s in range(0, g, step)
                                        ]
                                    )
                                elif method == MULTI_CROP:
                                    p = multi_crop_probabilities(
                                        net.fc, x, crop, max(batch_size, views), flips=flip
                                    )
                                else:
                                    p = torch.cat(
                                        [
                                            center_probabilities(net.fc, x[s : s + batch_size], crop)
                                            for s in range(0, g, batch_size)
                                        ]
                                    )
                                posterior[i, method].index_add_(0, where, p, alpha=1.0 / len(per_model[i]))
                                synchronize(device)
                                seconds[method] += time.perf_counter() - start
                                runs = g * per_view[method]
                                passes[method] += runs
                                macs[method] += runs * (
                                    macs_per_pass(net.spec, True, h, w)
                                    if method == DENSE
                                    else macs_per_pass(net.spec, False, crop, crop)
                                )
            for method in methods:
                members = [
                    0.5 * (posterior[i, DENSE] + posterior[i, MULTI_CROP])
                    if method == BOTH
                    else posterior[i, method]
                    for i in range(n_models)
                ]
                for key, value in topk_correct(fuse(members), labels, ks).items():
                    correct[method][key] += value
                if n_models > 1:
                    for i, member in enumerate(members):
                        for key, value in topk_correct(member, labels, ks).items():
                            member_correct[method][i][key] += value
            seen += b
            if progress is not None:
                progress(b)
            if max_images is not None and seen >= max_images:
                break
    if seen == 0:
        raise VggbenchError(
            "no images to evaluate: the validation set is empty; check --data and --limit-val"
        )
    results = {}
    for method in methods:
        parts = (DENSE, MULTI_CROP) if method == BOTH else (method,)
        secs = prep_seconds + sum(seconds[p] for p in parts)
        results[method] = EvalResult(
            method=method,
            top1_err=100.0 * (seen - correct[method][1]) / seen,
            top5_err=100.0 * (seen - correct[method][5]) / seen,
            images=seen,
            forward_passes_per_image=sum(passes[p] for p in parts) / seen,
            macs_per_image=sum(macs[p] for p in parts) / seen,
            seconds=secs,
            images_per_s=seen / secs if secs > 0 else float("inf"),
            scales_px=per_model[0] if len(set(per_model)) == 1 else tuple(per_model),
            crop=crop,
            top5_k=effective_k(5, num_classes),
            members=[
                {"top1_err": 100.0 * (seen - c[1]) / seen, "top5_err": 100.0 * (seen - c[5]) / seen}
                for c in member_correct[method]
            ]
            if n_models > 1
            else [],
        )
    return results


@dataclass(frozen=True)
class Normalization:
    """Net input = (image on the [0, 1] scale - mean) / std, per RGB channel. The paper subtracts
    the training set's mean RGB only (std 1); torchvision's ImageNet weights expect ImageNet's
    mean and std as well."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    name: str = "custom"


#: What torchvision's IMAGENET1K_V1 weights were trained with (their `transforms()`).
IMAGENET_NORMALIZATION = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "imagenet")


def make_prepare(stats) -> Prepare:
    """The test-time preprocessing for a model: rescale the shorter side to Q, then subtract the
    training set's mean RGB (`data.RGBStats`, Section 3.2's only preprocessing, via
    `data.eval_preprocess`) or apply a `Normalization` (mean and std, for torchvision weights)."""
    from vggbench.data import eval_preprocess, rescale_shorter_side

    if isinstance(stats, Normalization):

        def prepare(images: torch.Tensor, q: int) -> torch.Tensor:
            x = rescale_shorter_side(images, q)
            mean = torch.tensor(stats.mean, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(stats.std, device=x.device).view(1, 3, 1, 1)
            return (x - mean) / std

        return prepare

    def prepare_stats(images: torch.Tensor, q: int) -> torch.Tensor:
        return eval_preprocess(images, q, stats)

    return prepare_stats


def evaluate(
    models: Sequence[VGG],
    imageset,
    stats,
    *,
    methods: Sequence[str],
    scales_px: Sequence[int] | Sequence[Sequence[int]],
    crop: int | None = None,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    max_images: int | None = None,
    flip: bool = True,
    progress: Callable[[int], None] | None = None,
) -> dict[str, EvalResult]:
    """Evaluate `models` (one, or several fused) on a `data.ImageSet` with each method.

    `stats`: the training set's `RGBStats` or a `Normalization`, one for all models or one per
    model. `crop`, when given, must be the models' crop (the crop is part of the model)."""
    from vggbench.data import EvalLoader

    if crop is not None and any(m.spec.crop != crop for m in models):
        raise VggbenchError(
            f"crop {crop} differs from the models' crop {models[0].spec.crop}; "
            "a model's crop is fixed by its FC6 layer"
        )
    if len(imageset) == 0:
        raise VggbenchError(
            "no images to evaluate: the validation set is empty; check --data and --limit-val"
        )
    if isinstance(stats, (list, tuple)):
        cache: dict[int, Prepare] = {}
        prepare: Prepare | list[Prepare] = [cache.setdefault(id(s), make_prepare(s)) for s in stats]
    else:
        prepare = make_prepare(stats)
    loader = EvalLoader(imageset, batch_size, device)
    return evaluate_batches(
        models,
        loader,
        prepare,
        methods=methods,
        scales_px=scales_px,
        batch_size=batch_size,
        device=device,
        max_images=max_images,
        flip=flip,
        progress=progress,
    )


# --- Records and the paper's table shapes ------------------------------------------------------


@dataclass(frozen=True)
class Evaluated:
    """What an eval record says about one evaluated model (a stored run, a checkpoint, torchvision)."""

    id: str  # run id, "checkpoint:<hash>" or "torchvision:vgg16"
    config: str
    train_scale: str  # paper units: "256" or "256:512"


def eval_record_id(
    run_ids: Sequence[str],
    method: str,
    test_scales: object,
    dataset: str,
    limits: dict,
    extra: dict | None = None,
) -> str:
    from vggbench.store import record_id

    return record_id(
        {
            "runs": list(run_ids),
            "method": method,
            "test_scales": test_scales,
            "dataset": dataset,
            "limits": limits,
            **(extra or {}),
        }
    )


def eval_record(
    result: EvalResult,
    evaluated: Sequence[Evaluated],
    *,
    test_scales: Sequence,
    test_scales_px: Sequence,
    dataset: str,
    limits: dict,
    device: str,
    machine: str,
    extra: dict | None = None,
    details: dict | None = None,
) -> dict:
    """The stored record of one evaluation (one method, one model or fusion, one scale set).

    `extra` fields define the evaluation (they enter the id, as the runs, method, test scales,
    dataset and limits do); `details` fields are only stored."""

    ids = [e.id for e in evaluated]
    record = {
        "id": eval_record_id(ids, result.method, test_scales, dataset, limits, extra),
        "kind": "eval",
        "runs": ids,
        "configs": [e.config for e in evaluated],
        "train_scales": [e.train_scale for e in evaluated],
        "fused": len(ids) > 1,
        "method": result.method,
        "test_scales": [list(s) for s in test_scales]
        if test_scales and isinstance(test_scales[0], (list, tuple))
        else list(test_scales),
        "test_scales_px": [list(s) for s in test_scales_px]
        if test_scales_px and isinstance(test_scales_px[0], (list, tuple))
        else list(test_scales_px),
        "crop": result.crop,
        "dataset": dataset,
        "limits": limits,
        "images": result.images,
        "top1_err": result.top1_err,
        "top5_err": result.top5_err,
        "top5_k": result.top5_k,
        "members": result.members,
        "forward_passes_per_image": result.forward_passes_per_image,
        "macs_per_image": result.macs_per_image,
        "seconds": result.seconds,
        "images_per_s": result.images_per_s,
        "device": device,
        "machine": machine,
        "torch_version": torch.__version__,
        "created": utc_now(),
    }
    record.update(extra or {})
    record.update(details or {})
    return record


# --- What `vggbench eval` evaluates: stored runs, checkpoint files, torchvision weights ----------

TORCHVISION_PREFIX = "torchvision:"
SCALES_DEFAULT = "single"
DEFAULT_CHECKPOINT_SCALE = "256"  # train scale assumed for a checkpoint or torchvision weights


@dataclass
class Candidate:
    """One model to evaluate, with what evaluating it needs besides the weights."""

    evaluated: Evaluated
    model: VGG
    train_scale: object  # scales.TrainScale
    classes: list[str] | None  # class names it was trained on, when known
    normalization: Normalization | None  # None: the training set's mean RGB (the paper)
    training_data: dict | None  # load_dataset arguments of its training split (for the mean RGB)
    data: str | None  # the dataset it was trained on (spec), when known


@dataclass
class EvalRequest:
    """The `vggbench eval` options, parsed; `run_eval` carries them out."""

    runs: list[str] = field(default_factory=list)
    fuse: bool = False
    methods: list[str] = field(default_factory=lambda: [DENSE])
    scales: str = SCALES_DEFAULT
    config: str | None = None
    scale: str | None = None
    checkpoint: str | None = None
    weights: str | None = None
    classes: int | None = None
    width: float | None = None
    crop: int | None = None
    norm: str | None = None  # "train" or "imagenet"; default per source
    data: str | None = None
    data_root: str | None = None
    limit_val: int | None = None
    max_images: int | None = None
    batch: int = 64
    device: str = "auto"
    results_dir: str = "results"
    skip_bad_images: bool = False


def torchvision_model(name: str, progress: bool = True) -> tuple[VGG, list[str], Normalization]:
    """A Table 1 net with torchvision's public ImageNet weights (`torchvision:vgg16` etc.): A, B,
    D, E as vgg11/13/16/19, IMAGENET1K_V1. Downloads through torchvision's weights API into the
    torch hub cache on first use. Returns the FC-form model, the 1000 class names and the
    normalisation those weights expect (ImageNet mean and std on the [0, 1] scale)."""
    from vggbench.models import load_state

    key = name[len(TORCHVISION_PREFIX) :] if name.lower().startswith(TORCHVISION_PREFIX) else name
    key = key.strip().lower()
    valid = ", ".join(TORCHVISION_PREFIX + k for k in paper.TORCHVISION_CONFIG)
    if key not in paper.TORCHVISION_CONFIG:
        raise VggbenchError(
            f"unknown torchvision weights {name!r}; choose one of {valid} "
            "(torchvision's VGG without batch norm: nets A, B, D, E)"
        )
    from torchvision.models import get_model_weights

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


def load_checkpoint_file(path: str, spec_options: dict) -> tuple[VGG, dict]:
    """A model from a weights file: a plain state dict (ours in either head form, or torchvision's
    vgg11/13/16/19) or a training checkpoint ({'model': state, 'config': TrainConfig dict}).
    The architecture comes from `spec_options` (config, classes, width, crop), falling back on the
    checkpoint's own config; the number of classes defaults to the rows of FC8's weight."""
    from vggbench.models import load_state
    from vggbench.store import read_torch_file

    file = Path(path).expanduser()
    if not file.is_file():
        raise VggbenchError(f"checkpoint {file} does not exist; give a weights file (.pt)")
    loaded = read_torch_file(file, "checkpoint", "expected a torch state dict")
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
    config = spec_options.get("config") or stored.get("net")
    if not config:
        raise VggbenchError(
            f"--checkpoint {file}: give --config (A, A-LRN, B, C, D, E or B-5x5) to rebuild the net"
        )
    spec = ModelSpec(
        config,
        spec_options.get("classes") or int(state["classifier.6.weight"].shape[0]),
        spec_options.get("width") or stored.get("width") or 1.0,
        spec_options.get("crop") or stored.get("crop") or paper.PAPER_CROP,
        stored.get("fc_width"),
    )
    model = uninitialised_model(spec)  # no random init: every weight comes from the file
    load_state(model, state)
    digest = hashlib.sha256()
    with file.open("rb") as handle:  # (hashlib.file_digest needs Python 3.11)
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return model.eval(), {"sha": digest.hexdigest()[:12], "config": stored}


def _run_candidate(record: RunRecord, model: VGG) -> Candidate:
    from vggbench.scales import parse_train_scale

    source = record.data
    training_data = {
        "spec": source.spec,
        "root": source.root,
        "limit_train": source.limit_train,
        "val_split": source.val_split,
        "skip_bad_images": source.skip_bad_images,
    }
    return Candidate(
        Evaluated(record.id, model.spec.config, str(parse_train_scale(record.train_scale))),
        model,
        parse_train_scale(record.train_scale),
        list(record.classes) or None,
        None,
        training_data,
        training_data["spec"],
    )


def select_runs(results_dir, config: str | None, scale: str | None, data: str | None) -> list[str]:
    """Ids of the complete stored runs matching a filter (config, train scale, dataset)."""
    from vggbench import store
    from vggbench.architectures import get_architecture
    from vggbench.scales import parse_train_scale

    want_config = get_architecture(config).name if config else None
    want_scale = str(parse_train_scale(scale)) if scale else None
    chosen = []
    for record in store.read_records(results_dir, "runs"):
        if record.get("status") != "complete":
            continue
        if want_config and record.get("model", {}).get("config") != want_config:
            continue
        if want_scale and str(record.get("train_scale")) != want_scale:
            continue
        if data and data not in (record.get("config", {}).get("data"), record.get("dataset")):
            continue
        chosen.append(record["id"])
    if not chosen:
        what = ", ".join(f"{k} {v}" for k, v in (("config", config), ("scale", scale), ("data", data)) if v)
        raise VggbenchError(
            f"no complete stored run with {what} in {results_dir}/runs; train one first "
            "(vggbench train) or name a run"
        )
    return chosen


def candidates(request: EvalRequest) -> list[Candidate]:
    """The models a request names: torchvision weights, a checkpoint file, stored runs by id, or
    stored runs selected by --config / --scale (/ --data)."""
    from vggbench.scales import parse_train_scale
    from vggbench.train import load_run

    sources = sum(bool(x) for x in (request.weights, request.checkpoint, request.runs))
    if sources > 1:
        raise VggbenchError(
            "give one source of models: run ids, --checkpoint FILE or --weights torchvision:NAME"
        )
    scale = parse_train_scale(request.scale or DEFAULT_CHECKPOINT_SCALE)
    if request.norm not in (None, "train", "imagenet"):
        raise VggbenchError(
            f"unknown normalisation {request.norm!r}; choose train (the paper's mean RGB) or imagenet"
        )
    if request.weights:
        model, _categories, normalization = torchvision_model(request.weights)
        if request.norm == "train":
            normalization = None
        name = TORCHVISION_PREFIX + request.weights.lower().split(":")[-1]
        # its class names (English) are not an image folder's (WordNet ids): only their number is checked;
        # ImageNet's folders sorted by name are in torchvision's class order
        return [
            Candidate(
                Evaluated(name, model.spec.config, str(scale)), model, scale, None, normalization, None, None
            )
        ]
    if request.checkpoint:
        options = {
            "config": request.config,
            "classes": request.classes,
            "width": request.width,
            "crop": request.crop,
        }
        model, info = load_checkpoint_file(request.checkpoint, options)
        stored = info["config"]
        if request.scale is None and stored.get("scale"):
            scale = parse_train_scale(stored["scale"])
        training_data = None
        if stored.get("data"):
            training_data = {
                "spec": stored["data"],
                "root": stored.get("data_root"),
                "limit_train": stored.get("limit_train"),
                "val_split": stored.get("val_split"),
                "skip_bad_images": stored.get("skip_bad_images", False),
            }
        normalization = IMAGENET_NORMALIZATION if request.norm == "imagenet" else None
        return [
            Candidate(
                Evaluated(f"checkpoint:{info['sha']}", model.spec.config, str(scale)),
                model,
                scale,
                None,
                normalization,
                training_data,
                stored.get("data"),
            )
        ]
    ids = list(request.runs)
    if not ids:
        if not (request.config or request.scale):
            raise VggbenchError(
                "nothing to evaluate: name a stored run (or several with --fuse), select runs with "
                "--config/--scale, or give --checkpoint FILE or --weights torchvision:vgg16"
            )
        ids = select_runs(request.results_dir, request.config, request.scale, request.data)
    out = []
    for run_id in ids:
        record, model = load_run(request.results_dir, run_id)
        candidate = _run_candidate(record, model)
        if request.norm == "imagenet":
            candidate.normalization = IMAGENET_NORMALIZATION
        out.append(candidate)
    return out


def _stats_for(candidate: Candidate, dataset, data_args: dict, results_dir) -> object:
    """The normalisation of one candidate: its own (torchvision), else the mean RGB of the
    training split it was trained on (cached in <results>/cache), else of the eval dataset's train."""
    from vggbench.data import DATA_SEED, load_dataset, rgb_statistics

    if candidate.normalization is not None:
        return candidate.normalization
    cache = Path(results_dir) / "cache"
    own = candidate.training_data
    same = ("spec", "limit_train", "val_split", "skip_bad_images")
    if own is None or all(own.get(k) == data_args.get(k) for k in same):
        return rgb_statistics(dataset.train, cache)
    train = load_dataset(
        own["spec"],
        root=own["root"],
        limit_train=own["limit_train"],
        val_split=own["val_split"],
        seed=DATA_SEED,
        skip_bad_images=own["skip_bad_images"],
    ).train
    return rgb_statistics(train, cache)


def plan_groups(request: EvalRequest, found: list[Candidate]) -> list[list[Candidate]]:
    """Fusion puts every candidate in one group; otherwise each is evaluated alone."""
    if request.fuse:
        if len(found) < 2:
            raise VggbenchError(f"--fuse needs at least two models, got {len(found)}; name more runs")
        return [found]
    return [[c] for c in found]


def run_eval(
    request: EvalRequest, progress_factory: Callable[[str, int], Callable[[int], None]] | None = None
) -> list[dict]:
    """Carry out `vggbench eval`: evaluate each model (or their fusion) with each method on the
    validation split, write one record per (models, method) to <results>/evals, return the records."""
    from vggbench import store
    from vggbench.data import DATA_SEED, load_dataset
    from vggbench.scales import TrainScale, test_scales, to_pixels

    methods = parse_methods(request.methods)
    if request.batch < 1:
        raise VggbenchError(f"batch {request.batch} must be at least 1")
    if request.max_images is not None and request.max_images < 1:
        raise VggbenchError(f"--max-images {request.max_images} must be at least 1")
    test_scales(request.scales, TrainScale(*paper.JITTER_RANGE))  # a bad spec fails before any loading
    device = resolve_device(request.device)
    machine = machine_name(machine_info(device))
    found = candidates(request)
    records = []
    for group in plan_groups(request, found):
        names = [c.evaluated.id for c in group]
        check_same_classes([c.classes or c.model.spec.num_classes for c in group], names)
        first = group[0]
        spec = request.data or first.data
        if not spec:
            raise VggbenchError(
                f"{names[0]}: give --data (e.g. imagefolder:/data/imagenet for ImageNet weights); "
                "the model carries no dataset"
            )
        own = first.training_data if first.training_data and first.training_data["spec"] == spec else None
        data_args = {
            "spec": spec,
            "root": request.data_root or (own or {}).get("root"),
            "limit_train": (own or {}).get("limit_train"),
            "val_split": (own or {}).get("val_split"),
            "skip_bad_images": request.skip_bad_images or (own or {}).get("skip_bad_images", False),
        }
        dataset = load_dataset(
            spec,
            root=data_args["root"],
            limit_train=data_args["limit_train"],
            limit_val=request.limit_val,
            val_split=data_args["val_split"],
            seed=DATA_SEED,
            skip_bad_images=data_args["skip_bad_images"],
        )
        for c in group:
            if c.model.spec.num_classes != dataset.num_classes:
                raise VggbenchError(
                    f"{c.evaluated.id} has {c.model.spec.num_classes} classes but {dataset.name} has "
                    f"{dataset.num_classes}; evaluate on the dataset the model was trained on"
                )
            if c.classes and list(c.classes) != list(dataset.classes):
                raise VggbenchError(
                    f"{c.evaluated.id} was trained on other classes than those of {dataset.name}; "
                    "evaluate on the dataset the model was trained on"
                )
        if len(dataset.val) == 0:
            raise VggbenchError(
                f"the validation split of {dataset.name} is empty; check --data and --limit-val"
            )
        stats = [_stats_for(c, dataset, data_args, request.results_dir) for c in group]
        paper_scales = [test_scales(request.scales, c.train_scale) for c in group]
        crop = first.model.spec.crop
        pixel_scales = [tuple(to_pixels(q, crop) for q in qs) for qs in paper_scales]
        same = len(set(paper_scales)) == 1
        n = min(len(dataset.val), request.max_images or len(dataset.val))
        label = f"eval {'+'.join(name[:12] for name in names)} ({', '.join(methods)})"
        progress = progress_factory(label, n) if progress_factory else None
        out = evaluate(
            [c.model for c in group],
            dataset.val,
            stats,
            methods=methods,
            scales_px=pixel_scales[0] if same else pixel_scales,
            batch_size=request.batch,
            device=device,
            max_images=request.max_images,
            progress=progress,
        )
        limits = {
            "limit_val": request.limit_val,
            "max_images": request.max_images,
            "val_split": data_args["val_split"],
            "limit_train": data_args["limit_train"],
        }
        for method, result in out.items():
            record = eval_record(
                result,
                [c.evaluated for c in group],
                test_scales=paper_scales[0] if same else paper_scales,
                test_scales_px=pixel_scales[0] if same else pixel_scales,
                dataset=dataset.name,
                limits=limits,
                device=str(device),
                machine=machine,
                extra={
                    "normalization": [
                        s.name if isinstance(s, Normalization) else "train mean RGB" for s in stats
                    ]
                },
                details={"scales_spec": request.scales},
            )
            store.write_record(Path(request.results_dir), "evals", record["id"], record)
            records.append(record)
    return records
