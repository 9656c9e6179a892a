"""The report's plots (matplotlib, PNG): error vs depth, training curves per arm, error vs cost."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from vggbench.ablations.stats import AblationRecord  # noqa: E402
from vggbench.architectures import get_architecture  # noqa: E402
from vggbench.store import EvalRecord  # noqa: E402


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _depth(net: str) -> int:
    return get_architecture(net).weight_layers


def error_vs_depth(record: AblationRecord, path: Path) -> Path:
    """Top-1 error (mean ± std over seeds) against weight layers, one line per evaluation, and the
    paper's (Table 3, dense) on its own axis."""
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    lines = []
    evaluations = list(dict.fromkeys(arm.evaluation for arm in record.arms))
    for index, evaluation in enumerate(evaluations):
        arms = sorted((a for a in record.arms if a.evaluation == evaluation), key=lambda a: _depth(a.net))
        lines.append(
            axis.errorbar(
                [_depth(a.net) for a in arms],
                [a.top1_mean for a in arms],
                yerr=[a.top1_std or 0 for a in arms],
                marker="o",
                capsize=3,
                color=f"C{index}",
                label=f"ours, {evaluation} ({record.budget.data})",
            )
        )
    paper_points = sorted({(_depth(a.net), a.paper_top1) for a in record.arms if a.paper_top1 is not None})
    if paper_points:
        twin = axis.twinx()
        lines += twin.plot(*zip(*paper_points), "s--", color="grey", label="paper (ImageNet, dense)")
        twin.set_ylabel("paper top-1 error (%)")
    axis.set(xlabel="weight layers", ylabel="our top-1 error (%)", title="Error vs depth")
    axis.legend(handles=lines, loc="upper center", fontsize=7)
    return _save(figure, path)


def training_curves(record: AblationRecord, path: Path) -> Path:
    """Validation top-1 error per epoch, one line per arm and seed."""
    figure, axis = plt.subplots(figsize=(5, 3.5))
    seen = set()
    for index, arm in enumerate(record.arms):
        if arm.name in seen:
            continue
        seen.add(arm.name)
        for number, curve in enumerate(arm.curves):
            axis.plot(
                [e.epoch for e in curve],
                [e.val_top1_err for e in curve],
                color=f"C{index}",
                alpha=0.7,
                label=arm.name if number == 0 else None,
            )
    axis.set(
        xlabel="epoch",
        ylabel="val top-1 error (%, center crop)",
        title=f"Training curves: {record.ablation}",
    )
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend()
    return _save(figure, path)


def error_vs_cost(evals: Sequence[EvalRecord], path: Path) -> Path:
    """Top-1 error against MACs per image for each test protocol."""
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for index, method in enumerate(sorted({e.method for e in evals})):
        points = [(e.macs_per_image, e.top1_err) for e in evals if e.method == method]
        axis.scatter(*zip(*points), color=f"C{index}", label=method)
    axis.set(
        xscale="log", xlabel="MACs per image", ylabel="top-1 error (%)", title="Error vs evaluation cost"
    )
    axis.legend()
    return _save(figure, path)


def write_plots(
    ablations: Sequence[AblationRecord], evals: Sequence[EvalRecord], out_dir: Path
) -> list[Path]:
    """Every plot the records can fill, under `out_dir`."""
    paths = []
    for record in ablations:
        if not record.arms:
            continue
        stem = f"{record.ablation}-{record.net}-{record.preset}"
        if record.ablation == "depth":
            paths.append(error_vs_depth(record, out_dir / f"error-vs-depth-{stem}.png"))
        if any(arm.curves for arm in record.arms):
            paths.append(training_curves(record, out_dir / f"curves-{stem}.png"))
    if evals:
        paths.append(error_vs_cost(evals, out_dir / "error-vs-cost.png"))
    return paths
