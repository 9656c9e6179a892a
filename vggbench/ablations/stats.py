"""Statistics over seeds (means, paired or Welch intervals), verdicts against the paper's claims,
and the typed ablation record stored under <results>/ablations/."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vggbench.ablations.spec import EXPECTATIONS, AblationSpec, Budget, Comparison
from vggbench.errors import VggbenchError
from vggbench.store import SCHEMA, EpochMetrics, InitInfo, _check_schema, _typed, read_records, write_record

CONFIDENCE = 0.95
ABLATIONS = "ablations"  # the store's folder of ablation records


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation over seeds (std is None with one seed)."""

    n: int
    mean: float
    std: float | None


def summarize(values: list[float]) -> Summary:
    if not values:
        raise VggbenchError("no runs to summarise")
    std = statistics.stdev(values) if len(values) > 1 else None
    return Summary(len(values), statistics.fmean(values), std)


@dataclass(frozen=True)
class Difference:
    """treatment - baseline top-1 error, percentage points, with a 95% t-interval over seeds.

    Seeds pair the arms (seed i of both arms sees the same data order), so the interval is the
    paired one when both arms have the same seeds, Welch's otherwise. None with fewer than 2 pairs.
    """

    top1: float
    ci95_low: float | None
    ci95_high: float | None
    paired: bool
    n: int


def difference(baseline: dict[int, float], treatment: dict[int, float]) -> Difference:
    """`baseline` and `treatment` map seed -> top-1 error."""
    from scipy import stats as scipy_stats  # lazy: scipy.stats takes most of a second to import

    common = sorted(set(baseline) & set(treatment))
    paired = len(common) >= 2 and len(common) == len(baseline) == len(treatment)
    mean = statistics.fmean(treatment.values()) - statistics.fmean(baseline.values())
    if paired:
        deltas = [treatment[s] - baseline[s] for s in common]
        n = len(deltas)
        half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * statistics.stdev(deltas) / math.sqrt(n)
        return Difference(mean, mean - half, mean + half, True, n)
    a, b = list(baseline.values()), list(treatment.values())
    if len(a) < 2 or len(b) < 2:
        return Difference(mean, None, None, False, min(len(a), len(b)))
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Difference(mean, mean, mean, False, min(len(a), len(b)))
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) * se
    return Difference(mean, mean - half, mean + half, False, min(len(a), len(b)))


def verdict(diff: Difference, expect: str, margin: float = 1.0) -> str:
    """Our interval against the paper's claim about treatment - baseline error.

    lower: the treatment's error is lower (interval below 0: consistent; above 0: contradicts).
    no_better: the treatment does not help (interval wholly below 0: contradicts; any gain within
        `margin` points: consistent).
    similar: the two are equal within `margin` points either way.
    Anything else, and any single-seed comparison, is inconclusive at this budget.
    """
    low, high = diff.ci95_low, diff.ci95_high
    if low is None or high is None:
        return "inconclusive"
    if expect == "lower":
        return "consistent" if high < 0 else "contradicts" if low > 0 else "inconclusive"
    if expect == "no_better":
        return "contradicts" if high < 0 else "consistent" if low > -margin else "inconclusive"
    if expect == "similar":
        if -margin < low and high < margin:
            return "consistent"
        return "contradicts" if low > margin or high < -margin else "inconclusive"
    raise VggbenchError(f"unknown expectation {expect!r}; choose one of {', '.join(EXPECTATIONS)}")


def paper_difference(spec: AblationSpec, comparison: Comparison) -> float | None:
    """The paper's treatment - baseline top-1 error for this comparison, where it published both."""
    if spec.paper_top1_gap is not None:
        return -spec.paper_top1_gap if comparison.expect == "lower" else spec.paper_top1_gap
    protocol = spec.evaluation(comparison.evaluation)
    numbers = []
    for name in (comparison.baseline, comparison.treatment):
        row = spec.arm(name).paper_result(protocol)
        if row is None or row.top1 is None:
            return None
        numbers.append(row.top1)
    return round(numbers[1] - numbers[0], 2)


# --- The ablation record -----------------------------------------------------------------------


@dataclass
class ArmResult:
    """One arm under one evaluation: its errors over seeds (percent) beside the paper's."""

    name: str
    net: str
    scale: str  # train scale, paper units
    evaluation: str  # the spec's evaluation name
    method: str
    scales: str
    runs: list[str]  # one run id per seed, in seed order
    seeds: list[int]
    top1_mean: float
    top1_std: float | None
    top5_mean: float
    top5_std: float | None
    macs_per_image: float
    init: InitInfo  # of its first seed's run
    curves: list[list[EpochMetrics]]  # each seed's epochs
    stalled_seeds: list[int]  # runs whose validation error stayed at chance
    paper_top1: float | None
    paper_top5: float | None


@dataclass
class ComparisonResult:
    """treatment - baseline under one evaluation: our difference, its verdict, the paper's."""

    baseline: str
    treatment: str
    evaluation: str
    expect: str
    margin: float
    difference: Difference
    verdict: str
    paper_top1: float | None  # the paper's treatment - baseline, where it published both
    note: str | None = None


@dataclass
class PaperClaim:
    """The claim under test, where the paper makes it, and its number for the first comparison."""

    claim: str
    section: str
    top1_difference: float | None


@dataclass
class Cost:
    """What the sweep's stored runs and evaluations took, and where they ran."""

    train_s: float
    eval_s: float
    machines: list[str]


@dataclass
class AblationRecord:
    """One ablation at one budget and number of seeds (<results>/ablations/<id>.json), analysed
    from every run and evaluation of its sweep found in the store."""

    id: str
    ablation: str  # the spec's name
    title: str
    net: str  # the chosen net (--config)
    preset: str
    budget: Budget
    seeds: int
    arms: list[ArmResult]
    comparisons: list[ComparisonResult]
    difference: Difference | None  # the first comparison's: the headline
    verdict: str  # the first comparison's, "incomplete" before it has runs
    paper: PaperClaim
    runs_found: int
    runs_expected: int
    cost: Cost
    kind: str = "ablation"
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> AblationRecord:
        _check_schema(data, where)
        record = _typed(cls, data, where)
        record.budget = _typed(Budget, record.budget, where)
        record.arms = [_arm_result(arm, where) for arm in record.arms]
        record.comparisons = [_comparison_result(c, where) for c in record.comparisons]
        record.difference = (
            None if record.difference is None else _typed(Difference, record.difference, where)
        )
        record.paper = _typed(PaperClaim, record.paper, where)
        record.cost = _typed(Cost, record.cost, where)
        return record


def _arm_result(data: Any, where: str) -> ArmResult:
    arm = _typed(ArmResult, data, where)
    arm.init = _typed(InitInfo, arm.init, where)
    arm.curves = [[_typed(EpochMetrics, epoch, where) for epoch in curve] for curve in arm.curves]
    return arm


def _comparison_result(data: Any, where: str) -> ComparisonResult:
    comparison = _typed(ComparisonResult, data, where)
    comparison.difference = _typed(Difference, comparison.difference, where)
    return comparison


def write_ablation(root: Path, record: AblationRecord) -> Path:
    return write_record(root, ABLATIONS, record.id, record.to_json())


def read_ablations(root: Path) -> list[AblationRecord]:
    """Every stored ablation record, oldest file first."""
    folder = f"in {Path(root) / ABLATIONS}"
    return [AblationRecord.from_json(data, folder) for data in read_records(root, ABLATIONS)]
