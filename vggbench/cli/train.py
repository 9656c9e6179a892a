"""`vggbench train`: one run of the paper's recipe, stored (or found in the store)."""

from __future__ import annotations

from pathlib import Path

import typer

from vggbench import paper
from vggbench.cli.common import (
    DATA,
    MODEL,
    OUTPUT,
    RECIPE,
    RUN_CONTROL,
    echo,
    examples,
    gpu_scale_note,
    resumable,
)
from vggbench.cli.progress import TrainBars
from vggbench.options import DATASETS_HELP
from vggbench.render import check_format

EPILOG = examples(
    "vggbench train --config A --data fashion-mnist --width 0.125 --crop 32 --epochs 5",
    "vggbench train --config A --data fashion-mnist --width 0.125 --crop 32 --scale 384 "
    "--init-from RUN --epochs 3",
    "torchrun --nproc_per_node 8 -m vggbench train --config D --data imagefolder:data/imagenet "
    "--stop schedule --epochs 74",
)


def train(
    config: str = typer.Option(
        "A", "--config", help="the net of Table 1: A, A-LRN, B, C, D, E or B-5x5", rich_help_panel=MODEL
    ),
    crop: int = typer.Option(
        paper.PAPER_CROP,
        help="training crop in pixels, a multiple of 32 (e.g. 32 on a CPU)",
        rich_help_panel=MODEL,
    ),
    width: float = typer.Option(
        1.0, help="width multiplier for the channels (e.g. 0.125 on a CPU)", rich_help_panel=MODEL
    ),
    fc_width: int = typer.Option(None, help="FC6/FC7 width (default 4096 x width)", rich_help_panel=MODEL),
    dropout: float = typer.Option(
        paper.DROPOUT, help="dropout of the first two FC layers", rich_help_panel=MODEL
    ),
    lrn_alpha: float = typer.Option(
        None,
        help="LRN's alpha in Krizhevsky's formula (default 1e-4; torch's layer gets alpha x 5)",
        rich_help_panel=MODEL,
    ),
    data: str = typer.Option("synthetic", help=DATASETS_HELP, rich_help_panel=DATA),
    data_root: Path = typer.Option(
        None, help="where the dataset lives (default: the usual places)", rich_help_panel=DATA
    ),
    limit_train: int = typer.Option(
        None, help="a stratified subset of this many training images", rich_help_panel=DATA
    ),
    limit_val: int = typer.Option(
        None, help="a stratified subset of this many validation images", rich_help_panel=DATA
    ),
    val_split: float = typer.Option(
        None, help="hold out this fraction of train as val (for data without a val set)", rich_help_panel=DATA
    ),
    input_range: str = typer.Option(
        None,
        help="pixel scale of the input: 0-255 (default, the paper's Caffe input) or 0-1 (/ 255)",
        rich_help_panel=DATA,
    ),
    download: bool = typer.Option(
        False, "--download", help="download the dataset if missing (torchvision)", rich_help_panel=DATA
    ),
    skip_bad_images: bool = typer.Option(
        False, "--skip-bad-images", help="skip unreadable images, counting them", rich_help_panel=DATA
    ),
    workers: int = typer.Option(0, help="DataLoader workers for image folders", rich_help_panel=DATA),
    cache_budget: str = typer.Option(
        "auto",
        help="decode an image folder once and cache it when it fits in this many GB; auto: half the "
        "free RAM (a quarter of the free GPU memory on a GPU); off: always stream",
        rich_help_panel=DATA,
    ),
    cache_dir: Path = typer.Option(
        None,
        help="where decoded image folders are cached (default $VGGBENCH_CACHE_DIR/decoded or "
        "~/.cache/vggbench/decoded)",
        rich_help_panel=DATA,
    ),
    scale: str = typer.Option(
        "256",
        help="training scale S in the paper's units: 256, 384 or a jitter range 256:512",
        rich_help_panel=RECIPE,
    ),
    epochs: int = typer.Option(
        None, help="epochs (default 10; the paper trained 74)", rich_help_panel=RECIPE
    ),
    seed: int = typer.Option(
        0, help="seed of init, batch order, augmentation and dropout", rich_help_panel=RECIPE
    ),
    init: str = typer.Option(
        None,
        help="glorot (default), kaiming, paper (normal, std --init-std) or preinit",
        rich_help_panel=RECIPE,
    ),
    init_std: float = typer.Option(
        None,
        help="std of --init paper: 0.01 (default, as commonly implemented) "
        "or 0.1 (the paper's '10^-2 variance' read literally)",
        rich_help_panel=RECIPE,
    ),
    preinit_from: str = typer.Option(
        None,
        help="with --init preinit: the stored run of net A to copy layers from",
        rich_help_panel=RECIPE,
        metavar="RUN",
    ),
    preinit_mapping: str = typer.Option(
        "stage", help="which convs receive A's first four: stage or order", rich_help_panel=RECIPE
    ),
    init_from: str = typer.Option(
        None,
        help="fine-tune from this stored run's weights (e.g. S=384 from S=256)",
        rich_help_panel=RECIPE,
        metavar="RUN",
    ),
    lr: float = typer.Option(
        None,
        help="initial learning rate (default 0.01; 0.001 with --init-from, as the paper)",
        rich_help_panel=RECIPE,
    ),
    momentum: float = typer.Option(paper.MOMENTUM, help="SGD momentum", rich_help_panel=RECIPE),
    weight_decay: float = typer.Option(paper.WEIGHT_DECAY, help="weight decay (L2)", rich_help_panel=RECIPE),
    batch: int = typer.Option(
        paper.BATCH_SIZE,
        help="global batch size (split over processes under torchrun)",
        rich_help_panel=RECIPE,
    ),
    patience: int = typer.Option(
        None,
        help="epochs without a better val top-1 error before lr / 10 (default 2)",
        rich_help_panel=RECIPE,
    ),
    max_lr_decreases: int = typer.Option(
        paper.MAX_LR_DECREASES, help="at most this many lr decreases", rich_help_panel=RECIPE
    ),
    stop: str = typer.Option(
        None,
        help="epochs (default: train --epochs) or schedule (the paper's rule: stop at the plateau after "
        "the last lr decrease, --epochs as a cap)",
        rich_help_panel=RECIPE,
    ),
    results_dir: Path = typer.Option(Path("results"), help="the results store", rich_help_panel=OUTPUT),
    fmt: str = typer.Option(
        "text", "--format", help="text (one line) or json (the run record)", rich_help_panel=OUTPUT
    ),
    as_json: bool = typer.Option(False, "--json", hidden=True, help="same as --format json"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress output", rich_help_panel=OUTPUT),
    device: str = typer.Option(
        "auto", help="auto (cuda if available), cpu, cuda or cuda:N", rich_help_panel=RUN_CONTROL
    ),
    max_device_batch: int = typer.Option(
        None,
        help="largest micro-batch on a device: larger batches accumulate gradients",
        rich_help_panel=RUN_CONTROL,
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="continue this config's interrupted run from its checkpoint",
        rich_help_panel=RUN_CONTROL,
    ),
    force: bool = typer.Option(
        False, "--force", help="train again even if the run is stored", rich_help_panel=RUN_CONTROL
    ),
    compile_: bool = typer.Option(
        False,
        "--compile",
        help="torch.compile the model (slower on the 2-core CPU, see the README)",
        rich_help_panel=RUN_CONTROL,
    ),
    bf16: bool = typer.Option(
        False,
        "--bf16",
        help="bf16 autocast in training and validation (part of the run id)",
        rich_help_panel=RUN_CONTROL,
    ),
    channels_last: bool = typer.Option(
        True,
        "--channels-last/--no-channels-last",
        help="channels_last memory format (model and input): faster on GPUs and on the README's CPU",
        rich_help_panel=RUN_CONTROL,
    ),
    deterministic: bool = typer.Option(
        False, "--deterministic", help="deterministic algorithms (exact resume)", rich_help_panel=RUN_CONTROL
    ),
) -> None:
    """Train a net of Table 1 with the paper's recipe (Section 3.1) and store the run.

    A stored run is returned, not retrained (--force retrains); Ctrl-C keeps a checkpoint for --resume.
    """
    import json

    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench import store
    from vggbench import train as training
    from vggbench.data.cache import CacheOptions

    check_format(fmt, ("text", "json"))
    cache = CacheOptions(cache_budget, cache_dir)
    options = {
        "net": config,
        "data": data,
        "crop": crop,
        "width": width,
        "scale": scale,
        "seed": seed,
        "init": init,
        "init_std": init_std,
        "preinit_from": preinit_from,
        "preinit_mapping": preinit_mapping,
        "init_from": init_from,
        "lr": lr,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "dropout": dropout,
        "fc_width": fc_width,
        "lrn_alpha": lrn_alpha,
        "input_range": input_range,
        "batch_size": batch,
        "max_device_batch": max_device_batch,
        "epochs": epochs,
        "patience": patience,
        "max_lr_decreases": max_lr_decreases,
        "stop": stop,
        "limit_train": limit_train,
        "limit_val": limit_val,
        "val_split": val_split,
        "data_root": str(data_root) if data_root else None,
        "download": download,
        "skip_bad_images": skip_bad_images,
        "workers": workers,
        "compile": compile_,
        "bf16": bf16,
        "channels_last": channels_last,
        "deterministic": deterministic,
    }
    settings = training.TrainConfig(**{k: v for k, v in options.items() if v is not None})
    stored = not force and store.read_run(results_dir, settings.run_id) is not None
    if not stored:
        gpu_scale_note(settings.crop, settings.width, device)
    with resumable("--resume"), TrainBars(quiet) as bars:
        record = training.train(
            settings,
            results_dir=results_dir,
            device=device,
            resume=resume,
            force=force,
            quiet=quiet,
            progress=bars.progress,
            on_epoch_end=bars.on_epoch_end,
            cache=cache,
        )
    if as_json or fmt == "json":
        echo(json.dumps(record.to_json(), indent=2, sort_keys=True, default=str))
        return
    echo(
        f"run {record.id}{' (stored; --force retrains)' if stored else ''}: {record.net} width "
        f"{record.width:g} crop {record.crop} S={record.train_scale} on {record.dataset}: val top-1 "
        f"{record.top1_err:.2f}% top-5 {record.top5_err:.2f}% after {len(record.epochs)} epochs, "
        f"{record.wall_time_s:.0f} s, {record.images_per_s:.0f} img/s, "
        f"data {100 * record.data_time_fraction:.0f}% of train time; "
        f"{Path(results_dir) / store.RUNS / (record.id + '.json')}"
    )
