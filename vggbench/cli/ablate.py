"""`vggbench ablate`: one of the paper's ablations over seeds, judged against its claim."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from vggbench.checks import MAX_CROP, MAX_WIDTH
from vggbench.cli.common import (
    MODEL,
    RECIPE,
    RUN_CONTROL,
    Param,
    at_most,
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
from vggbench.cli.progress import SweepBars, worker_progress
from vggbench.cli.train import TENSORBOARD_OPTION
from vggbench.recipe import SETTINGS, Rule, setting
from vggbench.render import check_format

EPILOG = examples(
    "vggbench ablate lrn --config A --preset quick --seeds 3",
    "vggbench ablate jitter --preset quick --seeds 3 --shard 1/3",
    "vggbench ablate lrn --preset smoke --seeds 2 --format markdown",
)

#: The settings whose override `--help` lists beside the net, and beside the preset and seeds; the
#: other overrides (bf16) come last.
_MODEL_AND_DATA = ("width", "crop", "data", "limit_train", "limit_val")
_RECIPE = ("epochs", "batch_size", "lr", "init")
_OVERRIDES = [s for s in SETTINGS if s.override]


#: The caps of the model's sizes, which models.ModelSpec checks (a spec's key check names the lower bound).
_MODEL_CAPS = {"crop": (MAX_CROP, "pixels"), "width": (MAX_WIDTH, f"{MAX_WIDTH:g}x the paper's channels")}


def _overrides(names: tuple[str, ...]) -> list[Param]:
    """The preset's overrides, each checked against its cap as it is parsed."""
    return [setting_param(setting(name), help=setting(name).override, check=_cap(name)) for name in names]


def _cap(name: str) -> Rule | None:
    if name in _MODEL_CAPS:
        return at_most(*_MODEL_CAPS[name])
    cap = setting(name).cap
    return None if cap is None else at_most(cap, setting(name).fix or "the machine's limit")


_PARAMS = [
    Param(
        "name",
        str,
        typer.Argument(
            ..., help="lrn, conv1x1, conv5x5, jitter, depth, init, or a spec file (.toml)", metavar="NAME"
        ),
    ),
    option(
        "config",
        str,
        None,
        "--config",
        help="the net, where the ablation allows a choice",
        rich_help_panel=MODEL,
    ),
    *_overrides(_MODEL_AND_DATA),
    option(
        "preset",
        str,
        "quick",
        help="smoke (seconds), quick (CPU minutes, to the paper's stopping rule), gpu (one GPU, crop 128), "
        "paper (GPUs, full recipe)",
        rich_help_panel=RECIPE,
    ),
    option(
        "seeds", int, 3, help="seeds per arm; 3 or more for a confidence interval", rich_help_panel=RECIPE
    ),
    *_overrides(_RECIPE),
    option(
        "finetune_lr",
        float,
        None,
        help="lr of an arm that fine-tunes another arm's run (default: lr / 10, the paper's 1e-3)",
        rich_help_panel=RECIPE,
    ),
    option(
        "finetune_epochs",
        int,
        None,
        help="epochs of an arm that fine-tunes another arm's run (default: the preset's epochs)",
        rich_help_panel=RECIPE,
    ),
    option(
        "from_scratch",
        bool,
        False,
        "--from-scratch",
        help="train every arm from scratch for the same epochs (no fine-tuning chain: init_from ignored)",
        rich_help_panel=RECIPE,
    ),
    results_dir_param(),
    format_param(),
    quiet_param("no progress output", "--quiet"),
    Param("tensorboard", Path, TENSORBOARD_OPTION),
    option(
        "shard",
        str,
        None,
        help="run part i of n of the arms x seeds, e.g. 1/4; records merge in the store",
        rich_help_panel=RUN_CONTROL,
        metavar="I/N",
    ),
    device_param("auto, cpu or cuda"),
    option(
        "jobs",
        int,
        None,
        help="runs at once, in worker processes sharing the store (one per GPU; on a CPU the cores are "
        "split); with --submit, the array's tasks (default: one per seed)",
        rich_help_panel=RUN_CONTROL,
    ),
    option(
        "submit",
        str,
        None,
        help="slurm: send the sweep to the cluster as an array job (task i runs --shard i/N, N = --jobs) "
        "through submitit; local: the same array on this machine, waited for",
        rich_help_panel=RUN_CONTROL,
    ),
    option("slurm_partition", str, None, help="--submit slurm: the partition", rich_help_panel=RUN_CONTROL),
    option(
        "slurm_time",
        int,
        None,
        help="--submit slurm: each task's time limit, in minutes",
        rich_help_panel=RUN_CONTROL,
    ),
    option("slurm_gpus", int, None, help="--submit slurm: GPUs per task", rich_help_panel=RUN_CONTROL),
    *_overrides(tuple(s.name for s in _OVERRIDES if s.name not in _MODEL_AND_DATA + _RECIPE)),
]


@with_params(_PARAMS)
def ablate(**given: Any) -> None:
    """Run one of the paper's ablations over seeds and judge the paper's claim.

    Stored runs and evaluations are reused, so an interrupted sweep continues where it stopped.
    Each run is locked while it trains, so processes sharing a store (--jobs, --shard, or two
    sweeps at once) train each run once.
    """
    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench.ablations.spec import load_spec, preset_budget
    from vggbench.ablations.sweep import SweepArgs, SweepHooks, parse_shard, run_ablation, sweep
    from vggbench.ablations.workers import run_workers, slurm_options, submit_and_wait
    from vggbench.report.ablation import render_ablation
    from vggbench.tracking import TensorBoard, chain

    fmt, seeds, preset, jobs, submit = (given[k] for k in ("fmt", "seeds", "preset", "jobs", "submit"))
    results_dir, device, quiet = given["results_dir"], given["device"], given["quiet"]
    check_format(fmt)
    board = TensorBoard(given["tensorboard"]) if given["tensorboard"] else None
    slurm = slurm_options(
        submit, given["shard"], jobs, given["slurm_partition"], given["slurm_time"], given["slurm_gpus"]
    )
    spec = load_spec(given["name"], given["config"], chain=False if given["from_scratch"] else None)
    shard = parse_shard(given["shard"])
    sweep(spec, seeds, shard)  # validates --seeds before any work
    overrides = {s.preset: given[s.name] or None if s.type is bool else given[s.name] for s in _OVERRIDES}
    overrides.update(finetune_lr=given["finetune_lr"], finetune_epochs=given["finetune_epochs"])
    budget = preset_budget(spec, preset, overrides)  # validates --preset before any work
    gpu_scale_note(budget.crop, budget.width, device)
    args = SweepArgs(spec, seeds, preset, overrides, results_dir, shard, device, quiet)
    if submit is not None:
        record = submit_and_wait(args, jobs, submit, slurm, note)
        if record is not None:
            _log_stored(board, results_dir, record)
            echo(render_ablation(record, fmt))
        return
    if jobs is not None and jobs != 1:
        record = run_workers(args, jobs, worker_progress(spec.name, quiet))
        _log_stored(board, results_dir, record)
        echo(render_ablation(record, fmt))
        return
    say = None if quiet else (lambda text: sys.stderr.write(text + "\n"))
    with (
        resumable(None, "the sweep's completed runs are stored"),
        SweepBars(quiet, spec.name, results_dir) as bars,
    ):
        on_run = chain(bars.on_run, board and board.on_run)
        on_epoch_end = chain(bars.on_epoch_end, board and board.log_epoch)
        record = run_ablation(args, SweepHooks(say, on_run, bars.progress, on_epoch_end))
    _log_stored(board, results_dir, record)
    echo(render_ablation(record, fmt))


def _log_stored(board, results_dir: Path, record) -> None:
    """--tensorboard: every run of the ablation that this process did not log as it trained."""
    if board is not None:
        board.log_stored(results_dir, [(arm.name, run_id) for arm in record.arms for run_id in arm.runs])
