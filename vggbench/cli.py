"""The `vggbench` command line: parses, delegates to library functions, prints.

Bad input raises VggbenchError (or a click usage error) and `run` turns it into one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vggbench import paper
from vggbench.errors import VggbenchError
from vggbench.fs import fs_error, writable_folder
from vggbench.options import DATASETS_HELP
from vggbench.render import FORMATS, check_format, render, render_sections
from vggbench.signals import raise_stopped, signum_of

if TYPE_CHECKING:
    from vggbench.ablations.sweep import SweepStep
    from vggbench.train import EpochEnd, StepProgress

# Typer vendors click in recent releases and depends on it in older ones: find its exception types
# through the public BadParameter instead of importing either spelling.
_CLICK_EXCEPTIONS = sys.modules[
    next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException").__module__
]

#: Help panels, so that `--help` groups a command's options by what they are about.
MODEL, DATA, RECIPE, EVALUATION, OUTPUT, RUN_CONTROL = (
    "Model",
    "Data",
    "Recipe",
    "Evaluation",
    "Output",
    "Run control",
)


def _examples(*lines: str) -> str:
    """A command's epilog: real calls to copy (kept one per line by the leading \\b)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


app = typer.Typer(
    help="Benchmarks and ablations for the VGG paper (Simonyan & Zisserman, 2014).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_examples(
        "vggbench params",
        "vggbench train --config A --data fashion-mnist --width 0.125 --crop 32 --epochs 5",
        "vggbench runs list",
    ),
)


def version() -> str:
    """The installed package's version (the source tree's when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("vggbench")
    except metadata.PackageNotFoundError:
        from vggbench import __version__  # lazy: only without an installed distribution

        return __version__


def _print_version(value: bool) -> None:
    if value:
        echo(f"vggbench {version()}")
        raise typer.Exit()


@app.callback()
def _group(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Benchmarks and ablations for the VGG paper (Simonyan & Zisserman, 2014)."""


def echo(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def note(text: str) -> None:
    sys.stderr.write(f"note: {text}\n")


FORMAT_HELP = f"output format: {', '.join(FORMATS)}"


@app.command(
    epilog=_examples(
        "vggbench params",
        "vggbench params --config D --width 0.125 --size 32 --classes 10",
        "vggbench params --filters --format markdown",
    )
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
    echo(render(frame if fmt in ("json", "csv") else counts.display(frame), fmt, title))
    if write:
        from vggbench.report.write import write_table2  # lazy: the report's writer imports plots and bench

        for path in write_table2(write):
            sys.stderr.write(f"wrote {path}\n")


def _gpu_scale_note(crop: int, width: float, device: str) -> None:
    """One stderr line when a GPU-scale run (crop 224 at full width) is about to start on a CPU:
    hours per epoch there, and the quick settings are one option away."""
    if crop < 224 or width < 1 or device.startswith("cuda"):
        return
    import torch  # lazy: keeps CLI start-up fast

    if device == "cpu" or not torch.cuda.is_available():
        note(
            f"crop {crop} at width {width:g} is GPU scale (hours per epoch on a CPU); "
            "on a CPU use --width 0.125 --crop 32 (ablate: --preset quick)"
        )


@app.command(
    epilog=_examples(
        "vggbench train --config A --data fashion-mnist --width 0.125 --crop 32 --epochs 5",
        "vggbench train --config A --data fashion-mnist --width 0.125 --crop 32 --scale 384 "
        "--init-from RUN --epochs 3",
        "torchrun --nproc_per_node 8 -m vggbench train --config D --data imagefolder:data/imagenet "
        "--stop schedule --epochs 74",
    )
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
        _gpu_scale_note(settings.crop, settings.width, device)
    with _resumable("--resume"), TrainBars(quiet) as bars:
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


# --- Progress on stderr (only on a terminal, never with --quiet) -------------------------------------


def _live(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _progress(*columns: object):
    """A transient rich Progress on stderr: finished bars are cleared, log lines print above it."""
    from rich.console import Console  # lazy: keeps CLI start-up fast
    from rich.progress import Progress

    return Progress(*columns, console=Console(stderr=True), transient=True)


@contextlib.contextmanager
def progress_bars(quiet: bool = False):
    """A factory of rich progress bars on stderr (none when quiet or stderr is not a terminal):
    factory(label, total) -> advance(n). Until the first bar, a status line says that the data and
    models load."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    if not _live(quiet):
        yield lambda label, total: lambda n: None
        return
    with _progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
    ) as bars:
        loading = [bars.add_task("loading data and models", total=None)]

        def factory(label: str, total: int) -> Callable[[int], None]:
            while loading:
                bars.remove_task(loading.pop())
            task = bars.add_task(label, total=total)
            return lambda n: bars.advance(task, n)

        yield factory


class TrainBars:
    """A training run's progress bar (epoch, loss, img/s, ETA) on stderr when it is a terminal and
    not quiet: a status line while data and model load, then one bar over all epochs whose label
    names the epoch that runs (set at each epoch's end, so it never lags into the next epoch, and
    right after a resume). `shared` puts the bar into another Progress (ablate's)."""

    def __init__(self, quiet: bool, shared=None) -> None:
        self.bar, self.task, self.owned = shared, None, shared is None
        self.steps, self.epochs = 0, 0
        if self.bar is None and _live(quiet):
            from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = _progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )

    def __enter__(self) -> TrainBars:
        if self.bar is not None:
            if self.owned:
                self.bar.__enter__()
            self.task = self.bar.add_task("loading data and model", total=None, info="")
        return self

    @property
    def progress(self) -> Callable[[StepProgress], None] | None:
        return None if self.bar is None else self._step

    @property
    def on_epoch_end(self) -> Callable[[EpochEnd], None] | None:
        return None if self.bar is None else self._epoch_end

    def _step(self, report: StepProgress) -> None:
        self.steps, self.epochs = report.steps, report.epochs
        validating = "; validating" if report.step == report.steps else ""
        self.bar.update(
            self.task,
            description=f"epoch {report.epoch}/{report.epochs}{validating}",
            total=report.epochs * report.steps,
            completed=(report.epoch - 1) * report.steps + report.step,
            info=f"loss {report.loss:.3f}  {report.images_per_s:.0f} img/s",
        )

    def _epoch_end(self, end: EpochEnd) -> None:
        if not self.steps:
            return
        following = f"epoch {end.epoch + 1}/{self.epochs}" if end.epoch < self.epochs else "finishing"
        self.bar.update(
            self.task,
            description=following,
            completed=end.epoch * self.steps,
            info=f"epoch {end.epoch}: val top-1 {end.metrics.val_top1_err:.2f}%",
        )

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.remove_task(self.task)
            if self.owned:
                self.bar.__exit__(*exc)


class SweepBars:
    """`ablate`'s progress: 'run k of N', which arm and seed, and an ETA for the rest from the runs
    done so far; a bar per run on a terminal (TrainBars), else one plain line per run (none when
    quiet)."""

    def __init__(self, quiet: bool, name: str) -> None:
        import time

        self.quiet, self.name, self.clock = quiet, name, time.perf_counter
        self.started = self.clock()
        self.bar = None
        self.done = 0
        if _live(quiet):
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

            self.bar = _progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
        self.task = None
        self.run_bars: TrainBars | None = None

    def __enter__(self) -> SweepBars:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def eta(self, index: int, total: int) -> str:
        """The time left, from the mean of the runs done so far (stored runs count as done fast)."""
        done = index - 1
        if not done:
            return "ETA after the first run"
        left = (self.clock() - self.started) / done * (total - done)
        return f"about {_duration(left)} left (from {done} run{'s' if done > 1 else ''} so far)"

    def on_run(self, step: SweepStep) -> None:
        what = f"arm {step.arm!r}, seed {step.seed} (run {step.run_id}{', stored' if step.stored else ''})"
        if self.bar is None:
            if not self.quiet:
                eta = self.eta(step.index, step.total)
                sys.stderr.write(f"{self.name}: run {step.index} of {step.total}: {what}; {eta}\n")
            return
        if self.task is None:
            self.task = self.bar.add_task("", total=step.total, info="")
        self.bar.update(
            self.task,
            description=f"{self.name}: run {step.index} of {step.total}: {what}",
            completed=step.index - 1,
            info=self.eta(step.index, step.total),
        )
        if self.run_bars is not None:
            self.run_bars.__exit__(None, None, None)
        self.run_bars = TrainBars(self.quiet, shared=self.bar).__enter__()

    @property
    def progress(self) -> Callable[[StepProgress], None] | None:
        return None if self.bar is None else lambda report: self.run_bars and self.run_bars._step(report)

    @property
    def on_epoch_end(self) -> Callable[[EpochEnd], None] | None:
        return None if self.bar is None else lambda end: self.run_bars and self.run_bars._epoch_end(end)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@app.command(
    epilog=_examples(
        "vggbench ablate lrn --config A --preset quick --seeds 3",
        "vggbench ablate jitter --preset quick --seeds 3 --shard 1/3",
        "vggbench ablate lrn --preset smoke --seeds 2 --format markdown",
    )
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
    from vggbench.ablations.workers import SweepArgs, run_workers

    check_format(fmt)
    slurm = _slurm_options(submit, shard, jobs, slurm_partition, slurm_time, slurm_gpus)
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
    _gpu_scale_note(budget.crop, budget.width, device)
    args = SweepArgs(spec, seeds, preset, overrides, results_dir, shard_range, device, quiet)
    if submit is not None:
        record = _submit(args, jobs, submit, slurm)
        if record is not None:
            echo(_ablation_output(record, fmt))
        return
    if jobs is not None and jobs != 1:
        echo(_ablation_output(run_workers(args, jobs, _worker_progress(spec.name, quiet)), fmt))
        return
    say = None if quiet else (lambda text: sys.stderr.write(text + "\n"))
    with _resumable(None, "the sweep's completed runs are stored"), SweepBars(quiet, spec.name) as bars:
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
    echo(_ablation_output(record, fmt))


def _slurm_options(
    submit: str | None,
    shard: str | None,
    jobs: int | None,
    partition: str | None,
    time_min: int | None,
    gpus: int | None,
):
    """ablate's --submit, --jobs and --slurm-* options, checked against each other."""
    from vggbench.ablations.workers import SUBMIT_TARGETS, SlurmOptions, check_jobs  # lazy: CLI start-up

    if jobs is not None:
        check_jobs(jobs)
    if submit is not None and submit not in SUBMIT_TARGETS:
        raise VggbenchError(f"--submit {submit!r}: use {' or '.join(SUBMIT_TARGETS)}")
    if submit is not None and shard is not None:
        raise VggbenchError(
            "--shard with --submit: the array's task i runs shard i of N; drop --shard and set N with --jobs"
        )
    given = {"--slurm-partition": partition, "--slurm-time": time_min, "--slurm-gpus": gpus}
    for flag, value in given.items():
        if value is not None and submit != "slurm":
            raise VggbenchError(f"{flag} applies to --submit slurm only")
    if time_min is not None and time_min < 1:
        raise VggbenchError(f"--slurm-time {time_min}: give the time limit in minutes, at least 1")
    if gpus is not None and gpus < 0:
        raise VggbenchError(f"--slurm-gpus {gpus}: need 0 or more")
    if partition is not None and not partition.strip():
        raise VggbenchError("--slurm-partition is empty; name a partition (sinfo lists them)")
    return SlurmOptions(partition, time_min, gpus)


def _submit(args, jobs: int | None, target: str, slurm):
    """Submit the sweep's array; under local, wait for it and return the analysis (None for slurm)."""
    # lazy: keeps CLI start-up fast
    from vggbench.ablations.spec import preset_budget
    from vggbench.ablations.sweep import analyse
    from vggbench.ablations.workers import SUBMITIT_FOLDER, submit_sweep, wait_for

    tasks = jobs or args.seeds
    submitted = submit_sweep(args, tasks, target, slurm)
    array = str(submitted[0].job_id).split("_")[0]
    note(
        f"submitted job {array}: {tasks} array tasks, task i runs --shard i/{tasks}; "
        f"logs in {args.results_dir / SUBMITIT_FOLDER}"
    )
    if target == "slurm":
        note(f"once it is done: vggbench report --results-dir {args.results_dir}")
        return None
    wait_for(submitted)
    budget = preset_budget(args.spec, args.preset, args.overrides)
    return analyse(
        args.spec, seeds=args.seeds, preset=args.preset, budget=budget, results_dir=args.results_dir
    )


def _worker_progress(name: str, quiet: bool) -> Callable:
    """--jobs progress: a line per run the first time a worker starts it (k of N)."""
    seen: set[str] = set()

    def on_run(worker: int, step: SweepStep) -> None:
        if quiet or step.run_id in seen:
            return
        seen.add(step.run_id)
        stored = ", stored" if step.stored else ""
        sys.stderr.write(
            f"{name}: run {len(seen)} of {step.total}: arm {step.arm!r}, seed {step.seed} "
            f"(run {step.run_id}{stored}) on worker {worker}\n"
        )

    return on_run


def _ablation_output(record, fmt: str) -> str:
    """The ablation's record in `fmt`: JSON is the record; the other formats its arms and
    comparisons tables, with the claim, budget and notes as text (LaTeX comments in LaTeX; left out
    of CSV, which is one table)."""
    import json

    from vggbench.report import tables  # lazy: keeps CLI start-up fast

    if fmt == "json":
        return json.dumps(record.to_json(), indent=2, default=str)
    header = [
        f"{record.title} ({record.paper.section})",
        f"paper: {record.paper.claim}",
        tables.ablation_budget_line(record),
        _design_line(record.budget),
    ]
    notes = [c.note for c in record.comparisons if c.note] + list(tables.ablation_notes(record))
    if record.runs_found < record.runs_expected:
        notes.append(
            f"{record.runs_found} of {record.runs_expected} runs are in the store; "
            "run the other shards to complete the sweep"
        )
    sections = [
        ("arms", tables.ablation_arms_frame(record)),
        ("comparisons (treatment - baseline top-1 error)", tables.ablation_comparisons_frame(record)),
    ]
    if fmt == "csv":
        return render_sections(sections, fmt, key="table")
    prefix = "% " if fmt == "latex" else ""
    return "\n".join(prefix + line for line in header) + "\n" + render_sections(sections, fmt, notes)


def _design_line(budget) -> str:
    """Whether the sweep chained its arms (the paper's fine-tuning) or trained each from scratch."""
    if budget.design == "chain":
        return (
            f"design: chain (an arm with init_from fine-tunes its source arm's run of the same seed "
            f"at lr {budget.finetune_lr:g} for {budget.finetune_epochs} epochs; --from-scratch for none)"
        )
    return f"design: {budget.design} (every arm from its own init, {budget.epochs} epochs)"


@app.command(
    "report",
    epilog=_examples(
        "vggbench report",
        "vggbench report --results-dir build/demo --out build/demo",
        "vggbench report --no-plots",
    ),
)
def report_command(
    results_dir: Path = typer.Option(
        Path("results"), help="the results store to read", rich_help_panel=OUTPUT
    ),
    out: Path = typer.Option(
        None,
        help="where to write REPORT.md, tables/ and plots/ (default: the results store)",
        rich_help_panel=OUTPUT,
    ),
    plots: bool = typer.Option(True, help="also draw PNG plots with matplotlib", rich_help_panel=OUTPUT),
) -> None:
    """Render every table the store can fill, beside the paper's numbers: Markdown, LaTeX, plots."""
    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench.report.write import write_report

    for path in write_report(results_dir, out or results_dir, plots=plots):
        sys.stderr.write(f"wrote {path}\n")


@app.command(
    "eval",
    epilog=_examples(
        "vggbench eval RUN --dense --multi-crop --scales jitter",
        "vggbench eval --config D --scale 256:512 --method dense --scales multi",
        "vggbench eval --fuse RUN1 RUN2 --dense --format markdown",
    ),
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
    data_root: str = typer.Option(None, "--data-root", help="where datasets live", rich_help_panel=DATA),
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
        data_root=data_root,
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
    echo(render(frame if fmt == "csv" else frame.rename(columns=RESULT_HEADERS), fmt, title))


@app.command(
    epilog=_examples(
        "vggbench bench --config A,D --width 0.125 --crop 32 --batch 64",
        "vggbench bench --parts data --config A --width 0.125 --crop 32 --batch 256 --data-folder ~/cifar10",
        "vggbench bench --config D --width 1 --crop 224 --batch 256 --device cuda --bf16 --channels-last",
    )
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
    from vggbench import bench as bench_lib  # lazy: keeps CLI start-up fast

    check_format(fmt, bench_lib.BENCH_FORMATS)
    options = bench_lib.BenchOptions(
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
    points = bench_lib.cases(
        bench_lib.parse_list(config, str, "config"),
        bench_lib.parse_list(width, float, "width"),
        bench_lib.parse_list(crop, int, "crop"),
        bench_lib.parse_list(batch, int, "batch"),
        classes,
    )
    if save:  # before minutes of measuring, not after
        writable_folder(Path(results_dir) / bench_lib.KIND)
    record = bench_lib.run_bench(
        points, options, parts, progress=lambda line: sys.stderr.write(f"bench: {line}\n")
    )
    echo(bench_lib.render_bench(record, fmt))
    if save:
        sys.stderr.write(f"wrote {bench_lib.save_bench(record, results_dir)}\n")


# --- vggbench runs: browsing the store -----------------------------------------------------------------

runs_app = typer.Typer(
    help="Browse the results store: list, show, compare and export runs (ids or unique prefixes).",
    no_args_is_help=True,
    epilog=_examples(
        "vggbench runs list --config A", "vggbench runs show 1cc2", "vggbench runs compare 1cc2 3573"
    ),
)
app.add_typer(runs_app, name="runs", rich_help_panel="Results")

RESULTS_DIR_OPTION = typer.Option(
    Path("results"), "--results-dir", help="the results store", rich_help_panel=OUTPUT
)


@runs_app.command(
    "list",
    epilog=_examples(
        "vggbench runs list",
        "vggbench runs list --config A-LRN --data fashion-mnist --preset quick",
        "vggbench runs list --scale 256:512 --format csv > runs.csv",
    ),
)
def runs_list(
    config: str = typer.Option(None, "--config", help="only runs of this net (A, A-LRN, B, C, D, E, B-5x5)"),
    data: str = typer.Option(
        None, "--data", help="only runs on this data spec or dataset, e.g. fashion-mnist"
    ),
    scale: str = typer.Option(None, "--scale", help="only runs of this train scale S: 256, 384 or 256:512"),
    preset: str = typer.Option(
        None,
        "--preset",
        help="only runs at this ablation preset's shared budget (presets.toml: data, width, crop, batch, "
        "image limits, stopping rule; lr, epochs and init vary by arm and do not decide)",
    ),
    results_dir: Path = RESULTS_DIR_OPTION,
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP, rich_help_panel=OUTPUT),
) -> None:
    """Every stored run: id in full, net, data, budget, train scale, init, val errors, time, status.

    Runs with a checkpoint but no record yet (interrupted, or training now) are listed last.
    """
    from vggbench import runs as runs_lib  # lazy: keeps CLI start-up fast

    check_format(fmt)
    chosen = runs_lib.select_runs(results_dir, config, data, scale, preset)
    filtered = any(v is not None for v in (config, data, scale, preset))
    frame = runs_lib.runs_frame(chosen, [] if filtered else runs_lib.interrupted_runs(results_dir))
    if not len(frame):
        where = Path(results_dir) / "runs"
        note(f"no runs{' match' if filtered else ''} in {where}; train one with vggbench train")
    shown = frame if fmt in ("json", "csv") else runs_lib.display_runs(frame)
    echo(render(shown, fmt, f"Runs in {results_dir}"))


@runs_app.command(
    "show",
    epilog=_examples("vggbench runs show 1cc24b2f6f9c", "vggbench runs show 1cc2 --format markdown"),
)
def runs_show(
    run_id: str = typer.Argument(..., help="a stored run id or a unique prefix of one", metavar="RUN"),
    results_dir: Path = RESULTS_DIR_OPTION,
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP, rich_help_panel=OUTPUT),
) -> None:
    """One run: what it is and reached, its per-epoch curve, and its stored evaluations.

    JSON gives the whole record and its evaluation records."""
    import json

    from vggbench import runs as runs_lib  # lazy: keeps CLI start-up fast

    check_format(fmt)
    run = runs_lib.get_run(results_dir, run_id)
    evals = runs_lib.run_evals(results_dir, run.id)
    if fmt == "json":
        echo(json.dumps({"run": run.to_json(), "evals": [e.to_json() for e in evals]}, indent=2, default=str))
        return
    sections = [
        (f"run {run.id}", runs_lib.summary_frame(run)),
        ("per-epoch curve (validation: center crop at Q)", runs_lib.curve_frame(run)),
        ("stored evaluations", runs_lib.evals_frame(evals)),
    ]
    echo(render_sections(sections, fmt, key="table"))


@runs_app.command(
    "compare",
    epilog=_examples(
        "vggbench runs compare 1cc2 3573", "vggbench runs compare 1cc2 3573 390c --format markdown"
    ),
)
def runs_compare(
    run_ids: list[str] = typer.Argument(..., help="two or more run ids or unique prefixes", metavar="RUN"),
    results_dir: Path = RESULTS_DIR_OPTION,
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP, rich_help_panel=OUTPUT),
) -> None:
    """Runs side by side: config (rows that differ first, marked *), errors, and their curves."""
    from vggbench import runs as runs_lib  # lazy: keeps CLI start-up fast

    check_format(fmt)
    chosen = runs_lib.get_runs(results_dir, run_ids, at_least=2)
    sections = [
        ("runs side by side (* = differs)", runs_lib.compare_frame(chosen)),
        ("val top-1 error (%) per epoch", runs_lib.curves_frame(chosen)),
    ]
    echo(render_sections(sections, fmt, key="table"))


@runs_app.command(
    "export",
    epilog=_examples(
        "vggbench runs export --format csv --out records.csv",
        "vggbench runs export --format json | python -c 'import json,sys; print(len(json.load(sys.stdin)))'",
    ),
)
def runs_export(
    fmt: str = typer.Option("csv", "--format", help="csv or json", rich_help_panel=OUTPUT),
    out: Path = typer.Option(
        None,
        "--out",
        help="write here (atomically) instead of stdout",
        rich_help_panel=OUTPUT,
        metavar="FILE",
    ),
    results_dir: Path = RESULTS_DIR_OPTION,
) -> None:
    """Every run and evaluation record, flattened to one row each (kind says which), for pandas:
    pd.read_csv or pd.read_json."""
    # lazy: keeps CLI start-up fast
    from vggbench import runs as runs_lib
    from vggbench.store import atomic_write_text

    check_format(fmt, runs_lib.EXPORT_FORMATS)
    if out is not None:
        runs_lib.check_export_target(out, results_dir)
    text = runs_lib.render_export(runs_lib.export_rows(results_dir), fmt)
    if out is None:
        sys.stdout.write(text)
        return
    atomic_write_text(out, text)
    sys.stderr.write(f"wrote {out}\n")


def _tidy(command):
    """Readable help placeholders. typer shows `<bool>` on every option without a metavar, flags
    (and --help) included, though a flag takes no value: an empty metavar shows nothing. A list
    shows as `<list[str]>`: it becomes `<str>...`."""
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif hasattr(param, "display_type_rich"):
            param.display_type_rich = functools.partial(_unlisted, param.display_type_rich)
    original = command.get_help_option
    command.get_help_option = functools.partial(_flag_help_option, original)
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)
    return command


def _unlisted(display: Callable, ctx) -> str | None:
    text = display(ctx)
    return text.replace("<list[", "<").replace("]>", ">...") if text else text


def _flag_help_option(get_help_option: Callable, ctx):
    option = get_help_option(ctx)
    if option is not None:
        option.metavar = ""
    return option


class _Interrupted(Exception):
    """Ctrl-C (or SIGTERM) in `train` or `ablate`, carried to `run` as a plain exception: typer turns
    a KeyboardInterrupt into a silent exit 130, and its message (where the checkpoint is) with it."""

    def __init__(self, saved: str, resume_flag: str | None, signum: int = signal.SIGINT) -> None:
        super().__init__(saved)
        self.saved, self.resume_flag, self.signum = saved, resume_flag, signum


@contextlib.contextmanager
def _resumable(resume_flag: str | None, kept: str = ""):
    """Ctrl-C or SIGTERM inside becomes `_Interrupted`: what was saved (training's message, and
    `kept`), the flag that continues the command (None: the same command continues it), the signal."""
    try:
        yield
    except KeyboardInterrupt as error:
        saved = getattr(error, "saved", None) or "interrupted"
        raise _Interrupted(f"{saved}; {kept}" if kept else saved, resume_flag, signum_of(error)) from None


def _resume_command(argv: list[str], resume_flag: str | None) -> str:
    """The exact command that continues an interrupted one: the same argv, plus `resume_flag`."""
    extra = [resume_flag] if resume_flag and resume_flag not in argv else []
    return shlex.join(["vggbench", *argv, *extra])


def run(argv: list[str]) -> int:
    """Run the CLI on `argv` and return its exit code; errors become one line on stderr. SIGTERM
    stops it as Ctrl-C does (a run saves its checkpoint), with exit code 128 + the signal's number."""
    command = _tidy(typer.main.get_command(app))
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_stopped) if main_thread else None
    try:
        result = command.main(args=argv, prog_name="vggbench", standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except _CLICK_EXCEPTIONS.ClickException as error:
        if error.format_message():  # empty when click has already shown the help
            sys.stderr.write(f"error: {error.format_message()}\n")
        return 2
    except _Interrupted as stop:
        sys.stderr.write(
            f"error: {stop.saved}; to continue, run: {_resume_command(argv, stop.resume_flag)}\n"
        )
        return 128 + stop.signum
    except (typer.Abort, KeyboardInterrupt) as error:
        sys.stderr.write(f"error: {str(error) or 'interrupted'}\n")
        return 128 + signum_of(error)
    except VggbenchError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    except OSError as error:  # the last resort: fs.writing / fs.reading name the file where they can
        sys.stderr.write(f"error: {fs_error(error, 'access')}\n")
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
