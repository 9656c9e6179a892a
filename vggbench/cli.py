"""The `vggbench` command line: parses, delegates to library functions, prints.

Bad input raises VggbenchError (or a click usage error) and `run` turns it into one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vggbench import paper
from vggbench.errors import VggbenchError
from vggbench.options import DATASETS_HELP
from vggbench.render import FORMATS, check_format, render

if TYPE_CHECKING:
    from vggbench.train import StepProgress

# Typer vendors click in recent releases and depends on it in older ones: find its exception types
# through the public BadParameter instead of importing either spelling.
_CLICK_EXCEPTIONS = sys.modules[
    next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException").__module__
]

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
    config: str = typer.Option(
        None, "--config", help="show the per-layer breakdown of this net (A, A-LRN, B, C, D, E, B-5x5)"
    ),
    fmt: str = typer.Option("table", "--format", help=f"one of {', '.join(FORMATS)}"),
    width: float = typer.Option(1.0, help="width multiplier for the channels (e.g. 0.125)"),
    classes: int = typer.Option(paper.NUM_CLASSES, help="number of classes"),
    size: int = typer.Option(paper.PAPER_CROP, help="input size in pixels, a multiple of 32"),
    filters: bool = typer.Option(
        False, "--filters", help="show Section 2.3's stacked 3x3 vs large-filter table"
    ),
    channels: int = typer.Option(512, help="channels for --filters"),
    write: Path = typer.Option(
        None,
        "--write",
        help="also write Table 2 (224 px, 1000 classes, as the paper) as Markdown and LaTeX here",
    ),
) -> None:
    """Table 2 (parameters), MACs, FLOPs, per-layer breakdown and receptive fields."""
    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench.models import ModelSpec
    from vggbench.report import tables

    check_format(fmt)
    ModelSpec(config or "A", classes, width, size)  # validates the options before any work
    if filters:
        if channels < 1:
            raise VggbenchError(f"channels {channels} must be at least 1")
        frame, title = tables.filters_frame(channels), f"Stacked 3x3 convs vs one large conv, C = {channels}"
    elif config:
        frame = tables.layers_frame(config, width, classes, size)
        title = f"{config}: per-layer breakdown at {size}x{size} (MACs = multiply-accumulates)"
    else:
        frame = tables.params_frame(width, classes, size)
        title = f"Parameters and compute at {size}x{size}, {classes} classes, width {width:g}"
    echo(render(frame if fmt in ("json", "csv") else tables.display(frame), fmt, title))
    if write:
        from vggbench.report.write import write_table2  # lazy: the report's writer imports plots and bench

        for path in write_table2(write):
            sys.stderr.write(f"wrote {path}\n")


@app.command()
def train(
    config: str = typer.Option("A", "--config", help="the net of Table 1: A, A-LRN, B, C, D, E or B-5x5"),
    data: str = typer.Option("synthetic", help=DATASETS_HELP),
    crop: int = typer.Option(
        paper.PAPER_CROP, help="training crop in pixels, a multiple of 32 (e.g. 32 on a CPU)"
    ),
    width: float = typer.Option(1.0, help="width multiplier for the channels (e.g. 0.125 on a CPU)"),
    scale: str = typer.Option(
        "256", help="training scale S in the paper's units: 256, 384 or a jitter range 256:512"
    ),
    epochs: int = typer.Option(None, help="epochs (default 10; the paper trained 74)"),
    seed: int = typer.Option(0, help="seed of init, batch order, augmentation and dropout"),
    init: str = typer.Option(
        None, help="glorot (default), kaiming, paper (normal, std --init-std) or preinit"
    ),
    init_std: float = typer.Option(
        None,
        help="std of --init paper: 0.01 (default, as commonly implemented) "
        "or 0.1 (the paper's '10^-2 variance' read literally)",
    ),
    preinit_from: str = typer.Option(
        None, help="with --init preinit: the stored run of net A to copy layers from"
    ),
    preinit_mapping: str = typer.Option("stage", help="which convs receive A's first four: stage or order"),
    init_from: str = typer.Option(
        None, help="fine-tune from this stored run's weights (e.g. S=384 from S=256)"
    ),
    lr: float = typer.Option(
        None, help="initial learning rate (default 0.01; 0.001 with --init-from, as the paper)"
    ),
    momentum: float = typer.Option(paper.MOMENTUM, help="SGD momentum"),
    weight_decay: float = typer.Option(paper.WEIGHT_DECAY, help="weight decay (L2)"),
    dropout: float = typer.Option(paper.DROPOUT, help="dropout of the first two FC layers"),
    fc_width: int = typer.Option(None, help="FC6/FC7 width (default 4096 x width)"),
    lrn_alpha: float = typer.Option(
        None, help="LRN's alpha in Krizhevsky's formula (default 1e-4; torch's layer gets alpha x 5)"
    ),
    input_range: str = typer.Option(
        None, help="pixel scale of the input: 0-255 (default, the paper's Caffe input) or 0-1 (/ 255)"
    ),
    batch: int = typer.Option(
        paper.BATCH_SIZE, help="global batch size (split over processes under torchrun)"
    ),
    max_device_batch: int = typer.Option(
        None, help="largest micro-batch on a device: larger batches accumulate gradients"
    ),
    patience: int = typer.Option(
        None, help="epochs without a better val top-1 error before lr / 10 (default 2)"
    ),
    max_lr_decreases: int = typer.Option(paper.MAX_LR_DECREASES, help="at most this many lr decreases"),
    stop: str = typer.Option(
        None,
        help="epochs (default: train --epochs) or schedule (the paper's rule: stop at the plateau after "
        "the last lr decrease, --epochs as a cap)",
    ),
    limit_train: int = typer.Option(None, help="a stratified subset of this many training images"),
    limit_val: int = typer.Option(None, help="a stratified subset of this many validation images"),
    val_split: float = typer.Option(
        None, help="hold out this fraction of train as val (for data without a val set)"
    ),
    data_root: Path = typer.Option(None, help="where the dataset lives (default: the usual places)"),
    download: bool = typer.Option(False, "--download", help="download the dataset if missing (torchvision)"),
    skip_bad_images: bool = typer.Option(
        False, "--skip-bad-images", help="skip unreadable images, counting them"
    ),
    workers: int = typer.Option(0, help="DataLoader workers for image folders"),
    results_dir: Path = typer.Option(Path("results"), help="the results store"),
    resume: bool = typer.Option(
        False, "--resume", help="continue this config's interrupted run from its checkpoint"
    ),
    force: bool = typer.Option(False, "--force", help="train again even if the run is stored"),
    device: str = typer.Option("auto", help="auto (cuda if available), cpu, cuda or cuda:N"),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the model"),
    deterministic: bool = typer.Option(
        False, "--deterministic", help="deterministic algorithms (exact resume)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the run record as JSON"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
) -> None:
    """Train a net of Table 1 with the paper's recipe (Section 3.1) and store the run."""
    import json

    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench import store
    from vggbench import train as training

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
        "deterministic": deterministic,
    }
    settings = training.TrainConfig(**{k: v for k, v in options.items() if v is not None})
    stored = not force and store.read_run(results_dir, settings.run_id) is not None
    with _train_progress(quiet) as progress:
        record = training.train(
            settings,
            results_dir=results_dir,
            device=device,
            resume=resume,
            force=force,
            quiet=quiet,
            progress=progress,
        )
    if as_json:
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


@contextlib.contextmanager
def progress_bars(quiet: bool = False):
    """A factory of rich progress bars on stderr (none when quiet or stderr is not a terminal):
    factory(label, total) -> advance(n)."""
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    disabled = quiet or not sys.stderr.isatty()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disabled,
        transient=True,
    ) as bars:

        def factory(label: str, total: int) -> Callable[[int], None]:
            task = bars.add_task(label, total=total)
            return lambda n: bars.advance(task, n)

        yield factory


class _train_progress:
    """A rich progress bar (epoch, loss, img/s, ETA) on stderr when it is a terminal and not quiet;
    `train` reports each `StepProgress` to `update`."""

    def __init__(self, quiet: bool) -> None:
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = None

    def __enter__(self):
        if self.bar is None:
            return None
        self.bar.__enter__()
        return self.update

    def update(self, report: StepProgress) -> None:
        total = report.epochs * report.steps
        completed = (report.epoch - 1) * report.steps + report.step
        info = f"loss {report.loss:.3f}  {report.images_per_s:.0f} img/s"
        description = f"epoch {report.epoch}/{report.epochs}"
        if self.task is None:
            self.task = self.bar.add_task(description, total=total, completed=completed, info=info)
        else:
            self.bar.update(self.task, description=description, total=total, completed=completed, info=info)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


@app.command()
def ablate(
    name: str = typer.Argument(
        ..., help="lrn, conv1x1, conv5x5, jitter, depth, init, or a spec file (.toml)"
    ),
    config: str = typer.Option(None, "--config", help="the net, where the ablation allows a choice"),
    preset: str = typer.Option(
        "quick", help="smoke (seconds), quick (CPU minutes), paper (GPUs, full recipe)"
    ),
    seeds: int = typer.Option(3, help="seeds per arm; 3 or more for a confidence interval"),
    shard: str = typer.Option(
        None, help="run part i of n of the arms x seeds, e.g. 1/4; records merge in the store"
    ),
    data: str = typer.Option(None, help=f"override the preset's dataset: {DATASETS_HELP}"),
    width: float = typer.Option(None, help="override the preset's width multiplier"),
    crop: int = typer.Option(None, help="override the preset's crop"),
    epochs: int = typer.Option(None, help="override the preset's epochs"),
    batch: int = typer.Option(None, help="override the preset's batch size"),
    lr: float = typer.Option(None, help="override the preset's learning rate"),
    limit_train: int = typer.Option(None, help="override the preset's training images"),
    limit_val: int = typer.Option(None, help="override the preset's validation images"),
    init: str = typer.Option(None, help="override the preset's init for arms that do not set one"),
    finetune_lr: float = typer.Option(
        None, help="lr of an arm that fine-tunes another arm's run (default: lr / 10, the paper's 1e-3)"
    ),
    finetune_epochs: int = typer.Option(
        None, help="epochs of an arm that fine-tunes another arm's run (default: the preset's epochs)"
    ),
    from_scratch: bool = typer.Option(
        False,
        "--from-scratch",
        help="train every arm from scratch for the same epochs (no fine-tuning chain: init_from ignored)",
    ),
    results_dir: Path = typer.Option(Path("results"), help="the results store"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    fmt: str = typer.Option("table", "--format", help="table, markdown or json"),
    quiet: bool = typer.Option(False, help="no progress output"),
) -> None:
    """Run one of the paper's ablations over seeds and judge the paper's claim."""
    import json

    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench.ablations.spec import load_spec, preset_budget
    from vggbench.ablations.sweep import parse_shard, run_ablation, sweep
    from vggbench.report import tables

    check_format(fmt, ("table", "markdown", "json"))
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
    }
    preset_budget(spec, preset, overrides)  # validates --preset before any work
    say = None if quiet else (lambda text: sys.stderr.write(text + "\n"))
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
    )
    if fmt == "json":
        echo(json.dumps(record.to_json(), indent=2, default=str))
        return
    echo(f"{record.title} ({record.paper.section})\npaper: {record.paper.claim}")
    echo(tables.ablation_budget_line(record))
    echo(_design_line(record.budget))
    echo(render(tables.ablation_arms_frame(record), fmt, "arms"))
    comparisons = tables.ablation_comparisons_frame(record)
    echo(render(comparisons, fmt, "comparisons (treatment - baseline top-1 error)"))
    for comparison in record.comparisons:
        if comparison.note:
            echo(f"note: {comparison.note}")
    for note in tables.ablation_notes(record):
        echo(f"note: {note}")
    if record.runs_found < record.runs_expected:
        echo(
            f"note: {record.runs_found} of {record.runs_expected} runs are in the store; "
            "run the other shards to complete the sweep"
        )


def _design_line(budget) -> str:
    """Whether the sweep chained its arms (the paper's fine-tuning) or trained each from scratch."""
    if budget.design == "chain":
        return (
            f"design: chain (an arm with init_from fine-tunes its source arm's run of the same seed "
            f"at lr {budget.finetune_lr:g} for {budget.finetune_epochs} epochs; --from-scratch for none)"
        )
    return f"design: {budget.design} (every arm from its own init, {budget.epochs} epochs)"


@app.command("report")
def report_command(
    results_dir: Path = typer.Option(Path("results"), help="the results store to read"),
    out: Path = typer.Option(
        None, help="where to write REPORT.md, tables/ and plots/ (default: the results store)"
    ),
    plots: bool = typer.Option(True, help="also draw PNG plots with matplotlib"),
) -> None:
    """Render every table the store can fill, beside the paper's numbers: Markdown, LaTeX, plots."""
    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench.report.write import write_report

    for path in write_report(results_dir, out or results_dir, plots=plots):
        sys.stderr.write(f"wrote {path}\n")


@app.command("eval")
def eval_command(
    runs: list[str] = typer.Argument(
        None, help="stored run ids (unique prefixes are enough); with --fuse, fused"
    ),
    run_option: list[str] = typer.Option(
        None, "--run", help="a stored run id (repeatable); same as the arguments"
    ),
    fuse: bool = typer.Option(
        False, "--fuse", help="fuse the named runs: average their softmax posteriors (Table 6)"
    ),
    method: list[str] = typer.Option(
        None, "--method", help="center, dense, multi-crop or multi-crop+dense; repeatable or a comma list"
    ),
    dense: bool = typer.Option(False, "--dense", help="same as --method dense"),
    multi_crop: bool = typer.Option(
        False, "--multi-crop", help="same as --method multi-crop (with --dense: also both)"
    ),
    center: bool = typer.Option(False, "--center", help="same as --method center"),
    scales: str = typer.Option(
        "single", "--scales", help="single, multi, jitter, or paper-unit scales such as 224,256,288"
    ),
    config: str = typer.Option(
        None, "--config", help="select stored runs of this net; or the net of --checkpoint"
    ),
    scale: str = typer.Option(
        None,
        "--scale",
        help="select stored runs of this train scale (256, 384, 256:512); "
        "or the train scale of --checkpoint/--weights (default 256)",
    ),
    checkpoint: str = typer.Option(
        None, "--checkpoint", help="a weights file: a state dict or a training checkpoint"
    ),
    weights: str = typer.Option(
        None,
        "--weights",
        help="torchvision:vgg11, vgg13, vgg16 or vgg19 (public ImageNet "
        "weights, downloaded on first use; ImageNet mean/std)",
    ),
    classes: int = typer.Option(None, "--classes", help="classes of --checkpoint (default: from its FC8)"),
    width: float = typer.Option(None, "--width", help="width multiplier of --checkpoint (default 1)"),
    crop: int = typer.Option(None, "--crop", help="crop of --checkpoint (default 224)"),
    norm: str = typer.Option(
        None,
        "--norm",
        help="train (the paper: subtract the training mean RGB) or imagenet "
        "(torchvision's mean/std); default imagenet for --weights, else train",
    ),
    data: str = typer.Option(
        None,
        "--data",
        help=f"evaluate on this dataset's validation split (default: the run's): {DATASETS_HELP}",
    ),
    data_root: str = typer.Option(None, "--data-root", help="where datasets live"),
    limit_val: int = typer.Option(
        None, "--limit-val", help="a stratified subset of this many validation images"
    ),
    max_images: int = typer.Option(
        None,
        "--max-images",
        help="a stratified, seeded subset of this many validation images (a quick look; "
        "the per-class counts are recorded)",
    ),
    batch: int = typer.Option(
        64, "--batch", help="net inputs per forward pass (an image's 50 crops stay together)"
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N"),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="the results store"),
    fmt: str = typer.Option("table", "--format", help="table, markdown, latex or json"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """The paper's test protocols (Section 3.2): dense, multi-crop, both, center; scales; fusion."""
    import json

    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench.evaluate.records import EvalOptions, run_eval
    from vggbench.report.tables import RESULT_HEADERS, results_frame

    check_format(fmt, ("table", "markdown", "latex", "json"))
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
        records = run_eval(options, factory, say=lambda text: sys.stderr.write(f"note: {text}\n"))
    if fmt == "json":
        echo(json.dumps([r.to_json() for r in records], indent=2, default=str))
        return
    frame = results_frame(records)
    echo(
        render(
            frame.rename(columns=RESULT_HEADERS),
            fmt,
            "Evaluation (errors in percent, MACs = multiply-accumulates per image)",
        )
    )


@app.command()
def bench(
    config: list[str] = typer.Option(
        ["A"], "--config", help="nets to measure (repeat or comma list), e.g. A,D"
    ),
    width: list[str] = typer.Option(["0.125"], "--width", help="width multipliers (repeat or comma list)"),
    crop: list[str] = typer.Option(
        ["32"], "--crop", help="crops in pixels, multiples of 32 (repeat or comma list)"
    ),
    batch: list[str] = typer.Option(
        ["64"], "--batch", help="batch sizes (repeat or comma list); halved on out-of-memory"
    ),
    steps: int = typer.Option(10, help="timed steps per measurement"),
    warmup: int = typer.Option(3, help="untimed warm-up steps before timing"),
    repeats: int = typer.Option(
        3, help="overhead: steps x repeats interleaved step pairs; evaluation: timed passes (median)"
    ),
    parts: list[str] = typer.Option(
        None, "--parts", help="train, infer, overhead, data, eval (default: all)"
    ),
    classes: int = typer.Option(10, help="number of classes of the measured nets"),
    eval_images: int = typer.Option(8, help="images per evaluation-cost measurement"),
    device: str = typer.Option("auto", help="auto (cuda if available), cpu or cuda"),
    channels_last: bool = typer.Option(
        False, "--channels-last", help="channels_last memory format (model and input)"
    ),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast"),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the model"),
    threads: int = typer.Option(None, help="torch CPU threads (default: torch's)"),
    fmt: str = typer.Option("table", "--format", help="table, json or markdown"),
    results_dir: Path = typer.Option(
        Path("results"), help="the results store (the record goes to <dir>/bench/)"
    ),
    save: bool = typer.Option(True, "--save/--no-save", help="store the record under <results-dir>/bench/"),
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
    ).check()
    points = bench_lib.cases(
        bench_lib.parse_list(config, str, "config"),
        bench_lib.parse_list(width, float, "width"),
        bench_lib.parse_list(crop, int, "crop"),
        bench_lib.parse_list(batch, int, "batch"),
        classes,
    )
    record = bench_lib.run_bench(
        points, options, parts, progress=lambda line: sys.stderr.write(f"bench: {line}\n")
    )
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
    except (typer.Abort, KeyboardInterrupt) as error:  # training's says where its checkpoint is
        sys.stderr.write(f"error: {str(error) or 'interrupted'}\n")
        return 130
    except VggbenchError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
