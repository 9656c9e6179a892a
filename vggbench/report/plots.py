"""The report's figures, one set per ablation record: training curves per arm, error vs depth beside
the paper's, error vs evaluation cost. Each figure is computed as data first (what a test checks),
then drawn from that data only, titled with its dataset and budget, and saved as PNG (200 dpi) and
PDF; its caption says what the lines, bands and bars are."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from vggbench.ablations.stats import AblationRecord, ArmResult  # noqa: E402
from vggbench.architectures import get_architecture  # noqa: E402
from vggbench.store import atomic_write  # noqa: E402

#: Okabe and Ito's colour-blind-safe palette (yellow last: it is faint on white).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
DPI = 200
FILE_TYPES = ("png", "pdf")
MIN_DEPTHS = 3  # distinct depths among a record's nets for an error-vs-depth figure
PAPER_DEPTH_LABEL = "paper, Table 3 (ImageNet, dense)"


@dataclass(frozen=True)
class Figure:
    """A figure of the report: its files (PNG first), its title and caption, and the data it drew."""

    name: str
    title: str
    caption: str
    data: list
    paths: list[Path]
    y_limits: list[tuple[float, float]]  # of each panel, as drawn: never below 0% error


# --- Training curves ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveBand:
    """One arm's val top-1 error per epoch over its seeds that did not stall: the mean of the seeds
    that trained that epoch, and their min and max (the band); `seeds` counts them per epoch."""

    arm: str
    epochs: list[int]
    mean: list[float]
    low: list[float]
    high: list[float]
    seeds: list[int]


@dataclass(frozen=True)
class StalledCurve:
    """A seed that stalled (`ArmResult.stalled_seeds`), drawn on its own and named, not averaged."""

    arm: str
    seed: int
    epochs: list[int]
    errors: list[float]


def _arms_once(record: AblationRecord) -> dict[str, list[ArmResult]]:
    """The record's arms by name: one ArmResult per evaluation, with the same runs and curves."""
    arms: dict[str, list[ArmResult]] = {}
    for arm in record.arms:
        arms.setdefault(arm.name, []).append(arm)
    return arms


def _source(record: AblationRecord, arm: ArmResult) -> ArmResult | None:
    """The arm `arm` was fine-tuned from: the record's arm of the same net whose chain is `arm`'s
    without its last link (None for an arm trained from scratch, or a source the record lacks)."""
    if len(arm.chain) < 2:
        return None
    return next((a for a in record.arms if a.net == arm.net and a.chain == arm.chain[:-1]), None)


def chain_offset(record: AblationRecord, arm: ArmResult, seed: int) -> int:
    """The epochs a seed of `arm` trained before its own run: those of its source arm's run of the
    same seed and of that run's chain (0 from scratch). A source the record lacks counts as the
    chain's epochs of the arm's first seed (`ArmResult.total_epochs`)."""
    source = _source(record, arm)
    if source is None or seed not in source.seeds:
        return arm.total_epochs - len(arm.curves[0]) if len(arm.chain) > 1 and arm.curves else 0
    return chain_offset(record, source, seed) + len(source.curves[source.seeds.index(seed)])


def _chain_points(record: AblationRecord, arm: ArmResult, seed: int) -> list[tuple[int, float]]:
    """A seed's val top-1 error on the epochs of its chain: its own epochs after `chain_offset`."""
    offset = chain_offset(record, arm, seed)
    curve = arm.curves[arm.seeds.index(seed)]
    return [(offset + e.epoch, e.val_top1_err) for e in curve if not math.isnan(e.val_top1_err)]


def _lead_in_points(record: AblationRecord, arm: ArmResult, seed: int) -> list[tuple[int, float]]:
    """A seed's chain before its own run: its source's points and, before them, the source's lead-in."""
    source = _source(record, arm)
    if source is None or seed not in source.seeds:
        return []
    return _lead_in_points(record, source, seed) + _chain_points(record, source, seed)


def _band(arm: str, by_epoch: dict[int, list[float]]) -> CurveBand:
    epochs = sorted(by_epoch)
    return CurveBand(
        arm=arm,
        epochs=epochs,
        mean=[statistics.fmean(by_epoch[e]) for e in epochs],
        low=[min(by_epoch[e]) for e in epochs],
        high=[max(by_epoch[e]) for e in epochs],
        seeds=[len(by_epoch[e]) for e in epochs],
    )


def _stalled_seeds(results: list[ArmResult]) -> set[int]:
    return {seed for result in results for seed in result.stalled_seeds}


def curve_data(record: AblationRecord) -> tuple[list[CurveBand], list[StalledCurve]]:
    """Each arm's band over its learning seeds, and every stalled seed's own curve (a seed stalled in
    any evaluation of the arm), on the epochs of its chain: a fine-tuned arm's after those of the
    runs it was fine-tuned from (`chain_offset`). Seeds stop at different epochs under the paper's
    stopping rule, so the later epochs average the seeds that were still training."""
    bands, stalled = [], []
    for name, results in _arms_once(record).items():
        arm = results[0]
        by_epoch: dict[int, list[float]] = {}
        for seed in arm.seeds:
            points = _chain_points(record, arm, seed)
            if seed in _stalled_seeds(results):
                stalled.append(StalledCurve(name, seed, [p[0] for p in points], [p[1] for p in points]))
                continue
            for epoch, error in points:
                by_epoch.setdefault(epoch, []).append(error)
        if by_epoch:
            bands.append(_band(name, by_epoch))
    return bands, stalled


def lead_in_data(record: AblationRecord) -> list[CurveBand]:
    """Each fine-tuned arm's chain before it, over its learning seeds: the val top-1 error of the runs
    it was fine-tuned from, on the epochs of the chain (drawn faded before the arm's own epochs)."""
    lead_ins = []
    for name, results in _arms_once(record).items():
        arm = results[0]
        by_epoch: dict[int, list[float]] = {}
        for seed in set(arm.seeds) - _stalled_seeds(results):
            for epoch, error in _lead_in_points(record, arm, seed):
                by_epoch.setdefault(epoch, []).append(error)
        if by_epoch:
            lead_ins.append(_band(name, by_epoch))
    return lead_ins


def training_curves(record: AblationRecord, out_dir: Path) -> Figure:
    """Val top-1 error per epoch of the chain: a mean line and a min-max band per arm, stalled seeds
    dashed, a fine-tuned arm's chain before it faded."""
    bands, stalled = curve_data(record)
    lead_ins = lead_in_data(record)
    colours = _colours(list(_arms_once(record)))
    figure, axis = plt.subplots(figsize=(6, 4))
    for index, lead_in in enumerate(lead_ins):
        label = "faded: the runs each arm was fine-tuned from" if index == 0 else None
        axis.plot(
            lead_in.epochs, lead_in.mean, color=colours[lead_in.arm], alpha=0.35, linewidth=1, label=label
        )
    for band in bands:
        colour = colours[band.arm]
        axis.fill_between(band.epochs, band.low, band.high, color=colour, alpha=0.25, linewidth=0)
        axis.plot(band.epochs, band.mean, color=colour, label=f"{band.arm} (mean of {max(band.seeds)} seeds)")
    for curve in stalled:
        axis.plot(
            curve.epochs,
            curve.errors,
            color=colours[curve.arm],
            linestyle="--",
            linewidth=1,
            label=f"{curve.arm} seed {curve.seed} (stalled)",
        )
    title = f"Training curves: {_subject(record)}"
    xlabel = "epoch of the fine-tuning chain" if lead_ins else "epoch"
    axis.set(xlabel=xlabel, ylabel="val top-1 error (%, center crop)", title=title)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend(fontsize=7)
    caption = (
        "Validation top-1 error after each epoch (center crop at the single test scale). Line: the mean "
        "over an arm's seeds that trained that epoch (seeds stop at different epochs under the stopping "
        "rule, so the last epochs may average fewer); band: the minimum to maximum over those seeds."
    )
    if lead_ins:
        caption += (
            " A fine-tuned arm is drawn on the epochs of its chain: each seed's epochs follow those of the "
            "runs it was fine-tuned from, whose mean error is drawn faded in the arm's colour."
        )
    if stalled:
        names = ", ".join(f"{c.arm} seed {c.seed}" for c in stalled)
        caption += f" Dashed, left out of the mean and band: seeds that stalled at chance ({names})."
    data = [*bands, *stalled, *lead_ins]
    return _save(figure, out_dir, _stem("curves", record), title, caption, data)


# --- Error vs depth -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DepthSeries:
    """Top-1 error against weight layers: ours under one evaluation (mean over seeds, `spread` the
    sample std, None with one seed), or the paper's Table 3 (`spread` None)."""

    label: str
    nets: list[str]
    depths: list[int]
    errors: list[float]
    spread: list[float | None]


def _depth(net: str) -> int:
    return get_architecture(net).weight_layers


def depth_data(record: AblationRecord) -> tuple[list[DepthSeries], DepthSeries | None]:
    """Ours, one series per evaluation, and the paper's Table 3 errors of the same nets (None when
    the spec names none), each sorted by depth."""
    ours = []
    for evaluation in dict.fromkeys(arm.evaluation for arm in record.arms):
        arms = sorted((a for a in record.arms if a.evaluation == evaluation), key=lambda a: _depth(a.net))
        ours.append(
            DepthSeries(
                label=f"ours, {evaluation}",
                nets=[a.net for a in arms],
                depths=[_depth(a.net) for a in arms],
                errors=[a.top1_mean for a in arms],
                spread=[a.top1_std for a in arms],
            )
        )
    published = {a.net: a.paper_top1 for a in record.arms if a.paper_top1 is not None}
    if not published:
        return ours, None
    nets = sorted(published, key=_depth)
    paper = DepthSeries(
        PAPER_DEPTH_LABEL, nets, [_depth(n) for n in nets], [published[n] for n in nets], [None] * len(nets)
    )
    return ours, paper


def _extent(series: list[DepthSeries]) -> tuple[float, float]:
    """The lowest and highest error of some series, with their bars."""
    low = min(e - (d or 0) for s in series for e, d in zip(s.errors, s.spread))
    high = max(e + (d or 0) for s in series for e, d in zip(s.errors, s.spread))
    return low, high


def common_span(panels: list[list[DepthSeries]]) -> float:
    """The y span every panel shares, so that a point of error is as tall in each: the widest range
    of errors (with their bars) of any panel, plus a margin."""
    widths = [high - low for low, high in map(_extent, panels)]
    return 1.2 * max(max(widths), 1.0)


def panel_limits(panel: list[DepthSeries], span: float) -> tuple[float, float]:
    """A panel's y limits: `span` points centred on its errors, moved up to start at 0% when they
    would reach below it."""
    low = max(0.0, statistics.fmean(_extent(panel)) - span / 2)
    return low, low + span


def error_vs_depth(record: AblationRecord, out_dir: Path) -> Figure:
    """Ours (left) and the paper's (right) top-1 error against depth, on y axes of the same span."""
    ours, paper = depth_data(record)
    panels = [ours] + ([[paper]] if paper else [])
    span = common_span(panels)
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), sharex=True, squeeze=False)
    for axis, panel in zip(axes[0], panels):
        for index, s in enumerate(panel):
            colour = "#555555" if s.label == PAPER_DEPTH_LABEL else OKABE_ITO[index % len(OKABE_ITO)]
            bars = [d or 0 for d in s.spread]
            axis.errorbar(s.depths, s.errors, yerr=bars, marker="o", capsize=3, color=colour, label=s.label)
        for net, x, y in zip(panel[0].nets, panel[0].depths, panel[0].errors):  # once per panel
            axis.annotate(net, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        axis.set_ylim(*panel_limits(panel, span))
        axis.set(xlabel="weight layers", ylabel="top-1 error (%)")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend(fontsize=7)
    axes[0][0].set_title(f"ours: {record.budget.data}, {record.label}", fontsize=9)
    if paper:
        axes[0][1].set_title("paper: ImageNet, full scale", fontsize=9)
    title = f"Error vs depth: {_subject(record)}"
    figure.suptitle(title, fontsize=10)
    caption = (
        f"Top-1 error against weight layers. Left: ours, the mean over {record.seeds} seeds per "
        "evaluation, bars ±1 sample standard deviation over seeds (none with one seed). "
        + (
            "Right: the paper's Table 3 (ImageNet, dense, single scale). Both y axes span the same "
            f"{span:.1f} points, so slopes compare; the levels do not (other data, scaled-down nets)."
            if paper
            else "The paper publishes no errors for these arms."
        )
    )
    data = [*ours, *([paper] if paper else [])]
    return _save(figure, out_dir, _stem("error-vs-depth", record), title, caption, data)


# --- Error vs cost --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostPoint:
    """One arm under one evaluation: its MACs per image (every forward pass of the protocol) and its
    top-1 error, mean over seeds, `std` the sample std (None with one seed)."""

    arm: str
    evaluation: str
    macs: float
    error: float
    std: float | None


def cost_data(record: AblationRecord) -> list[CostPoint]:
    return [
        CostPoint(arm.name, arm.evaluation, arm.macs_per_image, arm.top1_mean, arm.top1_std)
        for arm in record.arms
    ]


#: A cost figure needs costs at least this many times apart: closer ones fill its axis with a
#: difference the table states as well (conv5x5: 3.8 and 4.1 million MACs).
MIN_COST_RATIO = 1.1
MARKERS = "os^Dv<>P*Xh"


def says_something(points: list[CostPoint]) -> bool:
    """Whether an error-vs-cost figure shows more than the table: costs `MIN_COST_RATIO` apart or more."""
    macs = [p.macs for p in points]
    return bool(macs) and max(macs) >= MIN_COST_RATIO * min(macs)


def error_vs_cost(record: AblationRecord, out_dir: Path) -> Figure:
    """Every arm x evaluation as a point: top-1 error against MACs per image (drawn in millions),
    colour for the evaluation and marker for the arm, named in the legend (no labels to collide)."""
    points = cost_data(record)
    evaluations = list(dict.fromkeys(p.evaluation for p in points))
    arms = list(dict.fromkeys(p.arm for p in points))
    figure, axis = plt.subplots(figsize=(6, 4))
    for p in points:
        axis.errorbar(
            p.macs / 1e6,
            p.error,
            yerr=p.std or 0,
            fmt=MARKERS[arms.index(p.arm) % len(MARKERS)],
            capsize=3,
            color=OKABE_ITO[evaluations.index(p.evaluation) % len(OKABE_ITO)],
        )
    macs = [p.macs for p in points]
    if max(macs) > 10 * min(macs):
        axis.set_xscale("log")
    title = f"Error vs cost: {_subject(record)}"
    axis.set(xlabel="million MACs per image (all forward passes)", ylabel="top-1 error (%)", title=title)
    colour_keys = [
        Line2D([], [], color=OKABE_ITO[i % len(OKABE_ITO)], marker="s", linestyle="", label=evaluation)
        for i, evaluation in enumerate(evaluations)
    ]
    marker_keys = [
        Line2D([], [], color="#555555", marker=MARKERS[i % len(MARKERS)], linestyle="", label=arm)
        for i, arm in enumerate(arms)
    ]
    axis.add_artist(axis.legend(handles=colour_keys, fontsize=7, title="evaluation", title_fontsize=7))
    axis.legend(handles=marker_keys, fontsize=7, title="arm", title_fontsize=7, loc="lower right")
    caption = (
        "Each point is an arm (marker) under one evaluation (colour): its top-1 error, the mean over "
        f"{record.seeds} seeds with bars ±1 sample standard deviation, against the multiply-accumulates "
        "one image costs under that evaluation's protocol, every forward pass counted."
    )
    return _save(figure, out_dir, _stem("error-vs-cost", record), title, caption, points)


# --- Files ----------------------------------------------------------------------------------------


def _colours(arms: list[str]) -> dict[str, str]:
    """One colour per arm, the same in every figure of a record."""
    return {arm: OKABE_ITO[index % len(OKABE_ITO)] for index, arm in enumerate(arms)}


def _subject(record: AblationRecord) -> str:
    """What a title names: the ablation, its net, the dataset and the budget."""
    return f"{record.ablation} ({record.net}), {record.budget.data}, {record.label}"


def _stem(kind: str, record: AblationRecord) -> str:
    """A file name per figure and budget, e.g. curves-lrn-A-quick+epochs=10 (a data path's slashes
    and colons become dashes)."""
    text = f"{kind}-{record.ablation}-{record.net}-{record.label}"
    return "".join(c if c.isalnum() or c in "._=+-" else "-" for c in text)


def _save(figure, out_dir: Path, stem: str, title: str, caption: str, data: list) -> Figure:
    """Both files of a figure, every panel's y axis starting at 0% error or above."""
    for axis in figure.axes:
        low, high = axis.get_ylim()
        axis.set_ylim(max(low, 0.0), high)
    figure.tight_layout()
    paths = [out_dir / f"{stem}.{kind}" for kind in FILE_TYPES]
    for path, kind in zip(paths, FILE_TYPES):  # atomic: a failed write leaves the old figure whole
        atomic_write(path, lambda handle, kind=kind: figure.savefig(handle, format=kind, dpi=DPI))
    limits = [tuple(map(float, axis.get_ylim())) for axis in figure.axes]
    plt.close(figure)
    return Figure(stem, title, caption, data, paths, limits)


def ablation_figures(record: AblationRecord, out_dir: Path) -> list[Figure]:
    """Every figure a record can fill: its training curves, error vs depth where its nets span
    MIN_DEPTHS depths or more, and error vs cost where it says something (`says_something`)."""
    if not record.arms:
        return []
    figures = []
    if any(arm.curves for arm in record.arms):
        figures.append(training_curves(record, out_dir))
    if len({_depth(arm.net) for arm in record.arms}) >= MIN_DEPTHS:
        figures.append(error_vs_depth(record, out_dir))
    if says_something(cost_data(record)):
        figures.append(error_vs_cost(record, out_dir))
    return figures
