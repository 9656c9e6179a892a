"""Timing primitives and the measurements of each part (see the package's docstring)."""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F

from vggbench import paper, runtime
from vggbench.counting import macs_per_pass
from vggbench.data import ImageSet, RGBStats, TrainAugment, TrainLoader, eval_preprocess
from vggbench.data.cache import CACHED, CacheOptions, cached_train_set
from vggbench.data.sources import load_imagefolder
from vggbench.data.synthetic import make_split, write_jpeg_folder
from vggbench.errors import VggbenchError
from vggbench.evaluate import engine, protocols
from vggbench.models import ModelSpec, build_model
from vggbench.runtime import synchronize
from vggbench.scales import parse_train_scale, test_scales, to_pixels
from vggbench.train import StepLoop

DEVICES = ("auto", "cpu", "cuda")

#: Dense (no sparsity) bf16 tensor peaks in FLOP/s, by a fragment of torch.cuda.get_device_name.
#: More specific names come first: the first fragment found in the name wins.
PEAK_BF16_FLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM
    ("H200", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10G", 70e12),
    ("A10", 125e12),
)

T = TypeVar("T")


# --- Options, device, machine ----------------------------------------------------------------


@dataclass(frozen=True)
class BenchOptions:
    """How every measurement runs; stored in the record."""

    device: str = "auto"
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    threads: int | None = None
    steps: int = 10
    warmup: int = 3
    repeats: int = 3  # overhead: steps x repeats interleaved pairs; evaluation: timed passes
    classes: int = 10
    train_scale: str = "256:512"  # the fast path's augmentation (paper units)
    eval_images: int = 8
    seed: int = 0
    #: data: the ImageFolders to stream and cache; None: the generated ones (GENERATED_FOLDERS), (): none
    folders: tuple[str, ...] | None = None
    workers: int | None = None  # data: a streamed folder's DataLoader workers (default: the cores, at most 8)

    def check(self) -> BenchOptions:
        if self.device not in DEVICES:
            raise VggbenchError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.steps < 1:
            raise VggbenchError(f"steps {self.steps} must be at least 1")
        if self.warmup < 0:
            raise VggbenchError(f"warmup {self.warmup} must be at least 0")
        if self.repeats < 1:
            raise VggbenchError(f"repeats {self.repeats} must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise VggbenchError(f"threads {self.threads} must be at least 1")
        if self.classes < 1:
            raise VggbenchError(f"classes {self.classes} must be at least 1")
        if self.eval_images < 1:
            raise VggbenchError(f"eval images {self.eval_images} must be at least 1")
        if self.workers is not None and self.workers < 0:
            raise VggbenchError(
                f"--workers {self.workers} must be at least 0 (0 decodes in the main process)"
            )
        for folder in self.folders or ():
            if not Path(folder).is_dir():
                raise VggbenchError(
                    f"--data-folder {folder} is not a folder; name an ImageFolder (train/, val/)"
                )
        parse_train_scale(self.train_scale)
        return self


def peak_bf16_flops(device_name: str | None) -> float | None:
    """The dense bf16 peak (FLOP/s) of a GPU by its name, None when unknown or not a GPU."""
    if not device_name:
        return None
    for fragment, peak in PEAK_BF16_FLOPS:
        if fragment.lower() in device_name.lower():
            return peak
    return None


def training_flops_per_image(macs_per_image: float) -> float:
    """A training step: forward (2 FLOPs per MAC) and backward (twice the forward): 6 x MACs."""
    return 6.0 * macs_per_image


def mfu(images_per_s: float, macs_per_image: float, peak_flops: float | None) -> float | None:
    """Model FLOPs utilisation of training: images/s x 6 x MACs per image / peak; None without a peak."""
    if peak_flops is None or peak_flops <= 0:
        return None
    return images_per_s * training_flops_per_image(macs_per_image) / peak_flops


# --- Out of memory ---------------------------------------------------------------------------


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or an allocator failure reported as a RuntimeError."""
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    message = str(error).lower()
    return isinstance(error, (RuntimeError, MemoryError)) and (
        "out of memory" in message or "can't allocate memory" in message or isinstance(error, MemoryError)
    )


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def with_oom_halving(
    measure: Callable[[int], T], batch: int, notes: list[str] | None = None, what: str = ""
) -> tuple[T, int]:
    """Run measure(batch); on out-of-memory halve the batch and retry, down to 1.

    Returns (result, the batch that ran). Each halving appends a line to `notes`."""
    if batch < 1:
        raise VggbenchError(f"batch {batch} must be at least 1")
    while True:
        try:
            return measure(batch), batch
        except (RuntimeError, MemoryError) as error:
            if not is_out_of_memory(error):
                raise
        # outside the except block, so the failed attempt's frames (and tensors) are released
        _free_memory()
        if batch == 1:
            raise VggbenchError(
                f"{what or 'the measurement'} runs out of memory even at batch 1; "
                "use a smaller --width or --crop"
            )
        line = f"{what + ': ' if what else ''}batch {batch} ran out of memory; halved to {batch // 2}"
        if notes is not None:
            notes.append(line)
        batch //= 2


# --- Timing helpers --------------------------------------------------------------------------


def timed(step: Callable[[], object], steps: int, warmup: int, device: torch.device) -> float:
    """Seconds for `steps` calls of `step` after `warmup` untimed calls, synchronised on GPUs."""
    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return time.perf_counter() - start


def interleaved(
    steps: dict[str, Callable[[], object]], n_steps: int, warmup: int, repeats: int, device: torch.device
) -> dict[str, list[float]]:
    """Seconds of each of `repeats` blocks of `n_steps` calls, per named step, the order of the names
    alternating between blocks (ABBA...); `warmup` untimed calls of each first."""
    names = list(steps)
    for name in names:
        timed(steps[name], 0, warmup, device)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            seconds[name].append(timed(steps[name], n_steps, 0, device))
    return seconds


def paired_ratio(ours: Sequence[float], bare: Sequence[float]) -> float:
    """Our throughput over the bare one: the median of each repeat's pair bare_time / our_time."""
    return statistics.median(b / o for o, b in zip(ours, bare))


# --- Models and steps ------------------------------------------------------------------------


def prepare_model(
    spec: ModelSpec,
    options: BenchOptions,
    device: torch.device,
    train: bool = True,
    fully_convolutional: bool = False,
) -> torch.nn.Module:
    """The model on the device in the requested memory format; the model itself (not compiled)."""
    torch.manual_seed(options.seed)
    model = build_model(spec, fully_convolutional).to(
        device=device, memory_format=runtime.memory_format(options.channels_last)
    )
    return model.train(train)


def maybe_compile(model: torch.nn.Module, options: BenchOptions) -> torch.nn.Module:
    return torch.compile(model) if options.compile else model


def synthetic_batch(
    spec: ModelSpec, batch: int, device: torch.device, options: BenchOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-made normalised-looking input and labels on the device."""
    generator = torch.Generator().manual_seed(options.seed)
    x = torch.randn(batch, 3, spec.crop, spec.crop, generator=generator)
    y = torch.randint(0, spec.num_classes, (batch,), generator=generator)
    return x.to(device, memory_format=runtime.memory_format(options.channels_last)), y.to(device)


def sgd(model: torch.nn.Module) -> torch.optim.Optimizer:
    """The paper's optimiser: SGD, momentum 0.9, weight decay 5e-4."""
    return torch.optim.SGD(
        model.parameters(), lr=paper.LEARNING_RATE, momentum=paper.MOMENTUM, weight_decay=paper.WEIGHT_DECAY
    )


def bare_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
    options: BenchOptions,
) -> Callable[[], None]:
    """The baseline: a plain PyTorch SGD step on pre-made tensors."""

    def step() -> None:
        with runtime.autocast(device, options.bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def inference_step(
    model: torch.nn.Module, x: torch.Tensor, device: torch.device, options: BenchOptions
) -> Callable[[], None]:
    def step() -> None:
        with torch.inference_mode(), runtime.autocast(device, options.bf16):
            model(x)

    return step


def macs_per_image(spec: ModelSpec) -> int:
    """MACs of one FC-form forward pass at the spec's crop (as counting.count_macs counts them)."""
    return macs_per_pass(spec, False, spec.crop, spec.crop)


# --- Our training step and the fast path (vggbench.train, vggbench.data) -----------------


def our_loop(
    step_model: torch.nn.Module, model: torch.nn.Module, device: torch.device, options: BenchOptions
) -> StepLoop:
    """The training loop's own per-step work (`train.StepLoop`) with the optimiser the loop builds.
    The rest of the loop (`Trainer._epoch`) needs a dataset, a run folder and validation, so it is not
    timed whole."""
    return StepLoop(
        step_model,
        sgd(model),
        device,
        autocast=runtime.autocast(device, options.bf16),
        channels_last=options.channels_last,
    )


def fast_path_loader(
    spec: ModelSpec, batch: int, device: torch.device, options: BenchOptions, images: int | None = None
) -> TrainLoader:
    """The in-memory fast path: a TrainLoader over synthetic uint8 images of the crop's size
    (CIFAR-like), augmented with the paper's TrainAugment at the options' training scale."""
    count = images or batch * 8
    imageset = make_split(count, spec.crop, spec.num_classes, options.seed, stream=0)
    return TrainLoader(imageset, bench_augment(spec, options), batch, device, seed=options.seed)


def bench_augment(spec: ModelSpec, options: BenchOptions) -> TrainAugment:
    """The paper's TrainAugment at the options' training scale, with fixed colour statistics."""
    stats = RGBStats(torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.02, 0.005, 0.001]), torch.eye(3))
    return TrainAugment(spec.crop, parse_train_scale(options.train_scale), stats)


def endless_batches(loader: TrainLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches epoch after epoch."""
    epoch = 0
    while True:
        yield from loader.epoch(epoch)
        epoch += 1


# --- The measurements ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One (net, width, crop, batch) point."""

    net: str
    width: float
    crop: int
    batch: int

    def spec(self, options: BenchOptions) -> ModelSpec:
        return ModelSpec(self.net, options.classes, self.width, self.crop)

    @property
    def label(self) -> str:
        return f"{self.net} width {self.width:g} crop {self.crop}"


def _row(case: Case, batch: int, **values: Any) -> dict[str, Any]:
    return {
        "net": case.net,
        "width": case.width,
        "crop": case.crop,
        "requested_batch": case.batch,
        "batch": batch,
        "halved": batch != case.batch,
        **values,
    }


def _throughput_row(
    case: Case, batch: int, mode: str, seconds: float, steps: int, macs: int, peak: float | None
) -> dict[str, Any]:
    """A train or infer row: images/s, FLOP/s (6 or 2 per MAC) and, for training, MFU."""
    ips = batch * steps / seconds
    flops = training_flops_per_image(macs) if mode == "train" else 2 * macs
    return _row(
        case,
        batch,
        mode=mode,
        images_per_s=ips,
        ms_per_step=1e3 * seconds / steps,
        macs_per_image=macs,
        gflops=ips * flops / 1e9,
        mfu=mfu(ips, macs, peak) if mode == "train" else None,
    )


def measure_training(
    case: Case, options: BenchOptions, device: torch.device, notes: list[str], peak: float | None
) -> dict[str, Any]:
    spec = case.spec(options)

    def measure(batch: int) -> float:
        model = prepare_model(spec, options, device)
        optimizer = sgd(model)
        x, y = synthetic_batch(spec, batch, device, options)
        return timed(
            bare_step(maybe_compile(model, options), optimizer, x, y, device, options),
            options.steps,
            options.warmup,
            device,
        )

    seconds, batch = with_oom_halving(measure, case.batch, notes, f"train {case.label}")
    return _throughput_row(case, batch, "train", seconds, options.steps, macs_per_image(spec), peak)


def measure_inference(
    case: Case, options: BenchOptions, device: torch.device, notes: list[str]
) -> dict[str, Any]:
    spec = case.spec(options)

    def measure(batch: int) -> float:
        model = maybe_compile(prepare_model(spec, options, device, train=False), options)
        x, _ = synthetic_batch(spec, batch, device, options)
        return timed(inference_step(model, x, device, options), options.steps, options.warmup, device)

    seconds, batch = with_oom_halving(measure, case.batch, notes, f"infer {case.label}")
    return _throughput_row(case, batch, "infer", seconds, options.steps, macs_per_image(spec), None)


def measure_overhead(
    case: Case, options: BenchOptions, device: torch.device, notes: list[str]
) -> dict[str, Any]:
    """Our step vs the bare loop, and our step fed by the fast path vs the bare loop, interleaved."""
    spec = case.spec(options)

    def measure(batch: int) -> dict[str, list[float]]:
        model = prepare_model(spec, options, device)
        step_model = maybe_compile(model, options)
        x, y = synthetic_batch(spec, batch, device, options)
        bare = bare_step(step_model, sgd(model), x, y, device, options)
        loop = our_loop(step_model, model, device, options)
        batches = iter(endless_batches(fast_path_loader(spec, batch, device, options)))

        def ours() -> None:
            loop.step(x, y)

        def ours_with_data() -> None:
            loop.step(*next(batches))

        return interleaved(
            {"bare": bare, "ours": ours, "ours+data": ours_with_data},
            1,
            options.warmup,
            options.steps * options.repeats,
            device,
        )

    seconds, batch = with_oom_halving(measure, case.batch, notes, f"overhead {case.label}")
    n = batch * options.steps * options.repeats
    return _row(
        case,
        batch,
        bare_images_per_s=n / sum(seconds["bare"]),
        ours_images_per_s=n / sum(seconds["ours"]),
        ours_data_images_per_s=n / sum(seconds["ours+data"]),
        step_ratio=paired_ratio(seconds["ours"], seconds["bare"]),
        data_ratio=paired_ratio(seconds["ours+data"], seconds["bare"]),
        pairs=options.steps * options.repeats,
    )


def data_share(data_images_per_s: float, train_images_per_s: float | None) -> float | None:
    """Data time as a share of a training step when the two run one after the other:
    (1 / data rate) / (1 / data rate + 1 / train rate)."""
    if not train_images_per_s:
        return None
    return train_images_per_s / (data_images_per_s + train_images_per_s)


def _data_row(
    case: Case,
    options: BenchOptions,
    source: str,
    folder: str,
    ips: float,
    train_ips: float | None,
    **extra: Any,
) -> dict[str, Any]:
    return _row(
        case,
        case.batch,
        source=source,
        folder=folder,
        train_scale=options.train_scale,
        augment_images_per_s=ips,
        train_images_per_s=train_ips,
        augment_over_train=ips / train_ips if train_ips else None,
        data_share_of_step=data_share(ips, train_ips),
        **{"images": None, "workers": None, "first_decode_s": None, **extra},
    )


def _loader_rate(loader: TrainLoader, case: Case, options: BenchOptions, device: torch.device) -> float:
    batches = iter(endless_batches(loader))
    return case.batch * options.steps / timed(lambda: next(batches), options.steps, options.warmup, device)


def measure_augmentation(
    case: Case, options: BenchOptions, device: torch.device, train_images_per_s: float | None
) -> dict[str, Any]:
    """The fast path alone (gather + TrainAugment on the device) against the model's training throughput."""
    loader = fast_path_loader(case.spec(options), case.batch, device, options)
    ips = _loader_rate(loader, case, options, device)
    return _data_row(case, options, IN_MEMORY_SOURCE, "synthetic tensors", ips, train_images_per_s)


#: The data part's generated folders, as the data-speed issue asks: (images, shorter sides in px, the
#: largest aspect): square 32-px images as CIFAR's, and photo-like ones as ImageNet's.
GENERATED_FOLDERS = ((10_000, (32, 32), 1.0), (2_000, (256, 500), 4 / 3))
IN_MEMORY_SOURCE, STREAMED_SOURCE, CACHED_SOURCE = "in memory", "folder, streamed", "folder, cached"
GPU_DECODED_SOURCE = "folder, streamed, GPU decode"


def bench_folders(options: BenchOptions, scratch: Path) -> list[tuple[str, ImageSet]]:
    """(label, training images) of each folder to measure, scanned once for every case:
    --data-folder's, or GENERATED_FOLDERS written into scratch (JPEGs of the synthetic classes,
    10 val images)."""
    if options.folders is not None:
        paths = [(folder, Path(folder)) for folder in options.folders]
    else:
        paths = _generated_folders(options, scratch)
    return [
        (label, load_imagefolder(path, skip_bad_images=False, val_split=None).train) for label, path in paths
    ]


def _generated_folders(options: BenchOptions, scratch: Path) -> list[tuple[str, Path]]:
    out = []
    for count, (low, high), aspect in GENERATED_FOLDERS:
        sides = f"{low}" if low == high else f"{low}-{high}"
        folder = scratch / f"{count}-{sides}"
        path = write_jpeg_folder(folder, count, (low, high), seed=options.seed, val=10, max_aspect=aspect)
        out.append((f"{count:,} JPEGs at {sides} px", path))
    return out


def measure_folder(
    case: Case,
    options: BenchOptions,
    device: torch.device,
    train_images_per_s: float | None,
    label: str,
    train_set: ImageSet,
    scratch: Path,
    notes: list[str],
) -> list[dict[str, Any]]:
    """A folder streamed (workers decode each file, every epoch), and decoded once into the cache
    (`train --cache-budget`, under scratch) then read from it; on a GPU also streamed with nvJPEG.
    A folder the cache does not take (over the budget) has no cached row, and `notes` say why."""
    spec = case.spec(options)
    augment = bench_augment(spec, options)
    workers = options.workers if options.workers is not None else min(8, os.cpu_count() or 1)
    common = dict(images=len(train_set))
    rows = []
    streams = [(STREAMED_SOURCE, False)] + ([(GPU_DECODED_SOURCE, True)] if device.type == "cuda" else [])
    for source, gpu_decode in streams:
        loader = TrainLoader(
            train_set, augment, case.batch, device, options.seed, workers=workers, gpu_decode=gpu_decode
        )
        ips = _loader_rate(loader, case, options, device)
        rows.append(
            _data_row(case, options, source, label, ips, train_images_per_s, workers=workers, **common)
        )
    s_max = parse_train_scale(options.train_scale).pixels(spec.crop)[1]
    cache = CacheOptions("auto", scratch / "cache")
    cached = cached_train_set(train_set, s_max, cache, device=device, warn=notes.append, note=notes.append)
    if cached.path == CACHED:
        decode_s = cached.decode_s if cached.built else None  # None: built for an earlier case
        loader = TrainLoader(cached.imageset, augment, case.batch, device, options.seed)
        ips = _loader_rate(loader, case, options, device)
        rows.append(
            _data_row(
                case,
                options,
                CACHED_SOURCE,
                label,
                ips,
                train_images_per_s,
                first_decode_s=decode_s,
                **common,
            )
        )
    return rows


EVAL_METHODS = (protocols.DENSE, protocols.MULTI_CROP, protocols.BOTH)


def measure_evaluation(case: Case, options: BenchOptions, device: torch.device) -> list[dict[str, Any]]:
    """Dense, multi-crop and both at the jitter test scales (Table 5's Q = {256, 384, 512}), per image.

    Times are the medians over `repeats` timed passes (after one untimed) of evaluate_batches over
    `eval_images` images of the crop's size; its batch cap is the case's batch."""
    spec = case.spec(options)
    model = prepare_model(spec, options, device, train=False)
    generator = torch.Generator().manual_seed(options.seed)
    images = torch.randint(
        0, 256, (options.eval_images, 3, case.crop, case.crop), generator=generator, dtype=torch.uint8
    )
    labels = torch.randint(0, spec.num_classes, (options.eval_images,), generator=generator)
    stats = RGBStats(torch.tensor([0.5, 0.5, 0.5]), torch.ones(3), torch.eye(3))
    q_paper = test_scales("jitter", parse_train_scale("256:512"))
    q_pixels = tuple(to_pixels(q, case.crop) for q in q_paper)

    def prepare(group: torch.Tensor, q: int) -> torch.Tensor:
        x = eval_preprocess(group, q, stats)
        return x.contiguous(memory_format=runtime.memory_format(options.channels_last))

    def once() -> dict[str, engine.MethodResult]:
        with runtime.autocast(device, options.bf16):
            return engine.evaluate_batches(
                [model],
                [(images.to(device), labels)],
                prepare,
                methods=EVAL_METHODS,
                scales_px=q_pixels,
                batch_size=case.batch,
                device=device,
            )

    once()
    runs = [once() for _ in range(options.repeats)]
    rows = [
        _row(
            case,
            case.batch,
            method=method,
            test_scales=list(q_paper),
            test_scales_px=list(q_pixels),
            images=runs[0][method].images,
            forward_passes_per_image=runs[0][method].forward_passes_per_image,
            macs_per_image=int(round(runs[0][method].macs_per_image)),
            ms_per_image=1e3 * statistics.median(r[method].seconds for r in runs) / runs[0][method].images,
        )
        for method in EVAL_METHODS
    ]
    dense = rows[0]
    for row in rows:
        row["time_vs_dense"] = row["ms_per_image"] / dense["ms_per_image"]
        row["macs_vs_dense"] = row["macs_per_image"] / dense["macs_per_image"]
    return rows


# --- The whole run ---------------------------------------------------------------------------
