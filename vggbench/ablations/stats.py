"""Statistics over seeds (means, paired or Welch intervals, the seeds a comparison needs), verdicts
against the paper's claims, the fine-tuning chain behind an arm, and the typed ablation record
stored under <results>/ablations/."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vggbench.ablations.spec import EXPECTATIONS, AblationSpec, Budget, Comparison
from vggbench.errors import VggbenchError
from vggbench.store import (
    SCHEMA,
    EpochMetrics,
    InitInfo,
    RunRecord,
    _check_schema,
    _typed,
    load_record,
    record_paths,
    write_record,
)

CONFIDENCE = 0.95
POWER = 0.80  # of the test that `seeds_needed` sizes
ZERO_SPREAD = 1e-9  # points: a spread below this is float rounding of equal errors, i.e. zero
TOP5_MAX_CLASSES = 10  # top-5 error is shown only for datasets with more classes
SCHEDULE = "schedule"  # a run's stopped_by when the paper's stopping rule ended it: converged
STALLED = "stalled"  # the verdict of a comparison with an arm at chance
UNTESTABLE = "not testable"  # the verdict of a comparison the budget cannot test (testability.py)
AT_BUDGET = "at this budget"  # follows a verdict whose arms had not all converged
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
    paired one when both arms have the same seeds, Welch's otherwise. No interval (None) with fewer
    than 2 pairs, nor with zero variance (`zero_variance`: every paired delta equal, or every seed of
    each arm at the same error), where a t-interval would claim a certainty the seeds cannot give.
    `std` is the seed-to-seed std of one seed's difference: of the paired deltas, or
    sqrt(s_b^2 + s_t^2) for unpaired seeds; None with one seed.
    """

    top1: float
    ci95_low: float | None
    ci95_high: float | None
    paired: bool
    n: int
    std: float | None = None
    zero_variance: bool = False


def difference(baseline: dict[int, float], treatment: dict[int, float]) -> Difference:
    """`baseline` and `treatment` map seed -> top-1 error."""
    from scipy import stats as scipy_stats  # lazy: scipy.stats takes most of a second to import

    common = sorted(set(baseline) & set(treatment))
    paired = len(common) >= 2 and len(common) == len(baseline) == len(treatment)
    mean = statistics.fmean(treatment.values()) - statistics.fmean(baseline.values())
    if paired:
        deltas = [treatment[s] - baseline[s] for s in common]
        n, std = len(deltas), statistics.stdev(deltas)
        if std <= ZERO_SPREAD:
            return Difference(mean, None, None, True, n, 0.0, zero_variance=True)
        half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * std / math.sqrt(n)
        return Difference(mean, mean - half, mean + half, True, n, std)
    a, b = list(baseline.values()), list(treatment.values())
    n = min(len(a), len(b))
    if len(a) < 2 or len(b) < 2:
        return Difference(mean, None, None, False, n)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se <= ZERO_SPREAD:
        return Difference(mean, None, None, False, n, 0.0, zero_variance=True)
    std = math.sqrt(statistics.variance(a) + statistics.variance(b))
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) * se
    return Difference(mean, mean - half, mean + half, False, n, std)


def zero_variance_note(diff: Difference) -> str:
    """Why a zero-variance difference has no interval, with the difference itself."""
    if diff.paired:
        return f"zero variance: every seed differs by exactly {diff.top1:+.2f}"
    return f"zero variance: every seed of each arm has the same error (difference {diff.top1:+.2f})"


def verdict(diff: Difference, expect: str, margin: float = 1.0) -> str:
    """Our interval against the paper's claim about treatment - baseline error.

    lower: the treatment's error is lower (interval below 0: consistent; above 0: contradicts).
    no_better: the treatment does not help: contradicts only when its error is lower by more than
        `margin` (the whole interval below -margin); consistent when the interval's lower end is
        above -margin (any gain is within the margin).
    similar: the two are equal within `margin` points either way.
    Anything else, any single-seed comparison and any zero-variance one is inconclusive.
    """
    low, high = diff.ci95_low, diff.ci95_high
    if low is None or high is None or diff.zero_variance:
        return "inconclusive"
    if expect == "lower":
        return "consistent" if high < 0 else "contradicts" if low > 0 else "inconclusive"
    if expect == "no_better":
        return "contradicts" if high < -margin else "consistent" if low > -margin else "inconclusive"
    if expect == "similar":
        if -margin < low and high < margin:
            return "consistent"
        return "contradicts" if low > margin or high < -margin else "inconclusive"
    raise VggbenchError(f"unknown expectation {expect!r}; choose one of {', '.join(EXPECTATIONS)}")


#: Where the paper's difference falls against our interval (`paper_gap`), and how the report says it.
PAPER_GAP = {
    "inside": "consistent with the paper's size",
    "smaller": "excludes the paper's gap: ours is smaller",
    "larger": "excludes the paper's gap: ours is larger",
    "opposite": "excludes the paper's gap: ours has the opposite sign",
}


def paper_gap(diff: Difference, paper_top1: float | None) -> str | None:
    """Where the paper's treatment - baseline difference falls against our 95% interval: "inside"
    it; outside it "opposite" (our whole interval on the other side of 0), "smaller" (our interval
    between 0 and the paper's gap, or straddling 0) or "larger" (beyond the paper's gap). None where
    there is no paper difference or no interval. The sign verdict tests direction; this tests size."""
    low, high = diff.ci95_low, diff.ci95_high
    if paper_top1 is None or low is None or high is None or diff.zero_variance:
        return None
    if low <= paper_top1 <= high:
        return "inside"
    if (paper_top1 < 0 < low) or (paper_top1 > 0 > high):
        return "opposite"
    beyond = high < paper_top1 if paper_top1 < 0 else low > paper_top1
    return "larger" if beyond else "smaller"


def read_paper_gap(verdict: str, diff: Difference, paper_top1: float | None) -> str | None:
    """`paper_gap` where the comparison is read: never for a stalled or untestable one."""
    return None if verdict in (STALLED, UNTESTABLE) else paper_gap(diff, paper_top1)


def at_budget(judged: str, arms: list[ArmResult]) -> tuple[str, str | None]:
    """A verdict qualified by convergence: about the paper's claim when every seed of both arms
    ended by its stopping rule, else "... at this budget" with what had not converged."""
    unfinished = [arm for arm in arms if not arm.converged]
    if not unfinished or judged == STALLED:
        return judged, None
    reasons = "; ".join(arm.convergence_note() for arm in unfinished)
    return f"{judged} {AT_BUDGET}", f"not converged: {reasons}"


def top5_comparable(num_classes: int) -> bool:
    """Top-5 of a handful of classes is no test (of 10, it is half of them): it is comparable with
    ImageNet's only above TOP5_MAX_CLASSES classes."""
    return num_classes > TOP5_MAX_CLASSES


def power_target(expect: str, paper_top1: float | None, margin: float) -> float | None:
    """The difference a sample of seeds must be able to detect: for "lower", the paper's own
    difference (its size); for "no_better" and "similar", the comparison's margin, the smallest
    difference the claim says is not there (an equivalence-style target). None when the paper gives
    no difference for a "lower" comparison."""
    if expect == "lower":
        return abs(paper_top1) if paper_top1 else None  # a zero gap cannot be detected
    return margin


def seeds_needed(std: float, delta: float) -> int:
    """The smallest number of seeds n >= 2 for which a paired two-sided t-test at 95% has 80% power
    to detect a true difference `delta` when one seed's difference spreads with std `std`: the
    smallest n with n >= ((t_{0.975,n-1} + t_{0.80,n-1}) std / delta)^2. The right side falls as n
    grows, so counting up from the normal approximation's n (a lower bound) finds it."""
    from scipy import stats as scipy_stats  # lazy: scipy.stats takes most of a second to import

    def bound(dof: int | None) -> float:
        """((q_0.975 + q_0.80) std / delta)^2 with the t-distribution's quantiles, the normal's for None."""
        dist = scipy_stats.norm if dof is None else scipy_stats.t(dof)
        return float(((dist.ppf(0.5 + CONFIDENCE / 2) + dist.ppf(POWER)) * std / delta) ** 2)

    n = max(2, math.ceil(bound(None)))
    while n < bound(n - 1):
        n += 1
    return n


def equivalence_power(std: float, margin: float, n: int) -> float:
    """The power of `verdict`'s "similar" test over n paired seeds when the arms are truly equal:
    the chance that the 95% interval lies inside (-margin, +margin), i.e. two one-sided tests (TOST)
    at 2.5% each. With the mean ~ N(0, std^2 / n) and s^2 ~ std^2 chi2_{n-1} / (n-1) independent:
    E_V[2 Phi(a - t sqrt(V / (n-1))) - 1] over V ~ chi2_{n-1} where that is positive, with
    a = sqrt(n) margin / std and t = t_{0.975,n-1}; integrated numerically (exact, not a bound)."""
    from scipy import integrate  # lazy: scipy takes most of a second to import
    from scipy import stats as scipy_stats

    t = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1))
    a = math.sqrt(n) * margin / std
    top = (n - 1) * (a / t) ** 2  # beyond it the interval is wider than the margins allow

    def inside(v: float) -> float:
        return (2 * scipy_stats.norm.cdf(a - t * math.sqrt(v / (n - 1))) - 1) * scipy_stats.chi2.pdf(v, n - 1)

    return float(integrate.quad(inside, 0, top, limit=200)[0])


def equivalence_seeds_needed(std: float, margin: float) -> int:
    """The smallest n >= 2 at which `equivalence_power` reaches 80%. It grows with n, so the search
    starts at the normal approximation ((z_0.975 + z_0.90) std / margin)^2 and steps to the edge."""
    from scipy import stats as scipy_stats  # lazy: scipy.stats takes most of a second to import

    z = scipy_stats.norm.ppf
    n = max(2, math.floor(((z(0.5 + CONFIDENCE / 2) + z(0.5 + POWER / 2)) * std / margin) ** 2))
    if equivalence_power(std, margin, n) >= POWER:
        while n > 2 and equivalence_power(std, margin, n - 1) >= POWER:
            n -= 1
        return n
    while equivalence_power(std, margin, n) < POWER:
        n += 1
    return n


def seeds_for(diff: Difference, target: float | None, expect: str = "lower") -> tuple[int | None, str | None]:
    """The seeds that give the comparison's own test 80% power, for our observed spread and the
    target (`power_target`): "lower" detects the paper's gap and "no_better" rules out a gain of the
    margin, each a one-sided t-test sized by `seeds_needed`; "similar" shows equality within the
    margin, two one-sided tests (`equivalence_seeds_needed`). Or None and why it cannot be said."""
    if target is None:
        return None, "the paper gives no difference for this comparison to size a sample by"
    if diff.zero_variance:
        return None, "zero variance between seeds: no spread to size a sample by"
    if diff.std is None:
        return None, "one seed: no seed-to-seed spread yet; run --seeds 3 or more"
    if expect == "similar":
        return equivalence_seeds_needed(diff.std, target), None
    return seeds_needed(diff.std, target), None


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


def slope_text(points_per_epoch: float) -> str:
    """A slope to one decimal, or to two significant digits where one decimal would round it to 0.0
    and hide its sign (a slope of -0.025 is "0.025", not "0.0")."""
    if round(points_per_epoch, 1) != 0:
        return f"{points_per_epoch:.1f}"
    return f"{points_per_epoch:.2g}"


# --- The runs behind an arm -----------------------------------------------------------------------


def fine_tune_chain(run: RunRecord, lookup: Callable[[str], RunRecord | None]) -> list[RunRecord | str]:
    """The runs `run` was fine-tuned through (init_from, walked with `lookup`), the one trained from
    scratch first and `run` last; a source the store lacks stands as its id and ends the walk."""
    chain: list[RunRecord | str] = [run]
    while isinstance(chain[0], RunRecord) and chain[0].init_from:
        source = lookup(chain[0].init_from)
        chain.insert(0, source or chain[0].init_from)
    return chain


def chain_labels(chain: list[RunRecord | str]) -> list[str]:
    """Each link of a chain by its train scale: "S=256", "S=384", "jitter 256:512"; a run the store
    lacks by its id."""
    labels = []
    for link in chain:
        if isinstance(link, str):
            labels.append(f"run {link} (not in the store)")
        else:
            fixed = ":" not in link.train_scale
            labels.append(f"S={link.train_scale}" if fixed else f"jitter {link.train_scale}")
    return labels


def chain_epochs(chain: list[RunRecord | str]) -> int:
    """The epochs every run of a chain that the store holds trained (not their caps): the training
    behind its last run."""
    return sum(len(link.epochs) for link in chain if isinstance(link, RunRecord))


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
    num_classes: int  # of its runs' dataset
    input_range: str  # of its runs: "0-255" (the paper's) or "0-1", minus the mean RGB
    init: InitInfo  # of its first seed's run
    chain: list[str]  # the runs it was fine-tuned through (init_from), first to last: `chain_labels`
    total_epochs: int  # its own epochs plus those of the runs it was fine-tuned from
    curves: list[list[EpochMetrics]]  # each seed's epochs
    stalled_seeds: list[int]  # within CHANCE_POINTS of chance here, or training warned (`stalled_run`)
    paper_top1: float | None
    paper_top5: float | None
    stopped_by: list[str]  # per seed: "schedule" (the paper's rule completed), "epoch cap" or "stalled"
    val_slopes: list[float | None]  # per seed: the val error's slope over its last epochs, points/epoch
    epochs_run: list[int]  # per seed: the epochs of its own run

    @property
    def converged(self) -> bool:
        """Every seed ended by the paper's stopping rule, so the arm's numbers are of a trained net."""
        return all(reason == SCHEDULE for reason in self.stopped_by)

    def convergence_note(self) -> str:
        """Why the arm has not converged, e.g. "B stopped by the epoch cap (2 of 3 seeds), error still
        falling 3.1 points/epoch"."""
        unfinished = [i for i, reason in enumerate(self.stopped_by) if reason != SCHEDULE]
        reasons = sorted({self.stopped_by[i] for i in unfinished})
        text = f"{self.name} stopped by the {' / '.join(reasons)}"
        if len(unfinished) < len(self.stopped_by):
            text += f" ({len(unfinished)} of {len(self.stopped_by)} seeds)"
        slopes = [self.val_slopes[i] for i in unfinished if self.val_slopes[i] is not None]
        if slopes and statistics.fmean(slopes) < 0:
            text += f", error still falling {slope_text(-statistics.fmean(slopes))} points/epoch"
        return text.replace("stopped by the stalled", "stalled")


@dataclass
class ComparisonResult:
    """treatment - baseline under one evaluation: our difference, its verdict ("stalled" when an arm
    has a seed at chance), the paper's, and how many seeds would resolve it (`seeds_for`)."""

    baseline: str
    treatment: str
    evaluation: str
    expect: str
    margin: float
    difference: Difference
    verdict: str
    paper_top1: float | None  # the paper's treatment - baseline, where it published both
    note: str | None = None
    seeds_needed: int | None = None
    seeds_note: str | None = None  # why seeds_needed is None
    seeds_target: float | None = None  # the difference (points) seeds_needed is sized to detect
    converged: bool = True  # both arms' seeds all ended by the paper's stopping rule
    #: where the paper's difference falls against our interval (`paper_gap`: inside, smaller,
    #: larger, opposite); None without a paper difference or an interval, and in records before it
    paper_gap: str | None = None
    #: the paper's treatment - baseline that paper_gap placed: paper_top1, or where the paper did not
    #: measure this evaluation (it measured dense only) its gap under another of the spec's
    paper_gap_top1: float | None = None
    #: the test scales Q (paper units) of the baseline and of the treatment; [] in older records
    test_scales: list[list[int]] = field(default_factory=list)
    #: the spec says the arms' different Q are part of the treatment (else their Q are equal)
    test_scale_in_treatment: bool = False


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
    #: the preset and what the budget changes in it, e.g. "quick+epochs=10" (`sweep.budget_label`);
    #: None in records made before it, which `label` reads as the preset's own
    budget_label: str | None = None
    kind: str = "ablation"
    schema: int = SCHEMA

    @property
    def label(self) -> str:
        """The budget's name wherever the report shows it: the preset, or the preset and its changes."""
        return self.budget_label or self.preset

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
    return [AblationRecord.from_json(load_record(p), str(p)) for p in record_paths(root, ABLATIONS)]
