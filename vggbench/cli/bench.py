"""`vggbench bench`: throughput, the loop's overhead, data and evaluation cost."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from vggbench.checks import MAX_BATCH
from vggbench.cli.common import (
    EVALUATION,
    MODEL,
    OUTPUT,
    RECIPE,
    RUN_CONTROL,
    at_most_cores,
    device_param,
    echo,
    examples,
    format_param,
    option,
    results_dir_param,
    with_params,
    wrote,
)
from vggbench.errors import VggbenchError
from vggbench.fs import writable_folder
from vggbench.recipe import Rule
from vggbench.render import check_format

EPILOG = examples(
    "vggbench bench --config A,D --width 0.125 --crop 32 --batch 64",
    "vggbench bench --parts data --config A --width 0.125 --crop 32 --batch 256 --data-folder ~/cifar10",
    "vggbench bench --config D --width 1 --crop 224 --batch 256 --device cuda --bf16 --channels-last",
)


def _grid(name: str, default: str, help: str, metavar: str, panel: str = MODEL) -> Any:
    """One axis of the measured grid: values repeated or in a comma list."""
    return option(name, list[str], [default], f"--{name}", help=help, rich_help_panel=panel, metavar=metavar)


def _measure(name: str, kind: type, default: Any, help: str, check: Rule | None = None) -> Any:
    return option(name, kind, default, help=help, rich_help_panel=EVALUATION, check=check)


_PARAMS = [
    _grid("config", "A", "nets to measure (repeat or comma list), e.g. A,D", "NETS"),
    _grid("width", "0.125", "width multipliers (repeat or comma list)", "WIDTHS"),
    _grid("crop", "32", "crops in pixels, multiples of 32 (repeat or comma list)", "PIXELS"),
    option("classes", int, 10, help="number of classes of the measured nets", rich_help_panel=MODEL),
    _grid("batch", "64", "batch sizes (repeat or comma list); halved on out-of-memory", "SIZES", RECIPE),
    option(
        "parts",
        list[str],
        None,
        "--parts",
        help="train, infer, overhead, data, eval (default: all)",
        rich_help_panel=EVALUATION,
        metavar="PARTS",
    ),
    _measure("steps", int, 10, "timed steps per measurement"),
    _measure("warmup", int, 3, "untimed warm-up steps before timing"),
    _measure(
        "repeats",
        int,
        3,
        "overhead: steps x repeats interleaved step pairs; evaluation: timed passes (median)",
    ),
    _measure("eval_images", int, 8, "images per evaluation-cost measurement"),
    option(
        "data_folder",
        list[str],
        None,
        "--data-folder",
        help="data: an ImageFolder to stream and cache (repeatable; default: generated JPEG folders, "
        "10,000 at 32 px and 2,000 at 256-500 px; none: the in-memory path only)",
        rich_help_panel=EVALUATION,
        metavar="PATH",
    ),
    _measure(
        "workers",
        int,
        None,
        "data: DataLoader workers of a streamed folder (default: the cores, at most 8)",
        at_most_cores("workers"),
    ),
    device_param("auto (cuda if available), cpu or cuda"),
    option(
        "channels_last",
        bool,
        True,
        "--channels-last/--no-channels-last",
        help="channels_last memory format (model and input), as train's default",
        rich_help_panel=RUN_CONTROL,
    ),
    option("bf16", bool, False, "--bf16", help="bf16 autocast", rich_help_panel=RUN_CONTROL),
    option("compile", bool, False, "--compile", help="torch.compile the model", rich_help_panel=RUN_CONTROL),
    option(
        "threads",
        int,
        None,
        help="torch CPU threads (default: torch's)",
        rich_help_panel=RUN_CONTROL,
        check=at_most_cores("threads"),
    ),
    format_param(),
    results_dir_param("the results store (the record goes to <dir>/bench/)"),
    option(
        "save",
        bool,
        True,
        "--save/--no-save",
        help="store the record under <results-dir>/bench/",
        rich_help_panel=OUTPUT,
    ),
]


@with_params(_PARAMS)
def bench(**given: Any) -> None:
    """Throughput, our loop's overhead, data and evaluation cost, MFU on GPUs (see `vggbench.bench`)."""
    # lazy: keeps CLI start-up fast
    from vggbench.bench import measure, tables
    from vggbench.bench import run as bench_run

    fmt, results_dir, save, folders = given["fmt"], given["results_dir"], given["save"], given["data_folder"]
    check_format(fmt, tables.BENCH_FORMATS)
    passed_on = ("device", "channels_last", "bf16", "compile", "threads", "steps", "warmup", "repeats")
    options = measure.BenchOptions(
        **{name: given[name] for name in passed_on + ("classes", "eval_images", "workers")},
        folders=None if not folders else tuple(f for f in folders if f != "none"),
    ).check()
    grid = [("config", str), ("width", float), ("crop", int), ("batch", int)]
    configs, widths, crops, batches = (bench_run.parse_list(given[name], kind, name) for name, kind in grid)
    for batch in batches:
        if batch > MAX_BATCH:
            raise VggbenchError(f"--batch {batch} must be at most {MAX_BATCH}")
    points = bench_run.cases(configs, widths, crops, batches, given["classes"])
    if save:  # before minutes of measuring, not after
        writable_folder(Path(results_dir) / tables.KIND)
    record = bench_run.run_bench(
        points, options, given["parts"], progress=lambda line: sys.stderr.write(f"bench: {line}\n")
    )
    echo(tables.render_bench(record, fmt))
    if save:
        wrote(bench_run.save_bench(record, results_dir))
