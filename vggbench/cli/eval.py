"""`vggbench eval`: the paper's test protocols on stored runs, checkpoints or public weights."""

from __future__ import annotations

from pathlib import Path

import typer

from vggbench.cli.common import (
    DATA,
    EVALUATION,
    FORMAT_HELP,
    MODEL,
    OUTPUT,
    RUN_CONTROL,
    echo,
    examples,
    note,
)
from vggbench.cli.progress import progress_bars
from vggbench.options import DATASETS_HELP
from vggbench.render import check_format, render

#: What a terminal table leaves out when it does not fit (--wide keeps them).
NARROW_OPTIONAL = ("Q (px)", "passes/image", "images/s")

EPILOG = examples(
    "vggbench eval RUN --dense --multi-crop --scales jitter",
    "vggbench eval --config D --scale 256:512 --method dense --scales multi",
    "vggbench eval --fuse RUN1 RUN2 --dense --format markdown",
)


def eval_command(
    runs: list[str] = typer.Argument(
        None, help="stored run ids (unique prefixes are enough); with --fuse, fused", metavar="RUN"
    ),
    run_option: list[str] = typer.Option(
        None, "--run", help="a stored run id (repeatable); same as the arguments", metavar="RUN"
    ),
    fuse: bool = typer.Option(
        False, "--fuse", help="fuse the named runs: average their softmax posteriors (Table 6)"
    ),
    config: str = typer.Option(
        None,
        "--config",
        help="select stored runs of this net; or the net of --checkpoint",
        rich_help_panel=MODEL,
    ),
    scale: str = typer.Option(
        None,
        "--scale",
        help="select stored runs of this train scale (256, 384, 256:512); "
        "or the train scale of --checkpoint/--weights (default 256)",
        rich_help_panel=MODEL,
    ),
    checkpoint: str = typer.Option(
        None,
        "--checkpoint",
        help="a weights file: a state dict or a training checkpoint",
        rich_help_panel=MODEL,
        metavar="FILE",
    ),
    weights: str = typer.Option(
        None,
        "--weights",
        help="torchvision:vgg11, vgg13, vgg16 or vgg19 (public ImageNet "
        "weights, downloaded on first use; ImageNet mean/std)",
        rich_help_panel=MODEL,
    ),
    classes: int = typer.Option(
        None, "--classes", help="classes of --checkpoint (default: from its FC8)", rich_help_panel=MODEL
    ),
    width: float = typer.Option(
        None, "--width", help="width multiplier of --checkpoint (default 1)", rich_help_panel=MODEL
    ),
    crop: int = typer.Option(
        None, "--crop", help="crop of --checkpoint (default 224)", rich_help_panel=MODEL
    ),
    data: str = typer.Option(
        None,
        "--data",
        help=f"evaluate on this dataset's validation split (default: the run's): {DATASETS_HELP}",
        rich_help_panel=DATA,
    ),
    data_root: Path = typer.Option(None, "--data-root", help="where datasets live", rich_help_panel=DATA),
    limit_val: int = typer.Option(
        None, "--limit-val", help="a stratified subset of this many validation images", rich_help_panel=DATA
    ),
    max_images: int = typer.Option(
        None,
        "--max-images",
        help="a stratified, seeded subset of this many validation images (a quick look; "
        "the per-class counts are recorded)",
        rich_help_panel=DATA,
    ),
    norm: str = typer.Option(
        None,
        "--norm",
        help="train (the paper: subtract the training mean RGB) or imagenet "
        "(torchvision's mean/std); default imagenet for --weights, else train",
        rich_help_panel=DATA,
    ),
    method: list[str] = typer.Option(
        None,
        "--method",
        help="center, dense, multi-crop or multi-crop+dense; repeatable or a comma list",
        rich_help_panel=EVALUATION,
        metavar="METHOD",
    ),
    dense: bool = typer.Option(False, "--dense", help="same as --method dense", rich_help_panel=EVALUATION),
    multi_crop: bool = typer.Option(
        False,
        "--multi-crop",
        help="same as --method multi-crop (with --dense: also both)",
        rich_help_panel=EVALUATION,
    ),
    center: bool = typer.Option(
        False, "--center", help="same as --method center", rich_help_panel=EVALUATION
    ),
    scales: str = typer.Option(
        "single",
        "--scales",
        help="single, multi, jitter, or paper-unit scales such as 224,256,288",
        rich_help_panel=EVALUATION,
    ),
    batch: int = typer.Option(
        64,
        "--batch",
        help="net inputs per forward pass (an image's 50 crops stay together)",
        rich_help_panel=RUN_CONTROL,
    ),
    device: str = typer.Option(
        "auto", "--device", help="auto, cpu, cuda or cuda:N", rich_help_panel=RUN_CONTROL
    ),
    results_dir: Path = typer.Option(
        Path("results"), "--results-dir", help="the results store", rich_help_panel=OUTPUT
    ),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP, rich_help_panel=OUTPUT),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar", rich_help_panel=OUTPUT),
    wide: bool = typer.Option(False, "--wide", help="the table as wide as it is", rich_help_panel=OUTPUT),
) -> None:
    """The paper's test protocols (Section 3.2): dense, multi-crop, both, center; scales; fusion."""
    import json

    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench.evaluate.records import EvalOptions, run_eval
    from vggbench.report.tables import RESULT_HEADERS, results_frame

    check_format(fmt)
    chosen = list(method or [])
    chosen += [
        name for flag, name in ((dense, "dense"), (multi_crop, "multi-crop"), (center, "center")) if flag
    ]
    if dense and multi_crop:
        chosen.append("multi-crop+dense")
    options = EvalOptions(
        runs=list(runs or []) + list(run_option or []),
        fuse=fuse,
        methods=chosen or ["dense"],
        scales=scales,
        net=config,
        scale=scale,
        checkpoint=checkpoint,
        weights=weights,
        classes=classes,
        width=width,
        crop=crop,
        norm=norm,
        data=data,
        data_root=None if data_root is None else str(data_root),
        limit_val=limit_val,
        max_images=max_images,
        batch=batch,
        device=device,
        results_dir=str(results_dir),
    )
    with progress_bars(quiet) as factory:
        records = run_eval(options, factory, say=note)
    if fmt == "json":
        echo(json.dumps([r.to_json() for r in records], indent=2, default=str))
        return
    frame = results_frame(records)
    title = "Evaluation (errors in percent, MACs = multiply-accumulates per image)"
    shown = frame if fmt == "csv" else frame.rename(columns=RESULT_HEADERS)
    echo(render(shown, fmt, title, wide=wide, optional=NARROW_OPTIONAL))
