"""`vggbench eval`: the paper's test protocols on stored runs, checkpoints or public weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from vggbench.checks import MAX_BATCH, MAX_CLASSES, MAX_CROP, MAX_WIDTH
from vggbench.cli.common import (
    DATA,
    EVALUATION,
    MODEL,
    OUTPUT,
    RUN_CONTROL,
    Param,
    at_most,
    device_param,
    echo,
    examples,
    format_param,
    note,
    option,
    quiet_param,
    results_dir_param,
    setting_param,
    with_params,
)
from vggbench.cli.progress import progress_bars
from vggbench.options import DATASETS_HELP
from vggbench.recipe import setting
from vggbench.render import check_format, render

#: What a terminal table leaves out when it does not fit (--wide keeps them).
NARROW_OPTIONAL = ("Q (px)", "passes/image", "images/s")

EPILOG = examples(
    "vggbench eval RUN --dense --multi-crop --scales jitter",
    "vggbench eval --config D --scale 256:512 --method dense --scales multi",
    "vggbench eval --fuse RUN1 RUN2 --dense --format markdown",
)

#: The method flags, each the same as a --method.
_METHOD_FLAGS = {"dense": "dense", "multi_crop": "multi-crop", "center": "center"}

#: The options that EvalOptions takes as they are.
_PASSED_ON = (
    *("fuse", "scales", "scale", "checkpoint", "weights", "classes", "width", "crop", "norm", "data"),
    *("limit_val", "max_images", "batch", "device"),
)

_PARAMS = [
    Param(
        "runs",
        list[str],
        typer.Argument(
            None, help="stored run ids (unique prefixes are enough); with --fuse, fused", metavar="RUN"
        ),
    ),
    option(
        "run_option",
        list[str],
        None,
        "--run",
        help="a stored run id (repeatable); same as the arguments",
        metavar="RUN",
    ),
    option(
        "fuse", bool, False, "--fuse", help="fuse the named runs: average their softmax posteriors (Table 6)"
    ),
    option(
        "config",
        str,
        None,
        "--config",
        help="select stored runs of this net; or the net of --checkpoint",
        rich_help_panel=MODEL,
    ),
    option(
        "scale",
        str,
        None,
        "--scale",
        help="select stored runs of this train scale (256, 384, 256:512); "
        "or the train scale of --checkpoint/--weights (default 256)",
        rich_help_panel=MODEL,
    ),
    option(
        "checkpoint",
        str,
        None,
        "--checkpoint",
        help="a weights file: a state dict or a training checkpoint",
        rich_help_panel=MODEL,
        metavar="FILE",
    ),
    option(
        "weights",
        str,
        None,
        "--weights",
        help="torchvision:vgg11, vgg13, vgg16 or vgg19 (public ImageNet "
        "weights, downloaded on first use; ImageNet mean/std)",
        rich_help_panel=MODEL,
    ),
    option(
        "classes",
        int,
        None,
        "--classes",
        help="classes of --checkpoint (default: from its FC8)",
        rich_help_panel=MODEL,
        check=at_most(MAX_CLASSES, "FC8 would not fit in memory"),
    ),
    setting_param(
        setting("width"),
        help="width multiplier of --checkpoint (default 1)",
        check=at_most(MAX_WIDTH, f"{MAX_WIDTH:g}x the paper's channels"),
    ),
    setting_param(
        setting("crop"),
        help="crop of --checkpoint (default 224)",
        check=at_most(MAX_CROP, "pixels; VGG's first conv would not fit in memory"),
    ),
    option(
        "data",
        str,
        None,
        "--data",
        help=f"evaluate on this dataset's validation split (default: the run's): {DATASETS_HELP}",
        rich_help_panel=DATA,
    ),
    option("data_root", Path, None, "--data-root", help="where datasets live", rich_help_panel=DATA),
    setting_param(setting("limit_val"), help=setting("limit_val").help),
    option(
        "max_images",
        int,
        None,
        "--max-images",
        help="a stratified, seeded subset of this many validation images (a quick look; "
        "the per-class counts are recorded)",
        rich_help_panel=DATA,
    ),
    option(
        "norm",
        str,
        None,
        "--norm",
        help="train (the paper: subtract the training mean RGB) or imagenet "
        "(torchvision's mean/std); default imagenet for --weights, else train",
        rich_help_panel=DATA,
    ),
    option(
        "method",
        list[str],
        None,
        "--method",
        help="center, dense, multi-crop or multi-crop+dense; repeatable or a comma list",
        rich_help_panel=EVALUATION,
        metavar="METHOD",
    ),
    option("dense", bool, False, "--dense", help="same as --method dense", rich_help_panel=EVALUATION),
    option(
        "multi_crop",
        bool,
        False,
        "--multi-crop",
        help="same as --method multi-crop (with --dense: also both)",
        rich_help_panel=EVALUATION,
    ),
    option("center", bool, False, "--center", help="same as --method center", rich_help_panel=EVALUATION),
    option(
        "scales",
        str,
        "single",
        "--scales",
        help="single, multi, jitter, or paper-unit scales such as 224,256,288",
        rich_help_panel=EVALUATION,
    ),
    option(
        "batch",
        int,
        64,
        "--batch",
        help="net inputs per forward pass (an image's 50 crops stay together)",
        rich_help_panel=RUN_CONTROL,
        check=at_most(MAX_BATCH, "a stated cap"),
    ),
    device_param("auto, cpu, cuda or cuda:N"),
    results_dir_param(),
    format_param(),
    quiet_param("no progress bar", "--quiet"),
    option("wide", bool, False, "--wide", help="the table as wide as it is", rich_help_panel=OUTPUT),
]


def chosen_methods(given: dict[str, Any]) -> list[str]:
    """The --method values and the method flags (--dense with --multi-crop: also both); dense when none."""
    chosen = list(given["method"] or [])
    chosen += [method for flag, method in _METHOD_FLAGS.items() if given[flag]]
    if given["dense"] and given["multi_crop"]:
        chosen.append("multi-crop+dense")
    return chosen or ["dense"]


@with_params(_PARAMS)
def eval_command(**given: Any) -> None:
    """The paper's test protocols (Section 3.2): dense, multi-crop, both, center; scales; fusion."""
    import json

    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench.evaluate.records import EvalOptions, run_eval
    from vggbench.report.tables import RESULT_HEADERS, results_frame

    fmt = given["fmt"]
    check_format(fmt)
    options = EvalOptions(
        runs=list(given["runs"] or []) + list(given["run_option"] or []),
        methods=chosen_methods(given),
        net=given["config"],
        results_dir=str(given["results_dir"]),
        data_root=None if given["data_root"] is None else str(given["data_root"]),
        **{name: given[name] for name in _PASSED_ON},
    )
    with progress_bars(given["quiet"]) as factory:
        records = run_eval(options, factory, say=note)
    if fmt == "json":
        echo(json.dumps([r.to_json() for r in records], indent=2, default=str))
        return
    frame = results_frame(records)
    title = "Evaluation (errors in percent, MACs = multiply-accumulates per image)"
    shown = frame if fmt == "csv" else frame.rename(columns=RESULT_HEADERS)
    echo(render(shown, fmt, title, wide=given["wide"], optional=NARROW_OPTIONAL))
