"""The `vggbench` command line: parses, delegates to library functions, prints.

Bad input raises VggbenchError (or a click usage error) and `run` turns it into one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vggbench import paper
from vggbench.errors import VggbenchError
from vggbench.render import FORMATS, check_format, render

# Typer vendors click in recent releases and depends on it in older ones: find its exception types
# through the public BadParameter instead of importing either spelling.
_CLICK_EXCEPTIONS = sys.modules[next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException").__module__]

app = typer.Typer(
    help="Benchmarks and ablations for the VGG paper (Simonyan & Zisserman, 2014).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _group() -> None:
    """Benchmarks and ablations for the VGG paper (Simonyan & Zisserman, 2014)."""


def echo(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command()
def params(
    config: str = typer.Option(None, "--config", help="show the per-layer breakdown of this net (A, A-LRN, B, C, D, E, B-5x5)"),
    fmt: str = typer.Option("table", "--format", help=f"one of {', '.join(FORMATS)}"),
    width: float = typer.Option(1.0, help="width multiplier for the channels (e.g. 0.125)"),
    classes: int = typer.Option(paper.NUM_CLASSES, help="number of classes"),
    size: int = typer.Option(paper.PAPER_CROP, help="input size in pixels, a multiple of 32"),
    filters: bool = typer.Option(False, "--filters", help="show Section 2.3's stacked 3x3 vs large-filter table"),
    channels: int = typer.Option(512, help="channels for --filters"),
    write: Path = typer.Option(None, "--write", help="also render Table 2 (224 px, 1000 classes, as the paper) as Markdown and LaTeX into this folder"),
) -> None:
    """Table 2 (parameters), MACs, FLOPs, per-layer breakdown and receptive fields."""
    from vggbench import report
    from vggbench.models import ModelSpec

    check_format(fmt)
    ModelSpec(config or "A", classes, width, size)  # validates the options before any work
    if filters:
        if channels < 1:
            raise VggbenchError(f"channels {channels} must be at least 1")
        frame, title = report.filters_frame(channels), f"Stacked 3x3 convs vs one large conv, C = {channels}"
    elif config:
        frame = report.layers_frame(config, width, classes, size)
        title = f"{config}: per-layer breakdown at {size}x{size} (MACs = multiply-accumulates)"
    else:
        frame = report.params_frame(width, classes, size)
        title = f"Parameters and compute at {size}x{size}, {classes} classes, width {width:g}"
    echo(render(frame if fmt in ("json", "csv") else report.display(frame), fmt, title))
    if write:
        for path in report.write_table2(write):
            sys.stderr.write(f"wrote {path}\n")


@app.command()
def bench(
    config: list[str] = typer.Option(["A"], "--config", help="nets to measure (repeat or comma list), e.g. A,D"),
    width: list[str] = typer.Option(["0.125"], "--width", help="width multipliers (repeat or comma list)"),
    crop: list[str] = typer.Option(["32"], "--crop", help="crops in pixels, multiples of 32 (repeat or comma list)"),
    batch: list[str] = typer.Option(["64"], "--batch", help="batch sizes (repeat or comma list); halved on out-of-memory"),
    steps: int = typer.Option(10, help="timed steps per measurement"),
    warmup: int = typer.Option(3, help="untimed warm-up steps before timing"),
    repeats: int = typer.Option(3, help="interleaved repeats of the overhead comparison and of the evaluation timing"),
    parts: list[str] = typer.Option(None, "--parts", help="train, infer, overhead, data, eval (default: all)"),
    classes: int = typer.Option(10, help="number of classes of the measured nets"),
    eval_images: int = typer.Option(8, help="images per evaluation-cost measurement"),
    device: str = typer.Option("auto", help="auto (cuda if available), cpu or cuda"),
    channels_last: bool = typer.Option(False, "--channels-last", help="channels_last memory format (model and input)"),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast"),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the model"),
    threads: int = typer.Option(None, help="torch CPU threads (default: torch's)"),
    fmt: str = typer.Option("table", "--format", help="table, json or markdown"),
    results_dir: Path = typer.Option(Path("results"), help="the results store (the record goes to <dir>/bench/)"),
    save: bool = typer.Option(True, "--save/--no-save", help="store the record under <results-dir>/bench/"),
) -> None:
    """Throughput, our loop's overhead, data and evaluation cost, MFU on GPUs (see `vggbench.bench`)."""
    from vggbench import bench as bench_lib

    check_format(fmt, bench_lib.BENCH_FORMATS)
    options = bench_lib.BenchOptions(
        device=device, channels_last=channels_last, bf16=bf16, compile=compile_, threads=threads, steps=steps,
        warmup=warmup, repeats=repeats, classes=classes, eval_images=eval_images).check()
    points = bench_lib.cases(bench_lib.parse_list(config, str, "config"), bench_lib.parse_list(width, float, "width"),
                             bench_lib.parse_list(crop, int, "crop"), bench_lib.parse_list(batch, int, "batch"), classes)
    record = bench_lib.run_bench(points, options, parts, progress=lambda line: sys.stderr.write(f"bench: {line}\n"))
    echo(bench_lib.render_bench(record, fmt))
    if save:
        sys.stderr.write(f"wrote {bench_lib.save_bench(record, results_dir)}\n")


def run(argv: list[str]) -> int:
    """Run the CLI on `argv` and return its exit code; errors become one line on stderr."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="vggbench", standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except _CLICK_EXCEPTIONS.ClickException as error:
        if error.format_message():  # empty when click has already shown the help
            sys.stderr.write(f"error: {error.format_message()}\n")
        return 2
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("error: interrupted\n")
        return 130
    except VggbenchError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
