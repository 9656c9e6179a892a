"""Evaluations that end as stored records: what `vggbench eval` asks for (`EvalOptions` ->
`run_eval`), and what an ablation asks for (`evaluate_run`: one stored run on its own validation
split, found in the store when it was evaluated before).

An evaluation's identity is `store.eval_identity`: the same function names the record when it
is written and finds it when it is asked for again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from vggbench import paper, store
from vggbench.architectures import get_architecture
from vggbench.checks import positive
from vggbench.data import DATA_SEED, Dataset, stratified_subset
from vggbench.data.fingerprint import changed_since_training
from vggbench.data.sources import beyond_split, data_fingerprint, split_sizes
from vggbench.errors import VggbenchError
from vggbench.evaluate.engine import (
    IMAGENET_NORMALIZATION,
    MethodResult,
    evaluate,
    mean_rgb_name,
    normalization_name,
)
from vggbench.evaluate.protocols import DENSE, check_same_classes, parse_methods
from vggbench.evaluate.sources import (
    DEFAULT_CHECKPOINT_SCALE,
    TORCHVISION_PREFIX,
    ModelSource,
    checkpoint_training_data,
    load_checkpoint_file,
    load_data,
    load_run,
    run_source,
    select_runs,
    source_stats,
    torchvision_model,
)
from vggbench.runtime import machine_info, machine_name, resolve_device, utc_now
from vggbench.scales import TrainScale, check_crop, parse_train_scale, test_scales, to_pixels
from vggbench.store import DataSource, EvalLimits, EvalRecord, MemberErrors, RunRecord

SCALES_DEFAULT = "single"
#: The seed of --max-images' stratified subset: --limit-val's, so that --max-images N of a whole
#: validation split picks the images --limit-val N would.
EVAL_SUBSET_SEED = DATA_SEED + 1
NORMS = (None, "train", "imagenet")
#: factory(label, total) -> advance(n): the CLI's progress bars.
ProgressFactory = Callable[[str, int], Callable[[int], None]]


@dataclass
class EvalOptions:
    """The `vggbench eval` options, parsed; `run_eval` carries them out."""

    runs: list[str] = field(default_factory=list)
    fuse: bool = False
    methods: list[str] = field(default_factory=lambda: [DENSE])
    scales: str = SCALES_DEFAULT
    net: str | None = None
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


@dataclass(frozen=True)
class _EvalJob:
    """What one evaluation of a group of sources needs besides the sources."""

    dataset: Dataset
    data: DataSource  # which images `dataset` holds
    methods: list[str]
    scales_spec: str
    limits: EvalLimits
    results_dir: Path
    device: torch.device
    batch: int = 64
    class_counts: list[int] | None = None  # per class, when `dataset.val` is a --max-images subset


def find_sources(options: EvalOptions) -> list[ModelSource]:
    """The models the options name: torchvision weights, a checkpoint file, stored runs by id, or
    stored runs selected by --config / --scale (/ --data)."""
    if sum(bool(x) for x in (options.weights, options.checkpoint, options.runs)) > 1:
        raise VggbenchError(
            "give one source of models: run ids, --checkpoint FILE or --weights torchvision:NAME"
        )
    if options.norm not in NORMS:
        raise VggbenchError(
            f"unknown normalisation {options.norm!r}; choose train (the paper's mean RGB) or imagenet"
        )
    scale = parse_train_scale(options.scale or DEFAULT_CHECKPOINT_SCALE)
    if options.weights:
        model, _categories, normalization = torchvision_model(options.weights)
        name = TORCHVISION_PREFIX + options.weights.lower().split(":")[-1]
        # its class names (English) are not an image folder's (WordNet ids): only their number is
        # checked; ImageNet's folders sorted by name are in torchvision's class order
        own = None if options.norm == "train" else normalization
        return [ModelSource(name, model, scale, None, own, None, input_range="0-1")]  # trained on 0-1
    if options.checkpoint:
        file = load_checkpoint_file(
            options.checkpoint, options.net, options.classes, options.width, options.crop
        )
        if options.scale is None and file.config.get("scale"):
            scale = parse_train_scale(file.config["scale"])
        norm = IMAGENET_NORMALIZATION if options.norm == "imagenet" else None
        training = checkpoint_training_data(file.config)
        input_range = file.config.get("input_range", paper.INPUT_RANGE)
        return [ModelSource(f"checkpoint:{file.sha}", file.model, scale, None, norm, training, input_range)]
    ids = list(options.runs)
    if not ids:
        if not (options.net or options.scale):
            raise VggbenchError(
                "nothing to evaluate: name a stored run (or several with --fuse), select runs with "
                "--config/--scale, or give --checkpoint FILE or --weights torchvision:vgg16"
            )
        ids = select_runs(options.results_dir, options.net, options.scale, options.data)
    _check_named_once(options.results_dir, ids)
    if options.runs:
        _check_runs_match(options.results_dir, ids, options.net, options.scale)
    sources = [run_source(*load_run(options.results_dir, run_id)) for run_id in ids]
    if options.norm == "imagenet":
        for source in sources:
            source.normalization = IMAGENET_NORMALIZATION
    return sources


def _check_named_once(results_dir: str, ids: list[str]) -> None:
    """Each run once: a fusion of a run with itself is that run at twice the cost (and "A+A")."""
    named: dict[str, str] = {}
    for given in ids:
        run_id = store.find_run(Path(results_dir), given)
        if run_id in named:
            raise VggbenchError(
                f"run {run_id} is named twice ({named[run_id]!r} and {given!r}); name each run once"
            )
        named[run_id] = given


def _check_runs_match(results_dir: str, ids: list[str], net: str | None, scale: str | None) -> None:
    """--config and --scale select stored runs when none is named; beside named runs they must
    describe them, or the filter would be ignored without a word."""
    for given in ids:
        run = store.read_run(Path(results_dir), store.find_run(Path(results_dir), given))
        if run is None:
            continue
        if scale is not None and parse_train_scale(scale) != parse_train_scale(run.train_scale):
            raise VggbenchError(
                f"run {run.id} was trained at S={run.train_scale}, not --scale {scale}; drop --scale "
                "(it selects stored runs when none is named) or name a run of that scale"
            )
        if net is not None and get_architecture(net).name != run.net:
            raise VggbenchError(
                f"run {run.id} is net {run.net}, not --config {net}; drop --config (it selects stored "
                "runs when none is named) or name a run of that net"
            )


def _groups(options: EvalOptions, found: list[ModelSource]) -> list[list[ModelSource]]:
    """Fusion puts every source in one group; otherwise each is evaluated alone."""
    if options.fuse:
        if len(found) < 2:
            raise VggbenchError(f"--fuse needs at least two models, got {len(found)}; name more runs")
        return [found]
    return [[s] for s in found]


def _check_classes(group: list[ModelSource], dataset: Dataset) -> None:
    for s in group:
        if s.model.spec.num_classes != dataset.num_classes:
            raise VggbenchError(
                f"{s.id} has {s.model.spec.num_classes} classes but {dataset.name} has "
                f"{dataset.num_classes}; evaluate on the dataset the model was trained on"
            )
        if s.classes and list(s.classes) != list(dataset.classes):
            raise VggbenchError(
                f"{s.id} was trained on other classes than those of {dataset.name}; "
                "evaluate on the dataset the model was trained on"
            )
    if len(dataset.val) == 0:
        raise VggbenchError(f"the validation split of {dataset.name} is empty; check --data and --limit-val")


def _record(
    result: MethodResult, group: list[ModelSource], paper_scales: list, stats_names: list[str], run: _EvalJob
) -> EvalRecord:
    """The record of one method's result on a group (one source, or a fusion)."""
    same = len(set(paper_scales)) == 1
    test_scales_ = list(paper_scales[0]) if same else [list(s) for s in paper_scales]
    scales_px = result.scales_px
    test_scales_px = list(scales_px) if same else [list(s) for s in scales_px]
    ids = [s.id for s in group]
    identity = store.eval_identity(
        ids, result.method, test_scales_, run.dataset.name, run.limits, stats_names
    )
    return EvalRecord(
        id=store.record_id(identity),
        runs=ids,
        nets=[s.net for s in group],
        train_scales=[str(s.train_scale) for s in group],
        method=result.method,
        test_scales=test_scales_,
        test_scales_px=test_scales_px,
        scales_spec=run.scales_spec,
        crop=result.crop,
        dataset=run.dataset.name,
        limits=run.limits,
        class_counts=run.class_counts,
        normalization=stats_names,
        images=result.images,
        top1_err=result.top1_err,
        top5_err=result.top5_err,
        top5_k=result.top5_k,
        members=[MemberErrors(m.top1_err, m.top5_err) for m in result.members],
        forward_passes_per_image=result.forward_passes_per_image,
        macs_per_image=result.macs_per_image,
        seconds=result.seconds,
        images_per_s=result.images_per_s,
        device=str(run.device),
        machine=machine_name(machine_info(run.device)),
        torch_version=torch.__version__,
        created=utc_now(),
    )


def evaluate_group(
    group: list[ModelSource], run: _EvalJob, progress: Callable[[int], None] | None = None
) -> list[EvalRecord]:
    """Evaluate one source, or the fusion of several, with each method; store one record each."""
    check_same_classes([s.classes or s.model.spec.num_classes for s in group], [s.id for s in group])
    _check_classes(group, run.dataset)
    stats = [source_stats(s, run.dataset, run.data, run.results_dir) for s in group]
    paper_scales = [test_scales(run.scales_spec, s.train_scale) for s in group]
    crop = group[0].model.spec.crop
    pixel_scales = [tuple(to_pixels(q, crop) for q in qs) for qs in paper_scales]
    results = evaluate(
        [s.model for s in group],
        run.dataset.val,
        stats,
        methods=run.methods,
        scales_px=pixel_scales[0] if len(set(paper_scales)) == 1 else pixel_scales,
        batch_size=run.batch,
        device=run.device,
        progress=progress,  # a --max-images subset is already `dataset.val` (see `val_subset`)
    )
    names = [normalization_name(s) for s in stats]
    records = [_record(result, group, paper_scales, names, run) for result in results.values()]
    for record in records:
        store.write_eval(run.results_dir, record)
    return records


def _eval_data(options: EvalOptions, first: ModelSource) -> DataSource:
    """The images to evaluate on: --data, else the first model's own dataset (its training split,
    for the mean RGB, and its validation split)."""
    spec = options.data or (first.training_data.spec if first.training_data else None)
    if not spec:
        raise VggbenchError(
            f"{first.id}: give --data (e.g. imagefolder:/data/imagenet for ImageNet weights); "
            "the model carries no dataset"
        )
    own = first.training_data if first.training_data and first.training_data.spec == spec else None
    return DataSource(
        spec,
        options.data_root or (own.root if own else None),
        own.limit_train if own else None,
        options.limit_val,
        own.val_split if own else None,
        options.skip_bad_images or (own.skip_bad_images if own else False),
    )


def _note_changed_data(group: list[ModelSource], data: DataSource, say: Callable[[str], None] | None) -> None:
    """Say (one line per run) when a stored run is evaluated on its own dataset whose files changed
    since it trained (their fingerprint differs from the one in its record)."""
    for source in group:
        own = source.training_data
        if not (say and source.data_fingerprint and own and own.spec == data.spec):
            continue
        now = data_fingerprint(data.spec, data.root, val_split=data.val_split, fresh=True)
        if now != source.data_fingerprint:
            changed = changed_since_training(source.id, data.spec, source.data_fingerprint, now)
            say(f"{changed}; this evaluation uses the images as they are now")


def val_subset(dataset: Dataset, max_images: int | None) -> tuple[Dataset, int | None, list[int] | None]:
    """(dataset, max_images, class counts): the dataset with a stratified, seeded subset of
    `max_images` of its validation split (`data.stratified_subset`, each class in proportion), the
    limit and the subset's images per class (in class order); the dataset as it is, None and None
    when `max_images` is None or at least the split's size (the whole split)."""
    if max_images is None or max_images >= len(dataset.val):
        return dataset, None, None
    val = dataset.val.subset(stratified_subset(dataset.val.labels, max_images, EVAL_SUBSET_SEED))
    counts = torch.bincount(val.labels, minlength=dataset.num_classes).tolist()
    return replace(dataset, val=val), max_images, counts


def _val_limit(limit_val: int | None, data: DataSource, say: Callable[[str], None] | None) -> int | None:
    """--limit-val, or None where it takes the whole validation split (said when above it), so that
    the evaluation is recorded as the one without it, as train records its run."""
    if limit_val is None:
        return None
    found = data_fingerprint(data.spec, data.root, val_split=data.val_split)
    _, size = split_sizes(data.spec, data.root, data.val_split, data.skip_bad_images, found)
    if limit_val < size:
        return limit_val
    if limit_val > size and say:
        say(beyond_split("val", limit_val, size, data.spec, "evaluation"))
    return None


def _check_options(options: EvalOptions) -> None:
    parse_methods(options.methods)
    if options.batch < 1:
        raise VggbenchError(f"batch {options.batch} must be at least 1")
    if options.max_images is not None and options.max_images < 1:
        raise VggbenchError(
            f"--max-images {options.max_images} must be at least 1; "
            "leave it out to evaluate the whole validation split"
        )
    test_scales(options.scales, TrainScale(*paper.JITTER_RANGE))  # a bad spec fails before any loading
    _check_checkpoint_options(options)


def _check_checkpoint_options(options: EvalOptions) -> None:
    """--classes, --width and --crop describe a --checkpoint file; a stored run or torchvision's
    weights know their own, so there they would be ignored in silence."""
    given = [f"--{name}" for name in ("classes", "width", "crop") if getattr(options, name) is not None]
    if given and not options.checkpoint:
        raise VggbenchError(
            f"{', '.join(given)} {'describes' if len(given) == 1 else 'describe'} a --checkpoint file; "
            "stored runs and --weights know their own "
            "classes, width and crop: leave them out, or give --checkpoint FILE"
        )
    if options.classes is not None and options.classes < 1:
        raise VggbenchError(
            f"--classes {options.classes} must be at least 1; leave it out to read it from FC8"
        )
    if options.width is not None and not positive(options.width):
        raise VggbenchError(f"--width {options.width} must be a finite positive number; e.g. 1 or 0.125")
    if options.crop is not None:
        check_crop(options.crop)


def run_eval(
    options: EvalOptions,
    progress_factory: ProgressFactory | None = None,
    say: Callable[[str], None] | None = None,
) -> list[EvalRecord]:
    """Carry out `vggbench eval`: evaluate each model (or their fusion) with each method on the
    validation split (or a stratified subset of --max-images of it), write one record per
    (models, method) to <results>/evals, return the records. `say` gets one line when
    --max-images is at least the split's size (the whole split is evaluated and recorded so)."""
    _check_options(options)
    methods = parse_methods(options.methods)
    device = resolve_device(options.device)
    records = []
    for group in _groups(options, find_sources(options)):
        data = _eval_data(options, group[0])
        _note_changed_data(group, data, say)
        limit_val = _val_limit(options.limit_val, data, say)
        dataset, max_images, counts = val_subset(load_data(data, limit_val), options.max_images)
        if options.max_images is not None and max_images is None and say:
            say(
                f"--max-images {options.max_images} is at least the {len(dataset.val)} validation images "
                f"of {dataset.name}: evaluating all of them"
            )
        limits = EvalLimits(limit_val, max_images, data.val_split, data.limit_train)
        run = _EvalJob(
            dataset,
            data,
            methods,
            options.scales,
            limits,
            Path(options.results_dir),
            device,
            options.batch,
            counts,
        )
        label = f"eval {'+'.join(s.id[:12] for s in group)} ({', '.join(methods)})"
        progress = progress_factory(label, len(dataset.val)) if progress_factory else None
        records += evaluate_group(group, run, progress)
    return records


def _run_max_images(run: RunRecord, max_images: int | None) -> int | None:
    """The limit an evaluation of a run records: None (the whole split) when `max_images` is at
    least the run's validation images, as `val_subset` decides."""
    return None if max_images is None or max_images >= run.val_images else max_images


def run_limits(run: RunRecord, max_images: int | None = None) -> EvalLimits:
    """The images an evaluation of a run on its own validation split (or a --max-images subset) sees."""
    return EvalLimits(
        run.data.limit_val, _run_max_images(run, max_images), run.data.val_split, run.data.limit_train
    )


def run_identity(run: RunRecord, method: str, scales_spec: str, max_images: int | None = None) -> dict:
    """The identity of one evaluation of a stored run on its own validation split."""
    paper_scales = list(test_scales(scales_spec, parse_train_scale(run.train_scale)))
    names = [mean_rgb_name(run.input_range)]
    return store.eval_identity(
        [run.id], method, paper_scales, run.dataset, run_limits(run, max_images), names
    )


def stored_evaluation(
    run: RunRecord, method: str, scales_spec: str, results_dir: Path, max_images: int | None = None
) -> EvalRecord | None:
    """That evaluation when the store holds it."""
    return store.read_eval(results_dir, run_identity(run, method, scales_spec, max_images))


def evaluate_run(
    run: RunRecord,
    methods: Sequence[str],
    scales_spec: str,
    dataset: Dataset,
    results_dir: Path,
    device: str = "auto",
    max_images: int | None = None,
) -> list[EvalRecord]:
    """An ablation's evaluation of one stored run on its own validation split (`dataset`, loaded
    once by the caller with `load_data(run.data, run.data.limit_val)`), or on a stratified subset
    of `max_images` of it (`val_subset`), one record per method: each found in the store when it
    was evaluated before, the rest evaluated in one pass over the images (the model loaded only
    then) and stored."""
    methods = parse_methods(methods)
    found = {m: stored_evaluation(run, m, scales_spec, results_dir, max_images) for m in methods}
    missing = [m for m in methods if found[m] is None]
    if missing:
        source = run_source(*load_run(results_dir, run.id))
        subset, limit, counts = val_subset(dataset, max_images)
        limits = replace(run_limits(run), max_images=limit)
        job = _EvalJob(
            subset,
            run.data,
            missing,
            scales_spec,
            limits,
            Path(results_dir),
            resolve_device(device),
            class_counts=counts,
        )
        found.update((r.method, r) for r in evaluate_group([source], job))
    return [found[m] for m in methods]
