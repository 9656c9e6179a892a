"""`vggbench ablate`: one of the paper's ablations over seeds, judged against its claim."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vggbench.cli.common import (
    DATA,
    FORMAT_HELP,
    MODEL,
    OUTPUT,
    RECIPE,
    RUN_CONTROL,
    echo,
    examples,
    gpu_scale_note,
    note,
    resumable,
)
from vggbench.cli.progress import SweepBars, worker_progress
from vggbench.options import DATASETS_HELP
from vggbench.render import check_format

EPILOG = examples(
    "vggbench ablate lrn --config A --preset quick --seeds 3",
    "vggbench ablate jitter --preset quick --seeds 3 --shard 1/3",
    "vggbench ablate lrn --preset smoke --seeds 2 --format markdown",
)


def ablate(
    name: str = typer.Argument(
        ..., help="lrn, conv1x1, conv5x5, jitter, depth, init, or a spec file (.toml)", metavar="NAME"
    ),
    config: str = typer.Option(
        None, "--config", help="the net, where the ablation allows a choice", rich_help_panel=MODEL
    ),
    width: float = typer.Option(None, help="override the preset's width multiplier", rich_help_panel=MODEL),
    crop: int = typer.Option(None, help="override the preset's crop", rich_help_panel=MODEL),
    data: str = typer.Option(
        None, help=f"override the preset's dataset: {DATASETS_HELP}", rich_help_panel=DATA
    ),
    limit_train: int = typer.Option(None, help="override the preset's training images", rich_help_panel=DATA),
    limit_val: int = typer.Option(None, help="override the preset's validation images", rich_help_panel=DATA),
    preset: str = typer.Option(
        "quick",
        help="smoke (seconds), quick (CPU minutes, to the paper's stopping rule), gpu (one GPU, crop 128), "
        "paper (GPUs, full recipe)",
        rich_help_panel=RECIPE,
    ),
    seeds: int = typer.Option(
        3, help="seeds per arm; 3 or more for a confidence interval", rich_help_panel=RECIPE
    ),
    epochs: int = typer.Option(None, help="override the preset's epochs", rich_help_panel=RECIPE),
    batch: int = typer.Option(None, help="override the preset's batch size", rich_help_panel=RECIPE),
    lr: float = typer.Option(None, help="override the preset's learning rate", rich_help_panel=RECIPE),
    init: str = typer.Option(
        None, help="override the preset's init for arms that do not set one", rich_help_panel=RECIPE
    ),
    finetune_lr: float = typer.Option(
        None,
        help="lr of an arm that fine-tunes another arm's run (default: lr / 10, the paper's 1e-3)",
        rich_help_panel=RECIPE,
    ),
    finetune_epochs: int = typer.Option(
        None,
        help="epochs of an arm that fine-tunes another arm's run (default: the preset's epochs)",
        rich_help_panel=RECIPE,
    ),
    from_scratch: bool = typer.Option(
        False,
        "--from-scratch",
        help="train every arm from scratch for the same epochs (no fine-tuning chain: init_from ignored)",
        rich_help_panel=RECIPE,
    ),
    results_dir: Path = typer.Option(Path("results"), help="the results store", rich_help_panel=OUTPUT),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP, rich_help_panel=OUTPUT),
    quiet: bool = typer.Option(False, help="no progress output", rich_help_panel=OUTPUT),
    shard: str = typer.Option(
        None,
        help="run part i of n of the arms x seeds, e.g. 1/4; records merge in the store",
        rich_help_panel=RUN_CONTROL,
        metavar="I/N",
    ),
    device: str = typer.Option("auto", help="auto, cpu or cuda", rich_help_panel=RUN_CONTROL),
    jobs: int = typer.Option(
        None,
        help="runs at once, in worker processes sharing the store (one per GPU; on a CPU the cores are "
        "split); with --submit, the array's tasks (default: one per seed)",
        rich_help_panel=RUN_CONTROL,
    ),
    submit: str = typer.Option(
        None,
        help="slurm: send the sweep to the cluster as an array job (task i runs --shard i/N, N = --jobs) "
        "through submitit; local: the same array on this machine, waited for",
        rich_help_panel=RUN_CONTROL,
    ),
    slurm_partition: str = typer.Option(
        None, help="--submit slurm: the partition", rich_help_panel=RUN_CONTROL
    ),
    slurm_time: int = typer.Option(
        None, help="--submit slurm: each task's time limit, in minutes", rich_help_panel=RUN_CONTROL
    ),
    slurm_gpus: int = typer.Option(None, help="--submit slurm: GPUs per task", rich_help_panel=RUN_CONTROL),
    bf16: bool = typer.Option(
        False,
        "--bf16",
        help="bf16 autocast for every run (part of their ids; the gpu preset sets it)",
        rich_help_panel=RUN_CONTROL,
    ),
) -> None:
    """Run one of the paper's ablations over seeds and judge the paper's claim.

    Stored runs and evaluations are reused, so an interrupted sweep continues where it stopped.
    Each run is locked while it trains, so processes sharing a store (--jobs, --shard, or two
    sweeps at once) train each run once.
    """
    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench.ablations.spec import load_spec, preset_budget
    from vggbench.ablations.sweep import parse_shard, run_ablation, sweep
    from vggbench.ablations.workers import SweepArgs, run_workers, slurm_options, submit_and_wait
    from vggbench.report.ablation import render_ablation

    check_format(fmt)
    slurm = slurm_options(submit, shard, jobs, slurm_partition, slurm_time, slurm_gpus)
    spec = load_spec(name, config, chain=False if from_scratch else None)
    shard_range = parse_shard(shard)
    sweep(spec, seeds, shard_range)  # validates --seeds before any work
    overrides = {
        "data": data,
        "width": width,
        "crop": crop,
        "epochs": epochs,
        "batch": batch,
        "lr": lr,
        "limit_train": limit_train,
        "limit_val": limit_val,
        "init": init,
        "finetune_lr": finetune_lr,
        "finetune_epochs": finetune_epochs,
        "bf16": bf16 or None,  # None keeps the preset's
    }
    budget = preset_budget(spec, preset, overrides)  # validates --preset before any work
    gpu_scale_note(budget.crop, budget.width, device)
    args = SweepArgs(spec, seeds, preset, overrides, results_dir, shard_range, device, quiet)
    if submit is not None:
        record = submit_and_wait(args, jobs, submit, slurm, note)
        if record is not None:
            echo(render_ablation(record, fmt))
        return
    if jobs is not None and jobs != 1:
        echo(render_ablation(run_workers(args, jobs, worker_progress(spec.name, quiet)), fmt))
        return
    say = None if quiet else (lambda text: sys.stderr.write(text + "\n"))
    with resumable(None, "the sweep's completed runs are stored"), SweepBars(quiet, spec.name) as bars:
        record = run_ablation(
            spec,
            seeds=seeds,
            preset=preset,
            overrides=overrides,
            results_dir=results_dir,
            shard=shard_range,
            device=device,
            quiet=quiet,
            say=say,
            on_run=bars.on_run,
            progress=bars.progress,
            on_epoch_end=bars.on_epoch_end,
        )
    echo(render_ablation(record, fmt))
