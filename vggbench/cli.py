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
