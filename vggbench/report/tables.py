"""Every table of the report as a DataFrame, our numbers beside the paper's: Table 2 and the
counting tables, the `eval` results and Tables 3-6, and the ablation tables."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import pandas as pd

from vggbench import paper
from vggbench.ablations.stats import (
    AT_BUDGET,
    CONFIDENCE,
    PAPER_GAP,
    POWER,
    STALLED,
    UNTESTABLE,
    AblationRecord,
    ArmResult,
    ComparisonResult,
    chain_epochs,
    chain_labels,
    fine_tune_chain,
    read_paper_gap,
    top5_comparable,
)
from vggbench.errors import VggbenchError
from vggbench.recipe import CHANCE_POINTS
from vggbench.scales import to_pixels
from vggbench.store import EvalRecord, RunRecord

# --- Evaluations: the `eval` table and the paper's Tables 3-6 ---------------------------------

#: Columns of an eval record that the result tables show, with their display headers.
RESULT_HEADERS = {
    "runs": "runs",
    "nets": "net",
    "train_scales": "train S",
    "method": "method",
    "test_scales": "test Q",
    "test_scales_px": "Q (px)",
    "dataset": "dataset",
    "images": "images",
    "top1_err": "top-1 err (%)",
    "top5_err": "top-5 err (%)",
    "forward_passes_per_image": "passes/image",
    "macs_per_image": "MACs/image",
    "images_per_s": "images/s",
}


def _scale_label(scales: Sequence) -> str:
    if scales and isinstance(scales[0], (list, tuple)):
        return " | ".join(_scale_label(s) for s in scales)
    return ",".join(str(s) for s in scales)


def results_frame(records: Sequence[EvalRecord]) -> pd.DataFrame:
    """Eval records as a DataFrame, one row per record (the `vggbench eval` output)."""
    rows = [
        {
            "runs": "+".join(r.runs),
            "nets": "+".join(r.nets),
            "train_scales": "+".join(r.train_scales) if len(set(r.train_scales)) > 1 else r.train_scales[0],
            "method": r.method,
            "test_scales": _scale_label(r.test_scales),
            "test_scales_px": _scale_label(r.test_scales_px),
            "dataset": r.dataset,
            "images": r.images,
            "top1_err": r.top1_err,
            "top5_err": r.top5_err,
            "forward_passes_per_image": r.forward_passes_per_image,
            "macs_per_image": int(round(r.macs_per_image)),
            "images_per_s": r.images_per_s,
        }
        for r in records
    ]
    return pd.DataFrame(rows, columns=list(RESULT_HEADERS))


PAPER_TABLES = {3: paper.TABLE3, 4: paper.TABLE4, 5: paper.TABLE5, 6: paper.TABLE6}
PAPER_TABLE_TITLES = {
    3: "Table 3: single test scale (dense)",
    4: "Table 4: multi-scale test (dense)",
    5: "Table 5: dense vs multi-crop vs both, S in [256;512], Q = {256,384,512}",
    6: "Table 6: fusion of several nets",
}


def _net_key(nets: Sequence[str], train_scales: Sequence[str]) -> list[str]:
    return sorted(f"{net}/{scale}" for net, scale in zip(nets, train_scales))


def _flat(scales: Sequence) -> list:
    """A shared scale list as is; per-model lists only when they are all the same."""
    if scales and isinstance(scales[0], list):
        return scales[0] if all(s == scales[0] for s in scales) else [None]
    return list(scales)


def _matches(row: paper.PaperResult, record: EvalRecord) -> bool:
    """Whether an evaluation measured what a row of Tables 3-6 reports."""
    if record.method != row.method:
        return False
    if row.table == 6:
        same_nets = _net_key(record.nets, record.train_scales) == sorted(row.net.split("+"))
        if row.net == paper.SUBMISSION_7_NETS:  # each net at its own multi-scale Q set
            return same_nets
        return same_nets and _flat(record.test_scales) == list(row.test_scales)
    return (
        len(record.nets) == 1
        and record.nets[0] == row.net
        and record.train_scales[0] == row.train_scale
        and _flat(record.test_scales) == list(row.test_scales)
    )


def recipe_key(record: EvalRecord, runs: Mapping[str, RunRecord]) -> str:
    """What an eval record measured apart from the seeds: its runs' recipes (`RunRecord.recipe_key`),
    its dataset and limits. Records with the same key are repeats over seeds; a record whose runs
    are unknown stands alone."""
    recipes = []
    for run_id in record.runs:
        run = runs.get(run_id)
        if run is None:
            return f"record {record.id}"
        recipes.append(run.recipe_key())
    return json.dumps([recipes, record.dataset, asdict(record.limits)], sort_keys=True)


def _recipe_groups(found: list[EvalRecord], runs: Mapping[str, RunRecord] | None) -> list[list[EvalRecord]]:
    """`found` (oldest first) as repeats over seeds: without the run records, the newest record
    alone; with them, one group per recipe (`recipe_key`), each the newest record of each set of
    runs, oldest first, the group of the newest record first."""
    if not found:
        return []
    if runs is None:
        return [[found[-1]]]
    groups: dict[str, dict[tuple[str, ...], EvalRecord]] = {}
    for record in found:
        groups.setdefault(recipe_key(record, runs), {})[tuple(record.runs)] = record
    repeats = [sorted(group.values(), key=lambda r: r.created) for group in groups.values()]
    return sorted(repeats, key=lambda group: group[-1].created, reverse=True)


def recipe_label(run: RunRecord, runs: Mapping[str, RunRecord]) -> str:
    """A run's recipe, short: its dataset, width, crop, epochs, init (with the paper scheme's std),
    input range, and the runs it was fine-tuned through (init_from) with the epochs of them all."""
    chain = fine_tune_chain(run, runs.get)
    root = chain[0] if isinstance(chain[0], RunRecord) else run
    init = root.init.scheme + (f" std {root.init.std:g}" if root.init.std is not None else "")
    recipe = run.recipe
    length = (
        f"to the paper's stopping rule (patience {recipe.patience}, cap {recipe.epochs} epochs)"
        if recipe.stop == "schedule"
        else f"{recipe.epochs} epochs"
    )
    label = (
        f"{run.dataset}, width {run.width:g}, crop {run.crop}, {length}, init {init}, input {run.input_range}"
    )
    if len(chain) > 1:
        label += f", fine-tuned {' -> '.join(chain_labels(chain))} ({chain_epochs(chain)} epochs in all)"
    return label


def _group_recipe(record: EvalRecord, runs: Mapping[str, RunRecord] | None) -> str | None:
    """The recipe of a group's runs (one per fused net); None without the run records."""
    if runs is None:
        return None
    labels = [
        recipe_label(runs[r], runs) if r in runs else f"run {r} (not in the store)" for r in record.runs
    ]
    return " + ".join(labels)


def _top5_comparable(group: list[EvalRecord], runs: Mapping[str, RunRecord] | None) -> bool:
    """Whether the group's top-5 can stand beside ImageNet's (`top5_comparable`): not when its runs
    have 10 classes or fewer, nor when its top-5 is of fewer than 5 classes."""
    for record in group:
        known = [runs[r].num_classes for r in record.runs if runs and r in runs]
        if record.top5_k < 5 or not all(top5_comparable(k) for k in known):
            return False
    return True


def _paper_row(row: paper.PaperResult, group: list[EvalRecord], runs: Mapping[str, RunRecord] | None) -> dict:
    top1 = statistics.fmean(r.top1_err for r in group) if group else None
    top5 = statistics.fmean(r.top5_err for r in group) if group and _top5_comparable(group, runs) else None
    return {
        "net": row.net,
        "train scale": row.train_scale,
        "test scales": ",".join(map(str, row.test_scales)) if row.test_scales else "multi (each net)",
        "method": row.method,
        "paper top-1": row.top1,
        "paper top-5": row.top5,
        "our top-1": top1,
        "our top-5": top5,
        "delta top-1": top1 - row.top1 if group and row.top1 is not None else None,
        "delta top-5": top5 - row.top5 if top5 is not None and row.top5 is not None else None,
        "our MACs/image": round(statistics.fmean(r.macs_per_image for r in group)) if group else None,
        "our ms/image": 1000 * statistics.fmean(r.seconds / r.images for r in group) if group else None,
        "seeds": len(group) or None,
        "images": group[-1].images if group else None,  # a recipe's records see the same images
        "dataset": group[-1].dataset if group else None,
        "recipe": _group_recipe(group[-1], runs) if group else None,
        "record": group[-1].id if group else None,
    }


#: Table 5 compares test methods, so it shows what each costs beside its error.
COST_COLUMNS = ("our MACs/image", "our ms/image")


def paper_table_frame(
    table: int,
    evals: Sequence[EvalRecord],
    dataset: str | None = None,
    runs: Mapping[str, RunRecord] | None = None,
) -> pd.DataFrame:
    """One of Tables 3-6 with the paper's errors beside ours: one row per paper row and recipe of
    ours, blank where we have none. Ours come from the matching eval records (same net(s), train
    scale(s), test scales in paper units and method; restricted to `dataset` when given): the newest
    one, or, given the run records (`runs`, by id), per recipe (`recipe_key`, shown by
    `recipe_label`) the mean over its records of other seeds, with their number. Our top-5 is left
    out for 10 classes or fewer (`top5_comparable`), its columns too when no row has one; Table 5
    adds each method's cost (MACs and milliseconds per image); `images`: how many each saw. Our
    errors are on our dataset and scaled-down nets, so the comparison is of shape (which method or
    scale wins), not of value."""
    if table not in PAPER_TABLES:
        raise VggbenchError(
            f"no paper table {table} of evaluations; choose one of {', '.join(map(str, PAPER_TABLES))}"
        )
    records = sorted((r for r in evals if dataset is None or r.dataset == dataset), key=lambda r: r.created)
    rows = [
        _paper_row(row, group, runs)
        for row in PAPER_TABLES[table]
        for group in _recipe_groups([r for r in records if _matches(row, r)], runs) or [[]]
    ]
    frame = pd.DataFrame(rows)
    for column in ("paper top-1", "paper top-5", "our top-1", "our top-5", "delta top-1", "delta top-5"):
        frame[column] = frame[column].astype("Float64")
    frame = frame.astype(
        {"seeds": "Int64", "images": "Int64", "our MACs/image": "Int64", "our ms/image": "Float64"}
    )
    if frame["our top-1"].notna().any() and frame["our top-5"].isna().all():
        frame = frame.drop(columns=["our top-5", "delta top-5"])
    return frame if table == 5 else frame.drop(columns=list(COST_COLUMNS))


# --- Ablations ---------------------------------------------------------------------------------


def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def _interval(comparison: ComparisonResult) -> str:
    diff = comparison.difference
    if diff.zero_variance:
        return "none (zero variance)"
    if diff.ci95_low is None or diff.ci95_high is None:
        return "n/a (one seed)"
    return f"[{diff.ci95_low:+.2f}, {diff.ci95_high:+.2f}]"


ARM_COLUMNS = [
    "arm",
    "evaluation",
    "trained as",
    "epochs",
    "stopped by",
    "seeds",
    "stalled",
    "top-1 err (%)",
    "top-5 err (%)",
    "paper top-1",
    "paper top-5",
]
TOP5_COLUMNS = ["top-5 err (%)", "paper top-5"]
COMPARISON_COLUMNS = [
    "comparison",
    "evaluation",
    "paper expects",
    "ours (points)",
    "95% CI",
    "paper (points)",
    "paper's size",
    "verdict",
    "seeds needed",
]
EVIDENCE = ("consistent", "contradicts")  # verdicts an interval decided; the others have no evidence


def _epochs(arm: ArmResult) -> str:
    """Each seed's own epochs, and the chain's total when the arm was fine-tuned from other runs."""
    own = ",".join(map(str, arm.epochs_run))
    return own if len(arm.chain) < 2 else f"{own} (chain {arm.total_epochs})"


def _stopped_by(arm: ArmResult) -> str:
    """e.g. "schedule" or "schedule 2, epoch cap 1" over the arm's seeds."""
    counts = {reason: arm.stopped_by.count(reason) for reason in dict.fromkeys(arm.stopped_by)}
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{reason} {n}" for reason, n in counts.items())


def ablation_arms_frame(record: AblationRecord) -> pd.DataFrame:
    """Each arm's errors over seeds beside the paper's (percent): `trained as` is its fine-tuning
    chain and `epochs` the epochs of all of it; `stalled`: seeds at chance. Top-5 is left out when
    no arm has more than 10 classes (`top5_comparable`)."""
    rows = [
        {
            "arm": arm.name,
            "evaluation": arm.evaluation,
            "trained as": " -> ".join(arm.chain),
            "epochs": _epochs(arm),
            "stopped by": _stopped_by(arm),
            "seeds": len(arm.seeds),
            "stalled": len(arm.stalled_seeds),
            "top-1 err (%)": _pm(arm.top1_mean, arm.top1_std),
            "top-5 err (%)": _pm(arm.top5_mean, arm.top5_std),
            "paper top-1": arm.paper_top1,
            "paper top-5": arm.paper_top5,
        }
        for arm in record.arms
    ]
    frame = pd.DataFrame(rows, columns=ARM_COLUMNS)
    if any(top5_comparable(arm.num_classes) for arm in record.arms):
        return frame
    return frame.drop(columns=TOP5_COLUMNS)


def ablation_comparisons_frame(record: AblationRecord) -> pd.DataFrame:
    """treatment - baseline top-1 error with its 95% interval, the paper's difference, the verdict,
    and the seeds that would give a paired t-test 80% power for the paper's gap or the margin."""
    rows = [
        {
            "comparison": f"{c.treatment} - {c.baseline}",
            "evaluation": c.evaluation + (f" (Q {q_text(c)})" if c.test_scale_in_treatment else ""),
            "paper expects": c.expect.replace("_", " "),
            "ours (points)": round(c.difference.top1, 2),
            "95% CI": _interval(c),
            "paper (points)": c.paper_top1,
            "paper's size": gap_of(c) or "-",  # inside our interval, or ours smaller / larger / opposite
            "verdict": c.verdict,
            "seeds needed": c.seeds_needed,
        }
        for c in record.comparisons
    ]
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS).astype({"seeds needed": "Int64"})


def seeds_advice(comparison: ComparisonResult, seeds: int) -> str:
    """What `--seeds` would resolve a comparison at this budget (`seeds_needed`), or why it cannot
    be said; `seeds`: the sweep's."""
    if comparison.seeds_needed is None or comparison.seeds_target is None:
        return f"seeds needed unknown: {comparison.seeds_note}"
    target = comparison.seeds_target
    if comparison.expect == "similar":
        need = have = f"show the arms equal within +-{target:.1f} points (the claim's margin)"
    else:
        what = (
            f"the paper's {target:.1f}-point gap"
            if comparison.expect == "lower"
            else f"a {target:.1f}-point difference (the claim's margin)"
        )
        need, have = f"resolve {what}", f"detect {what}"
    if comparison.seeds_needed > seeds:
        return f"to {need} at this budget, run --seeds {comparison.seeds_needed}"
    return f"--seeds {seeds} already has 80% power to {have} at this budget"


def detectable_difference(std: float, n: int) -> float:
    """The smallest true difference (points) that a paired two-sided t-test at 95% over `n` seeds
    detects with 80% power when one seed's difference spreads with std `std`: (t_{0.975,n-1} +
    t_{0.80,n-1}) std / sqrt(n), the inverse of `seeds_needed`."""
    from scipy import stats as scipy_stats  # lazy: scipy.stats takes most of a second to import

    t = scipy_stats.t(n - 1)
    return float((t.ppf(0.5 + CONFIDENCE / 2) + t.ppf(POWER)) * std / math.sqrt(n))


def resolution(comparison: ComparisonResult, seeds: int) -> str:
    """What a comparison's seeds can and cannot resolve at this budget: the smallest difference they
    detect (`detectable_difference`), where their spread says anything, and `seeds_advice`."""
    diff = comparison.difference
    advice = seeds_advice(comparison, seeds)
    if comparison.verdict == STALLED or diff.std is None or diff.zero_variance or diff.n < 2:
        return advice
    smallest = detectable_difference(diff.std, diff.n)
    return f"{diff.n} seeds resolve differences of {smallest:.1f} points or more; {advice}"


def q_text(c: ComparisonResult) -> str:
    """The comparison's test scales Q (paper units): one set, or the baseline's vs the treatment's
    where the spec says the test scale is part of the treatment; "-" in records made before."""
    if not c.test_scales:
        return "-"
    base, treat = (",".join(map(str, q)) for q in c.test_scales)
    return base if base == treat else f"{base} vs {treat}"


def scale_splits(record: AblationRecord) -> list[str]:
    """Where a comparison whose test scale is part of the treatment (B - A, each arm at its own Q) is
    followed by one at a single Q from B (C - B), their sum C - A splits into the test scale's
    change and the training's: one sentence per such pair, with each part in points."""
    lines = []
    methods = {arm.evaluation: arm.method for arm in record.arms}
    for first in record.comparisons:
        if not first.test_scale_in_treatment or methods.get(first.evaluation) != "center":
            continue  # dense sees the whole image: there the test scale is the paper's treatment
        for second in record.comparisons:
            if second.baseline != first.treatment or second.test_scale_in_treatment:
                continue
            x, y = first.difference.top1, second.difference.top1
            share = f"; the test scale's part is {x / (x + y):.0%} of it" if abs(x + y) > 1e-9 else ""
            lines.append(
                f"{second.treatment} - {first.baseline} at each arm's own Q splits into {first.treatment} "
                f"- {first.baseline} ({first.evaluation}, Q {q_text(first)}) {x:+.2f} and "
                f"{second.treatment} - {second.baseline} ({second.evaluation}, Q {q_text(second)}) "
                f"{y:+.2f}: {x + y:+.2f} points in all{share}"
            )
    return lines


def gap_of(c: ComparisonResult) -> str | None:
    """Where the paper's difference falls against our interval (`stats.paper_gap`), as recorded, or
    computed from paper_top1 for records made before it was recorded."""
    return c.paper_gap or read_paper_gap(c.verdict, c.difference, c.paper_top1)


def _paper_number(c: ComparisonResult) -> str:
    """The paper's difference beside ours, and where it falls against our interval."""
    number = c.paper_top1 if c.paper_top1 is not None else c.paper_gap_top1
    if number is None:
        return "the paper gives no number"
    text = f"paper {number:+.1f}" + (" (its dense protocol)" if c.paper_top1 is None else "")
    gap = gap_of(c)
    return text + (f": {PAPER_GAP[gap]}" if gap else "")


def summary_comparison(record: AblationRecord) -> ComparisonResult | None:
    """The comparison the summary reads for an ablation: the first the budget can test (the specs
    list the paper's protocol first, then the center crop valid at small crops), else the first."""
    testable = [c for c in record.comparisons if c.verdict != UNTESTABLE]
    return (testable or record.comparisons or [None])[0]


def summary_group(record: AblationRecord) -> str:
    """Which part of the summary an ablation's line goes to: "tested", "budget" (an arm had not
    converged) or "untestable"."""
    c = summary_comparison(record)
    if c is not None and c.verdict == UNTESTABLE:
        return "untestable"
    if c is not None and c.verdict.endswith(AT_BUDGET):
        return "budget"
    return "tested"


def headline(record: AblationRecord) -> str:
    """One line for the report's summary: the ablation and budget, the comparison it reads
    (`summary_comparison`) and how it was measured, its verdict or why the budget cannot test it,
    our difference and interval beside the paper's, and whether the paper's size is inside it."""
    name = f"`{record.ablation}` ({record.net}, {record.label})"
    c = summary_comparison(record)
    if c is None:
        runs = f"{record.runs_found} of {record.runs_expected} runs"
        return f"{name}: no comparison has both arms in the store yet ({runs})"
    measured = f"ours {c.difference.top1:+.2f} points, 95% CI {_interval(c)}; {_paper_number(c)}"
    what = f"{c.treatment} - {c.baseline}, {c.evaluation}" + (f" (Q {q_text(c)})" if c.test_scales else "")
    if c.verdict == UNTESTABLE:
        return f"{name}: {c.note}. Measured all the same, {what}: {measured}."
    line = f"{name}: {what}: **{c.verdict}**, {measured}"
    return line + (f"; {c.note}." if c.note else ".")


def _input_range(input_range: str) -> str:
    return input_range + (" (the paper's)" if input_range == paper.INPUT_RANGE else "")


def ablation_budget_line(record: AblationRecord) -> str:
    """What the numbers were measured on: the dataset, budget, widths, crop, the init used (with the
    paper's ambiguities: the normal init's std, which layers pre-initialisation copied; fine-tuned
    arms show their chain in the arms table), the input range, the machine and the time its runs
    took."""
    b = record.budget
    inits = sorted(
        {
            arm.init.scheme + (f" std {arm.init.std}" if arm.init.std else "")
            for arm in record.arms
            if not arm.init.scheme.startswith("init-from")
        }
    )
    ranges = sorted({_input_range(arm.input_range) for arm in record.arms})
    line = (
        f"preset {record.label}: {b.data}, width {b.width:g}, crop {b.crop}, {b.epochs} epochs, "
        f"batch {b.batch}, lr {b.lr:g}, train images {b.limit_train or 'all'}, "
        f"val images {b.limit_val or 'all'}; init {', '.join(inits) or 'default'}; "
        f"input {', '.join(ranges)} minus the mean RGB; "
        f"{record.seeds} seeds; runs found {record.runs_found}/{record.runs_expected}"
    )
    preinit = {
        (arm.init.preinit_mapping, tuple(arm.init.copied_layers))
        for arm in record.arms
        if arm.init.preinit_from
    }
    for mapping, layers in sorted(preinit):
        line += f"; pre-init (mapping {mapping}) copied {len(layers)} layers: {', '.join(layers)}"
    cost = record.cost
    return line + (
        f"; its runs trained for {cost.train_s / 60:.1f} min and evaluated in {cost.eval_s / 60:.1f} min "
        f"on {'; '.join(cost.machines)}"
    )


def ablation_notes(record: AblationRecord) -> list[str]:
    """What a reader must know to read the numbers: how a gap measured at different test scales
    splits (`scale_splits`), seeds that stalled at chance, and how few window positions dense
    evaluation has at a small crop."""
    notes = scale_splits(record)
    stalled = {arm.name: arm.stalled_seeds for arm in record.arms if arm.stalled_seeds}
    for name, seeds in stalled.items():
        notes.append(
            f"arm {name!r}: seed(s) {', '.join(map(str, seeds))} stayed at chance error (within "
            f"{CHANCE_POINTS:g} point of it, or training warned); they are kept in its mean and std, "
            "and its comparisons get no verdict"
        )
    crop = record.budget.crop
    if crop < paper.PAPER_CROP and any(arm.method == "dense" for arm in record.arms):
        size = to_pixels(256, crop)
        cells = -(-size // 2**paper.POOLS)  # each max-pool halves the map, rounding up (Caffe's)
        positions = cells - crop // 2**paper.POOLS + 1
        overhang = (positions - 1) * 2**paper.POOLS + crop - size  # px of the last window past the edge
        notes.append(
            f"at crop {crop}, dense evaluation at Q=256 ({size} px) has a {cells}x{cells} pool5 map and "
            f"{positions}x{positions} window position(s), 32 px apart (the paper's crop 224: 8x8 and 2x2); "
            f"the last row and column of windows reach {overhang} of their {crop} px past the image's "
            "edge (zero padding), where at crop 224 every window lies inside the image, so dense "
            "evaluation here measures that geometry more than the paper's protocol: compare on the "
            "center crop"
        )
    return notes
