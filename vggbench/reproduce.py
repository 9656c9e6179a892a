"""Does one store reproduce another? Its runs set beside the reference's runs of the same ids.

A run id fixes everything that defines the result except the machine's arithmetic: the torch
thread count and the CPU change float rounding, so a rerun of the same id can drift. The check
says whether every shared run is identical (each epoch's validation errors equal), and otherwise
the largest drift of the final error beside the seed-to-seed spread of that run's recipe in the
reference, which says whether the drift matters.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from vggbench.errors import VggbenchError
from vggbench.store import RunRecord, read_runs


@dataclass(frozen=True)
class RunDrift:
    """One run in both stores: its final val top-1 error (%) in each, and the spread over seeds."""

    id: str
    net: str
    ours: float
    theirs: float
    identical: bool  # every epoch's val top-1 and top-5 errors equal
    #: sample std (points) of the final error over the reference's seeds of this run's recipe;
    #: None where the reference holds fewer than two seeds of it
    seed_spread: float | None

    @property
    def difference(self) -> float:
        return self.ours - self.theirs


@dataclass(frozen=True)
class Reproduction:
    """The shared runs of a store and a reference, and how many of the store's runs are not shared."""

    store: Path
    reference: Path
    runs: list[RunDrift]
    unshared: int

    @property
    def identical(self) -> bool:
        return bool(self.runs) and all(r.identical for r in self.runs)

    def largest(self) -> RunDrift:
        return max(self.runs, key=lambda r: abs(r.difference))


def _curve(run: RunRecord) -> list[tuple[float, float]]:
    return [(e.val_top1_err, e.val_top5_err) for e in run.epochs]


def _seed_spreads(runs: list[RunRecord]) -> dict[str, float | None]:
    """Each run's recipe's spread over seeds: the sample std of the final error, by run id."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(repr(sorted(run.recipe_key().items())), []).append(run)
    spreads = {}
    for group in groups.values():
        errors = [r.top1_err for r in group]
        spread = statistics.stdev(errors) if len(errors) >= 2 else None
        spreads.update({r.id: spread for r in group})
    return spreads


def compare_stores(store: Path, reference: Path) -> Reproduction:
    """The runs the store shares with the reference, by id, each with its drift and spread."""
    ours = {r.id: r for r in read_runs(Path(store))}
    if not ours:
        raise VggbenchError(f"no runs in {Path(store) / 'runs'}; train some, or name another --results-dir")
    theirs_list = read_runs(Path(reference))
    if not theirs_list:
        raise VggbenchError(
            f"no runs in {Path(reference) / 'runs'}; name the reference store that holds them"
        )
    theirs = {r.id: r for r in theirs_list}
    spreads = _seed_spreads(theirs_list)
    drifts = [
        RunDrift(
            id=run_id,
            net=run.net,
            ours=run.top1_err,
            theirs=theirs[run_id].top1_err,
            identical=_curve(run) == _curve(theirs[run_id]),
            seed_spread=spreads[run_id],
        )
        for run_id, run in sorted(ours.items())
        if run_id in theirs
    ]
    return Reproduction(Path(store), Path(reference), drifts, len(ours) - len(drifts))


def reproduction_line(result: Reproduction) -> str:
    """One line: identical, or the largest drift and whether it lies within the seed-to-seed spread."""
    shared = f"{len(result.runs)} of {len(result.runs) + result.unshared} runs in {result.store}"
    if not result.runs:
        return f"{shared} are in {result.reference}: nothing to compare (other ids: another budget or data)"
    head = f"{shared} are in {result.reference}"
    if result.identical:
        return f"{head}: identical (every epoch's val errors equal)"
    worst = result.largest()
    changed = sum(not r.identical for r in result.runs)
    where = (
        f"largest difference {worst.difference:+.2f} points of final val top-1 error ({worst.net} {worst.id})"
    )
    if worst.seed_spread is None:
        verdict = "no seed-to-seed spread to judge it by (one seed of its recipe in the reference)"
    else:
        inside = "within" if abs(worst.difference) <= worst.seed_spread else "outside"
        verdict = f"{inside} the seed-to-seed spread (std {worst.seed_spread:.2f} points)"
    return f"{head}: {changed} differ{'s' if changed == 1 else ''}, {where}, {verdict}"
