"""`vggbench params`: Table 2, MACs and receptive fields, counted once and cached."""

from __future__ import annotations

from pathlib import Path

import typer

from vggbench import paper
from vggbench.cli.common import FORMAT_HELP, MODEL, OUTPUT, echo, examples, wrote
from vggbench.render import check_format, render

#: What a terminal table leaves out unless --wide: FLOPs, which are twice the MACs beside them.
NARROW_DROPS = ("flops",)

EPILOG = examples(
    "vggbench params",
    "vggbench params --config D --width 0.125 --size 32 --classes 10",
    "vggbench params --filters --wide",
)


def params(
    config: str = typer.Option(
        None,
        "--config",
        help="show the per-layer breakdown of this net (A, A-LRN, B, C, D, E, B-5x5)",
        rich_help_panel=MODEL,
    ),
    width: float = typer.Option(
        1.0, help="width multiplier for the channels (e.g. 0.125)", rich_help_panel=MODEL
    ),
    classes: int = typer.Option(paper.NUM_CLASSES, help="number of classes", rich_help_panel=MODEL),
    size: int = typer.Option(
        paper.PAPER_CROP, help="input size in pixels, a multiple of 32", rich_help_panel=MODEL
    ),
    filters: bool = typer.Option(
        False, "--filters", help="show Section 2.3's stacked 3x3 vs large-filter table", rich_help_panel=MODEL
    ),
    channels: int = typer.Option(512, help="channels for --filters", rich_help_panel=MODEL),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP, rich_help_panel=OUTPUT),
    wide: bool = typer.Option(
        False,
        "--wide",
        help="the table as wide as it is (every column, numbers in full)",
        rich_help_panel=OUTPUT,
    ),
    write: Path = typer.Option(
        None,
        "--write",
        help="also write Table 2 (224 px, 1000 classes, as the paper) as Markdown and LaTeX here",
        rich_help_panel=OUTPUT,
    ),
) -> None:
    """Table 2 (parameters), MACs, FLOPs, per-layer breakdown and receptive fields.

    fvcore counts once per net and size; a cache (VGGBENCH_CACHE_DIR, ~/.cache/vggbench) serves repeats.
    """
    from vggbench import counts  # lazy: keeps CLI start-up fast

    check_format(fmt)
    if filters:
        frame, title = counts.filters_frame(channels), f"Stacked 3x3 convs vs one large conv, C = {channels}"
    elif config:
        frame = counts.layers_frame(config, width, classes, size)
        title = f"{config}: per-layer breakdown at {size}x{size} (MACs = multiply-accumulates)"
    else:
        frame = counts.params_frame(width, classes, size)
        title = f"Parameters and compute at {size}x{size}, {classes} classes, width {width:g}"
    if fmt == "table" and not wide:
        frame = frame.drop(columns=[c for c in NARROW_DROPS if c in frame.columns])
    echo(render(frame if fmt in ("json", "csv") else counts.display(frame), fmt, title, wide=wide))
    if write:
        from vggbench.report.write import write_table2  # lazy: the report's writer imports plots and bench

        for path in write_table2(write):
            wrote(path)
