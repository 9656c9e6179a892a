"""`vggbench train`: one run of the paper's recipe, stored (or found in the store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from vggbench.cli.common import (
    DATA,
    OUTPUT,
    RECIPE,
    RUN_CONTROL,
    Param,
    device_param,
    echo,
    examples,
    format_param,
    gpu_scale_note,
    note,
    option,
    quiet_param,
    results_dir_param,
    resumable,
    setting_param,
    with_params,
)
from vggbench.cli.progress import TrainBars
from vggbench.recipe import SETTINGS
from vggbench.render import check_format

TENSORBOARD_OPTION = typer.Option(
    None,
    "--tensorboard",
    help="also log loss, val errors, lr, img/s and data share per epoch for TensorBoard here, one "
    "folder per run (arm-seedN-id); needs pip install 'vggbench[tensorboard]'",
    rich_help_panel=OUTPUT,
    metavar="DIR",
)

EPILOG = examples(
    "vggbench train --config A --data fashion-mnist --width 0.125 --crop 32 --epochs 5",
    "vggbench train --config A --data fashion-mnist --width 0.125 --crop 32 --scale 384 "
    "--init-from RUN --epochs 3",
    "torchrun --nproc_per_node 8 -m vggbench train --config D --data imagefolder:data/imagenet "
    "--stop schedule --epochs 74",
)


#: train's own options (not settings of the run), each placed before the setting it precedes in --help.
_OWN = {
    "scale": [
        Param(
            "cache_budget",
            str,
            typer.Option(
                "auto",
                help="decode an image folder once and cache it when it fits in this many GB; auto: half the "
                "free RAM (a quarter of the free GPU memory on a GPU); off: always stream",
                rich_help_panel=DATA,
            ),
        ),
        Param(
            "cache_dir",
            Path,
            typer.Option(
                None,
                help="where decoded image folders are cached (default $VGGBENCH_CACHE_DIR/decoded or "
                "~/.cache/vggbench/decoded)",
                rich_help_panel=DATA,
            ),
        ),
    ],
    "max_device_batch": [
        results_dir_param(),
        format_param("text", "text (one line) or json (the run record)"),
        option("as_json", bool, False, "--json", hidden=True, help="same as --format json"),
        quiet_param("no progress output", "--quiet"),
        Param("tensorboard", Path, TENSORBOARD_OPTION),
        option(
            "preset",
            str,
            None,
            "--preset",
            help="start from an ablation preset's budget (smoke, quick, gpu, paper: data, width, crop, "
            "batch, limits, epochs, lr, stopping rule); flags given override it",
            rich_help_panel=RECIPE,
        ),
        Param("ctx", typer.Context, None),
        device_param("auto (cuda if available), cpu, cuda or cuda:N"),
    ],
    "compile": [
        Param(
            "resume",
            bool,
            typer.Option(
                False,
                "--resume",
                help="continue this config's interrupted run from its checkpoint",
                rich_help_panel=RUN_CONTROL,
            ),
        ),
        Param(
            "force",
            bool,
            typer.Option(
                False, "--force", help="train again even if the run is stored", rich_help_panel=RUN_CONTROL
            ),
        ),
    ],
}


def _params() -> list[Param]:
    """Every recipe setting as an option, with train's own options in their places."""
    return [param for s in SETTINGS for param in [*_OWN.get(s.name, []), setting_param(s)]]


@with_params(_params())
def train(**given: Any) -> None:
    """Train a net of Table 1 with the paper's recipe (Section 3.1) and store the run.

    A stored run is returned, not retrained (--force retrains); Ctrl-C keeps a checkpoint for --resume.
    """
    import json

    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench import store
    from vggbench import train as training
    from vggbench.data.cache import CacheOptions
    from vggbench.runtime import distributed_from_env
    from vggbench.tracking import TensorBoard, chain

    fmt, results_dir, quiet, device = given["fmt"], given["results_dir"], given["quiet"], given["device"]
    force = given["force"]
    check_format(fmt, ("text", "json"))
    if given["preset"] is not None:
        from vggbench.runs import preset_defaults  # lazy: keeps CLI start-up fast

        ctx = given["ctx"]
        explicit = {
            name for name in given if name != "ctx" and ctx.get_parameter_source(name).name != "DEFAULT"
        }
        preset = preset_defaults(given["preset"], fine_tune=given["init_from"] is not None)
        given = {**given, **{k: v for k, v in preset.items() if k not in explicit}}
    cache = CacheOptions(given["cache_budget"], given["cache_dir"])
    options = {s.name: given[s.name] for s in SETTINGS if given[s.name] is not None}
    if "data_root" in options:
        options["data_root"] = str(options["data_root"])
    say = None if quiet or not distributed_from_env().is_main else note
    resolved = training.resolve(training.TrainConfig(**options), say, fresh=True)
    stored = not force and store.read_run(results_dir, resolved.id) is not None
    board = TensorBoard(given["tensorboard"]) if given["tensorboard"] else None
    if not stored:
        gpu_scale_note(resolved.config.crop, resolved.config.width, device)
    with resumable("--resume"), TrainBars(quiet) as bars:
        record = training.train(
            resolved,
            results_dir=results_dir,
            device=device,
            resume=given["resume"],
            force=force,
            quiet=quiet,
            progress=bars.progress,
            on_epoch_end=chain(
                bars.on_epoch_end,
                board and board.follow(resolved.config.net, resolved.config.seed, resolved.id),
            ),
            cache=cache,
        )
    if board is not None:
        board.log_stored(results_dir, [(record.net, record.id)])
    if given["as_json"] or fmt == "json":
        echo(json.dumps(record.to_json(), indent=2, sort_keys=True, default=str))
        return
    from vggbench.runs import train_summary  # lazy: keeps CLI start-up fast

    echo(train_summary(record, stored, results_dir))
