"""`vggbench bench`: throughput, the loop's overhead, data and evaluation cost."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vggbench.cli.common import (
    EVALUATION,
    FORMAT_HELP,
    MODEL,
    OUTPUT,
    RECIPE,
    RUN_CONTROL,
    echo,
    examples,
    wrote,
)
from vggbench.fs import writable_folder
from vggbench.render import check_format

EPILOG = examples(
    "vggbench bench --config A,D --width 0.125 --crop 32 --batch 64",
    "vggbench bench --parts data --config A --width 0.125 --crop 32 --batch 256 --data-folder ~/cifar10",
    "vggbench bench --config D --width 1 --crop 224 --batch 256 --device cuda --bf16 --channels-last",
)


def bench(
    config: list[str] = typer.Option(
        ["A"],
        "--config",
        help="nets to measure (repeat or comma list), e.g. A,D",
        rich_help_panel=MODEL,
        metavar="NETS",
    ),
    width: list[str] = typer.Option(
        ["0.125"],
        "--width",
        help="width multipliers (repeat or comma list)",
        rich_help_panel=MODEL,
        metavar="WIDTHS",
    ),
    crop: list[str] = typer.Option(
        ["32"],
        "--crop",
        help="crops in pixels, multiples of 32 (repeat or comma list)",
        rich_help_panel=MODEL,
        metavar="PIXELS",
    ),
    classes: int = typer.Option(10, help="number of classes of the measured nets", rich_help_panel=MODEL),
    batch: list[str] = typer.Option(
        ["64"],
        "--batch",
        help="batch sizes (repeat or comma list); halved on out-of-memory",
        rich_help_panel=RECIPE,
        metavar="SIZES",
    ),
    parts: list[str] = typer.Option(
        None,
        "--parts",
        help="train, infer, overhead, data, eval (default: all)",
        rich_help_panel=EVALUATION,
        metavar="PARTS",
    ),
    steps: int = typer.Option(10, help="timed steps per measurement", rich_help_panel=EVALUATION),
    warmup: int = typer.Option(3, help="untimed warm-up steps before timing", rich_help_panel=EVALUATION),
    repeats: int = typer.Option(
        3,
        help="overhead: steps x repeats interleaved step pairs; evaluation: timed passes (median)",
        rich_help_panel=EVALUATION,
    ),
    eval_images: int = typer.Option(
        8, help="images per evaluation-cost measurement", rich_help_panel=EVALUATION
    ),
    data_folder: list[str] = typer.Option(
        None,
        "--data-folder",
        help="data: an ImageFolder to stream and cache (repeatable; default: generated JPEG folders, "
        "10,000 at 32 px and 2,000 at 256-500 px; none: the in-memory path only)",
        rich_help_panel=EVALUATION,
        metavar="PATH",
    ),
    workers: int = typer.Option(
        None,
        help="data: DataLoader workers of a streamed folder (default: the cores, at most 8)",
        rich_help_panel=EVALUATION,
    ),
    device: str = typer.Option(
        "auto", help="auto (cuda if available), cpu or cuda", rich_help_panel=RUN_CONTROL
    ),
    channels_last: bool = typer.Option(
        True,
        "--channels-last/--no-channels-last",
        help="channels_last memory format (model and input), as train's default",
        rich_help_panel=RUN_CONTROL,
    ),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast", rich_help_panel=RUN_CONTROL),
    compile_: bool = typer.Option(
        False, "--compile", help="torch.compile the model", rich_help_panel=RUN_CONTROL
    ),
    threads: int = typer.Option(
        None, help="torch CPU threads (default: torch's)", rich_help_panel=RUN_CONTROL
    ),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP, rich_help_panel=OUTPUT),
    results_dir: Path = typer.Option(
        Path("results"), help="the results store (the record goes to <dir>/bench/)", rich_help_panel=OUTPUT
    ),
    save: bool = typer.Option(
        True, "--save/--no-save", help="store the record under <results-dir>/bench/", rich_help_panel=OUTPUT
    ),
) -> None:
    """Throughput, our loop's overhead, data and evaluation cost, MFU on GPUs (see `vggbench.bench`)."""
    # lazy: keeps CLI start-up fast
    from vggbench.bench import measure, tables
    from vggbench.bench import run as bench_run

    check_format(fmt, tables.BENCH_FORMATS)
    options = measure.BenchOptions(
        device=device,
        channels_last=channels_last,
        bf16=bf16,
        compile=compile_,
        threads=threads,
        steps=steps,
        warmup=warmup,
        repeats=repeats,
        classes=classes,
        eval_images=eval_images,
        folders=None if not data_folder else tuple(f for f in data_folder if f != "none"),
        workers=workers,
    ).check()
    points = bench_run.cases(
        bench_run.parse_list(config, str, "config"),
        bench_run.parse_list(width, float, "width"),
        bench_run.parse_list(crop, int, "crop"),
        bench_run.parse_list(batch, int, "batch"),
        classes,
    )
    if save:  # before minutes of measuring, not after
        writable_folder(Path(results_dir) / tables.KIND)
    record = bench_run.run_bench(
        points, options, parts, progress=lambda line: sys.stderr.write(f"bench: {line}\n")
    )
    echo(tables.render_bench(record, fmt))
    if save:
        wrote(bench_run.save_bench(record, results_dir))
