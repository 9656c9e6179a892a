"""The parts of a bench run over its cases, into one record saved under results/bench/."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch

from vggbench import runtime
from vggbench.bench.measure import (
    BenchOptions,
    Case,
    bench_folders,
    measure_augmentation,
    measure_evaluation,
    measure_folder,
    measure_inference,
    measure_overhead,
    measure_training,
    peak_bf16_flops,
)
from vggbench.bench.tables import KIND
from vggbench.data import ImageSet
from vggbench.errors import VggbenchError
from vggbench.models import ModelSpec
from vggbench.options import parse_choices
from vggbench.runtime import load_average, machine_info, machine_name, utc_now
from vggbench.store import record_id, write_record

T = TypeVar("T")
PARTS = ("train", "infer", "overhead", "data", "eval")
PARTS_HELP = "train, infer, overhead, data, eval (repeat the option or give a comma list)"


def parse_list(values: Iterable[str] | str, cast: Callable[[str], T], name: str) -> list[T]:
    """Repeated options and comma lists: ['A,D', 'E', 'A'] -> ['A', 'D', 'E'], each cast, repeats
    dropped; bad values are a VggbenchError naming the option."""
    out: list[T] = []
    for value in [values] if isinstance(values, str) else values:
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                value = cast(part)
            except ValueError:
                example = {"config": "A,D", "width": "0.125,0.25"}.get(name, "32,64")
                raise VggbenchError(
                    f"bad --{name} value {part!r}: expected a comma list such as {example}"
                ) from None
            if value not in out:
                out.append(value)
    if not out:
        raise VggbenchError(f"no --{name} given")
    return out


def parse_parts(specs: Iterable[str] | None) -> list[str]:
    if not specs:
        return list(PARTS)
    return parse_choices(
        specs, PARTS, what="bench part", none_given="no bench part given", choices_help=PARTS_HELP
    )


def cases(
    configs: Sequence[str],
    widths: Sequence[float],
    crops: Sequence[int],
    batches: Sequence[int],
    classes: int = 10,
) -> list[Case]:
    """Every (net, width, crop, batch), each validated (config name, width, crop, batch)."""
    out = []
    for batch in batches:
        if batch < 1:
            raise VggbenchError(f"batch {batch} must be at least 1")
    for config in configs:
        for width in widths:
            for crop in crops:
                ModelSpec(config, classes, width, crop)  # validates
                out.extend(Case(config, width, crop, batch) for batch in batches)
    if not out:
        raise VggbenchError("nothing to measure: give at least one --config, --width, --crop and --batch")
    return out


def run_bench(
    points: Sequence[Case],
    options: BenchOptions,
    parts: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure every part for every case; returns the record (see the module docstring)."""
    options = options.check()
    parts = parse_parts(parts)
    device = runtime.resolve_device(options.device)
    previous_threads, previous_cudnn = torch.get_num_threads(), torch.backends.cudnn.benchmark
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    torch.backends.cudnn.benchmark = device.type == "cuda"  # as training does: fastest conv algorithms
    scratch = tempfile.TemporaryDirectory(prefix="vggbench-bench-")  # generated folders, their caches
    try:
        record = _new_record(options, parts, device)
        say = progress or (lambda _: None)
        folders: list[tuple[str, ImageSet]] = []
        if "data" in parts:
            say(
                "data: generating the image folders"
                if options.folders is None
                else "data: scanning the folders"
            )
            folders = bench_folders(options, Path(scratch.name))
        for case in points:
            _measure_case(record, case, options, device, parts, say, folders, Path(scratch.name))
        if "eval" in parts:
            evaluated = set()
            for case in points:  # one evaluation per net, width and crop (its batch caps the passes)
                if (case.net, case.width, case.crop) not in evaluated:
                    evaluated.add((case.net, case.width, case.crop))
                    say(f"eval {case.label}")
                    record["eval"].extend(measure_evaluation(case, options, device))
        record["load_average_after"] = load_average()
        record["id"] = record_id(
            {"created": record["created"], "options": record["options"], "cases": [asdict(c) for c in points]}
        )
        return record
    finally:
        scratch.cleanup()
        torch.set_num_threads(previous_threads)
        torch.backends.cudnn.benchmark = previous_cudnn


def _new_record(options: BenchOptions, parts: Sequence[str], device: torch.device) -> dict[str, Any]:
    """The record before any measurement: the machine, the options, empty parts, notes on MFU."""
    machine = machine_info(device)
    peak = peak_bf16_flops(machine["gpu"]) if device.type == "cuda" else None
    notes: list[str] = []
    if device.type != "cuda":
        notes.append("MFU does not apply on a CPU (no dense bf16 tensor peak): reported as n/a")
    elif peak is None:
        notes.append(f"no bf16 peak known for {machine['gpu']}: MFU not reported")
    return {
        "kind": KIND,
        "created": utc_now(),
        "machine": machine,
        "machine_name": machine_name(machine),
        "torch_version": torch.__version__,
        "options": {**asdict(options), "device": str(device), "parts": list(parts)},
        "peak_bf16_flops": peak,
        **{part: [] for part in PARTS},
        "notes": notes,
    }


def _measure_case(
    record: dict[str, Any],
    case: Case,
    options: BenchOptions,
    device: torch.device,
    parts: Sequence[str],
    say: Callable[[str], None],
    folders: Sequence[tuple[str, ImageSet]] = (),
    scratch: Path = Path("."),
) -> None:
    """The train, infer, overhead and data parts for one case, appended to the record (the data
    part's folders, with scratch for their caches)."""
    notes = record["notes"]
    train: dict[str, Any] = {}
    if "train" in parts or "data" in parts:  # data compares with the training throughput
        say(f"train {case.label} batch {case.batch}")
        train = measure_training(case, options, device, notes, record["peak_bf16_flops"])
        if "train" in parts:
            record["train"].append(train)
    if "infer" in parts:
        say(f"infer {case.label} batch {case.batch}")
        record["infer"].append(measure_inference(case, options, device, notes))
    if "overhead" in parts:
        say(f"overhead {case.label} batch {case.batch}")
        record["overhead"].append(measure_overhead(case, options, device, notes))
    if "data" in parts:
        say(f"data {case.label} batch {case.batch}: in memory")
        record["data"].append(measure_augmentation(case, options, device, train["images_per_s"]))
        for label, train_set in folders:
            say(f"data {case.label} batch {case.batch}: {label}")
            rows = measure_folder(
                case, options, device, train["images_per_s"], label, train_set, scratch, notes
            )
            record["data"].extend(rows)


def save_bench(record: dict[str, Any], results_dir: Path) -> Path:
    """results_dir/bench/<date>-<id>.json"""
    stamp = record["created"][:19].replace(":", "").replace("-", "")
    return write_record(Path(results_dir), KIND, f"{stamp}-{record['id']}", record)
