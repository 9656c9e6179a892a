"""The evaluation engine: one model, or a fusion of several, over a dataset, with each protocol.

Over several test scales the posteriors are averaged over scales; fusion averages posteriors over
models (Table 6). Each model's posterior is computed once per base method and scale and reused for
fusion and for multi-crop+dense.

Costs: forward passes per image (net evaluations, summed over scales, flips, crops and fused
models) and MACs per image (multiply-accumulates, the conv form at each actual input size for
dense, the FC form at the crop for center and multi-crop), from `counting.macs_per_pass`, so that
ImageNet's many image sizes cost nothing to count.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch

from vggbench import paper
from vggbench.counting import macs_per_pass
from vggbench.data import (
    EvalLoader,
    Images,
    RGBStats,
    eval_preprocess,
    rescale_shorter_side,
    same_size_groups,
)
from vggbench.errors import VggbenchError
from vggbench.evaluate.protocols import (
    BOTH,
    CENTER,
    DENSE,
    MULTI_CROP,
    base_methods,
    center_probabilities,
    check_scales,
    dense_probabilities,
    effective_k,
    fuse,
    multi_crop_probabilities,
    parse_methods,
    topk_correct,
)
from vggbench.models import VGG, ModelSpec, to_fully_connected, to_fully_convolutional
from vggbench.runtime import memory_format, synchronize
from vggbench.store import MemberErrors

#: uint8 images (g, 3, H, W) of one shape and a test scale Q in pixels -> float net input on the device.
Prepare = Callable[[torch.Tensor, int], torch.Tensor]
#: One scale set (pixels) for every model, or one per model.
ScaleSets = Sequence[int] | Sequence[Sequence[int]]
TOP_K = (1, 5)


@dataclass(frozen=True)
class Normalization:
    """Net input = (image on the [0, 1] scale - mean) / std, per RGB channel. The paper subtracts
    the training set's mean RGB only (std 1); torchvision's ImageNet weights expect ImageNet's
    mean and std as well."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    name: str = "custom"


@dataclass(frozen=True)
class MeanRGB:
    """The paper's preprocessing for our runs: the training set's mean RGB subtracted from pixel
    values on the run's input range (0-255, Caffe's, by default)."""

    stats: RGBStats
    input_range: str = paper.INPUT_RANGE

    @property
    def name(self) -> str:
        return mean_rgb_name(self.input_range)


#: What torchvision's IMAGENET1K_V1 weights were trained with (their `transforms()`).
IMAGENET_NORMALIZATION = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "imagenet")
#: How a record names the paper's preprocessing (the training set's mean RGB subtracted).
TRAIN_MEAN_RGB = "train mean RGB"
Preprocessing = RGBStats | MeanRGB | Normalization


def mean_rgb_name(input_range: str) -> str:
    """A record's name for the mean-RGB preprocessing on an input range, e.g. 'train mean RGB, 0-255'."""
    return f"{TRAIN_MEAN_RGB}, {input_range}"


def normalization_name(stats: Preprocessing) -> str:
    return MeanRGB(stats).name if isinstance(stats, RGBStats) else stats.name


@dataclass
class MethodResult:
    """One method's errors and costs over a set of images (for one model or a fusion of several)."""

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
    members: list[MemberErrors] = field(default_factory=list)  # each fused model's errors alone


def make_prepare(stats: Preprocessing) -> Prepare:
    """The test-time preprocessing for a model: rescale the shorter side to Q, then subtract the
    training set's mean RGB (`data.RGBStats`, Section 3.2's only preprocessing, via
    `data.eval_preprocess`) or apply a `Normalization` (mean and std, for torchvision weights)."""
    if isinstance(stats, Normalization):

        def prepare(images: torch.Tensor, q: int) -> torch.Tensor:
            x = rescale_shorter_side(images, q)
            mean = torch.tensor(stats.mean, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(stats.std, device=x.device).view(1, 3, 1, 1)
            return (x - mean) / std

        return prepare

    mean_rgb = stats if isinstance(stats, MeanRGB) else MeanRGB(stats)

    def prepare_stats(images: torch.Tensor, q: int) -> torch.Tensor:
        return eval_preprocess(images, q, mean_rgb.stats, mean_rgb.input_range)

    return prepare_stats


@dataclass
class _Net:
    fc: VGG
    conv: VGG
    spec: ModelSpec
    scales: tuple[int, ...]  # its test scales in pixels
    prepare: Prepare


def _nets(
    models: Sequence[VGG], scales: list[tuple[int, ...]], prepares: list[Prepare], device, layout
) -> list[_Net]:
    """Each model in both head forms on the device in memory format `layout`; fused models must
    share classes and crop."""
    if not models:
        raise VggbenchError("no model to evaluate")
    nets = []
    for model, qs, prepare in zip(models, scales, prepares):
        fc = model if not model.fully_convolutional else to_fully_connected(model)
        conv = model if model.fully_convolutional else to_fully_convolutional(model)
        fc, conv = (m.to(device, memory_format=layout).eval() for m in (fc, conv))
        nets.append(_Net(fc, conv, model.spec, qs, prepare))
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


def _per_model_scales(scales_px: ScaleSets, n_models: int, crop: int) -> list[tuple[int, ...]]:
    """One scale set shared by every model, or one per model (Table 6's submission fuses nets each
    at its own multi-scale set)."""
    if scales_px and all(isinstance(s, (list, tuple)) for s in scales_px):
        if len(scales_px) != n_models:
            raise VggbenchError(
                f"{len(scales_px)} scale sets for {n_models} models; give one set or one per model"
            )
        return [check_scales(s, crop) for s in scales_px]
    return [check_scales(scales_px, crop)] * n_models


def _per_model_prepares(prepare: Prepare | Sequence[Prepare], n_models: int) -> list[Prepare]:
    prepares = list(prepare) if isinstance(prepare, (list, tuple)) else [prepare] * n_models
    if len(prepares) != n_models:
        raise VggbenchError(
            f"{len(prepares)} preprocessings for {n_models} models; give one or one per model"
        )
    return prepares


class _Engine:
    """The loop of `evaluate_batches`, with its running tallies: correct counts per method (fusion
    and members), forward passes, MACs and seconds per base method."""

    def __init__(
        self, nets: list[_Net], methods: list[str], batch_size: int, flip: bool, device, layout
    ) -> None:
        self.nets, self.methods, self.bases, self.layout = nets, methods, base_methods(methods), layout
        self.batch_size, self.flip, self.device = batch_size, flip, device
        self.crop, self.num_classes = nets[0].spec.crop, nets[0].spec.num_classes
        views = paper.CROP_GRID**2 * (2 if flip else 1)
        self.views = views
        self.per_view = {DENSE: 2 if flip else 1, MULTI_CROP: views, CENTER: 1}
        self.correct = {m: dict.fromkeys(TOP_K, 0) for m in methods}
        self.member_correct = {m: [dict.fromkeys(TOP_K, 0) for _ in nets] for m in methods}
        self.seconds = dict.fromkeys(self.bases, 0.0)
        self.prep_seconds = 0.0
        self.macs = dict.fromkeys(self.bases, 0)
        self.passes = dict.fromkeys(self.bases, 0)
        self.seen = 0
        # models sharing a preprocessing share its rescaled images
        self.prepares = list(dict.fromkeys(n.prepare for n in nets))
        self.scales = tuple(sorted(set().union(*(n.scales for n in nets))))

    def batch(self, images: Images, labels: torch.Tensor) -> None:
        """Score one batch with every method; the posteriors of each model are averaged over scales."""
        self._check_labels(labels)
        posterior = {
            (i, m): torch.zeros(len(labels), self.num_classes, device=self.device)
            for i in range(len(self.nets))
            for m in self.bases
        }
        groups = same_size_groups(images)
        for q in self.scales:
            for prepare in self.prepares:
                users = [i for i, n in enumerate(self.nets) if n.prepare is prepare and q in n.scales]
                if users:
                    for x, where in self._rescaled(groups, prepare, q):
                        self._forward_all(users, x, where, posterior)
        self._score(posterior, labels)
        self.seen += len(labels)

    def _check_labels(self, labels: torch.Tensor) -> None:
        if int(labels.max()) >= self.num_classes or int(labels.min()) < 0:
            raise VggbenchError(
                f"a label ({int(labels.max())}) is outside the model's {self.num_classes} classes; "
                "evaluate on the dataset the model was trained on"
            )

    def _rescaled(self, groups, prepare: Prepare, q: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each original shape rescaled to q once, then groups that land on one shape merged:
        [(net input (g, 3, h, w), the images' places in the batch)]."""
        merged: dict[tuple[int, int], list[tuple[list[int], torch.Tensor]]] = defaultdict(list)
        synchronize(self.device)
        start = time.perf_counter()
        for indices, group in groups:
            x = prepare(group.to(self.device), q).contiguous(memory_format=self.layout)
            merged[tuple(x.shape[-2:])].append((indices, x))
        synchronize(self.device)
        self.prep_seconds += time.perf_counter() - start
        out = []
        for (h, w), parts in merged.items():
            if min(h, w) < self.crop:
                raise VggbenchError(
                    f"an image rescaled to {h}x{w} px is smaller than the crop ({self.crop} px)"
                )
            x = torch.cat([p for _, p in parts]) if len(parts) > 1 else parts[0][1]
            out.append((x, torch.tensor([i for idx, _ in parts for i in idx], device=self.device)))
        return out

    def _forward_all(self, users: list[int], x: torch.Tensor, where: torch.Tensor, posterior: dict) -> None:
        """Every base method of every model that uses this scale, timed and counted."""
        g, (h, w) = len(where), x.shape[-2:]
        for i in users:
            net = self.nets[i]
            for method in self.bases:
                start = time.perf_counter()
                p = self._probabilities(net, method, x)
                posterior[i, method].index_add_(0, where, p, alpha=1.0 / len(net.scales))
                synchronize(self.device)
                self.seconds[method] += time.perf_counter() - start
                passes = g * self.per_view[method]
                self.passes[method] += passes
                dense = method == DENSE
                size = (h, w) if dense else (self.crop, self.crop)
                self.macs[method] += passes * macs_per_pass(net.spec, dense, *size)

    def _probabilities(self, net: _Net, method: str, x: torch.Tensor) -> torch.Tensor:
        """One base method on same-shape images, in passes of at most `batch_size` net inputs (dense
        counts an image and its flip as two; an image's 50 crops are never split)."""
        g, batch = len(x), self.batch_size
        if method == DENSE:
            step = max(1, batch // self.per_view[DENSE])
            return torch.cat(
                [dense_probabilities(net.conv, x[s : s + step], self.flip) for s in range(0, g, step)]
            )
        if method == MULTI_CROP:
            return multi_crop_probabilities(net.fc, x, self.crop, max(batch, self.views), flips=self.flip)
        return torch.cat(
            [center_probabilities(net.fc, x[s : s + batch], self.crop) for s in range(0, g, batch)]
        )

    def _score(self, posterior: dict, labels: torch.Tensor) -> None:
        for method in self.methods:
            members = [
                0.5 * (posterior[i, DENSE] + posterior[i, MULTI_CROP])
                if method == BOTH
                else posterior[i, method]
                for i in range(len(self.nets))
            ]
            for k, hits in topk_correct(fuse(members), labels, TOP_K).items():
                self.correct[method][k] += int(hits)
            if len(members) > 1:
                for i, member in enumerate(members):
                    for k, hits in topk_correct(member, labels, TOP_K).items():
                        self.member_correct[method][i][k] += int(hits)

    def results(self) -> dict[str, MethodResult]:
        seen = self.seen
        if seen == 0:
            raise VggbenchError(
                "no images to evaluate: the validation set is empty; check --data and --limit-val"
            )

        def error(correct: int) -> float:
            return 100.0 * (seen - correct) / seen

        scale_sets = [n.scales for n in self.nets]
        out = {}
        for method in self.methods:
            parts = (DENSE, MULTI_CROP) if method == BOTH else (method,)
            secs = self.prep_seconds + sum(self.seconds[p] for p in parts)
            members = self.member_correct[method] if len(self.nets) > 1 else []
            out[method] = MethodResult(
                method=method,
                top1_err=error(self.correct[method][1]),
                top5_err=error(self.correct[method][5]),
                images=seen,
                forward_passes_per_image=sum(self.passes[p] for p in parts) / seen,
                macs_per_image=sum(self.macs[p] for p in parts) / seen,
                seconds=secs,
                images_per_s=seen / secs if secs > 0 else float("inf"),
                scales_px=scale_sets[0] if len(set(scale_sets)) == 1 else tuple(scale_sets),
                crop=self.crop,
                top5_k=effective_k(5, self.num_classes),
                members=[MemberErrors(error(c[1]), error(c[5])) for c in members],
            )
        return out


def evaluate_batches(
    models: Sequence[VGG],
    batches: Iterable[tuple[Images, torch.Tensor]],
    prepare: Prepare | Sequence[Prepare],
    *,
    methods: Sequence[str],
    scales_px: ScaleSets,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    flip: bool = True,
    progress: Callable[[int], None] | None = None,
    channels_last: bool = True,
) -> dict[str, MethodResult]:
    """Evaluate one model, or the fusion of several, with each of `methods` over `scales_px`.

    `batches` yields (uint8 images, labels); `prepare(images, q)` rescales a same-shape uint8 group
    to test scale q and normalises it (the net's input, on `device`): one for all models or one per
    model (fused runs trained on different data have different mean RGBs). `scales_px` is one scale
    set for all models or one per model.

    `batch_size` caps the net inputs of one forward pass. Timing covers preprocessing and the
    forward passes of each base method (multi-crop+dense: both), excluding data loading; on a GPU
    the device is synchronised around each timed part. `channels_last` (the default, as in
    training) puts models and inputs in NHWC: faster, and only float rounding differs."""
    device = torch.device(device)
    layout = memory_format(channels_last)
    if not models:
        raise VggbenchError("no model to evaluate")
    crop = models[0].spec.crop
    scales = _per_model_scales(scales_px, len(models), crop)
    engine = _Engine(
        _nets(models, scales, _per_model_prepares(prepare, len(models)), device, layout),
        parse_methods(methods),
        batch_size,
        flip,
        device,
        layout,
    )
    with torch.inference_mode():
        for images, labels in batches:
            labels = torch.as_tensor(labels).long()
            engine.batch(images, labels)
            if progress is not None:
                progress(len(labels))
    return engine.results()


def evaluate(
    models: Sequence[VGG],
    imageset,
    stats: Preprocessing | Sequence[Preprocessing],
    *,
    methods: Sequence[str],
    scales_px: ScaleSets,
    crop: int | None = None,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    flip: bool = True,
    progress: Callable[[int], None] | None = None,
) -> dict[str, MethodResult]:
    """Evaluate `models` (one, or several fused) on a `data.ImageSet` with each method.

    `stats`: the training set's `RGBStats` (0-255 input), a `MeanRGB` or a `Normalization`, one for
    all models or one per model. `crop`, when given, must be the models' crop (the crop is part of
    the model)."""
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
        flip=flip,
        progress=progress,
    )
