"""Running an ablation: its arms x seeds as training runs, each evaluated with the spec's protocols
(stored runs and evaluations are reused), then the analysis of every record of the sweep found in
the store into one `AblationRecord`."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from vggbench import train
from vggbench.ablations.spec import (
    AblationSpec,
    Arm,
    Budget,
    Comparison,
    EvalProtocol,
    arm_epochs,
    comparison_scales,
    load_spec,
    preset_budget,
    preset_untestable,
    preset_values,
    with_budget,
)
from vggbench.ablations.stats import (
    ABLATIONS,
    STALLED,
    UNTESTABLE,
    AblationRecord,
    ArmResult,
    ComparisonResult,
    Cost,
    PaperClaim,
    at_budget,
    chain_epochs,
    chain_labels,
    difference,
    fine_tune_chain,
    paper_difference,
    power_target,
    read_paper_gap,
    seeds_for,
    summarize,
    verdict,
    write_ablation,
    zero_variance_note,
)
from vggbench.ablations.testability import NOT_TESTABLE, claim_kinds, not_testable, untestable_reason
from vggbench.data import Dataset
from vggbench.errors import VggbenchError
from vggbench.evaluate.records import evaluate_run, stored_evaluation
from vggbench.evaluate.sources import load_data
from vggbench.locks import LOCK_FILE, FileLock, run_lock
from vggbench.recipe import NOT_LEARNING, at_chance, preset_settings
from vggbench.store import DataSource, EvalRecord, RunRecord, read_run, record_id
from vggbench.train.events import EpochHook, Progress

ONE_SEED_NOTE = "one seed only: no interval; run with --seeds 3 or more for a verdict"

#: Seeds per arm: each is a full training run, so a count beyond this is a typo, not a sweep (and
#: seeds 0..N-1 stay far below the 2^63 that torch's generators take).
MAX_SEEDS = 1000
#: The sweep's stored evaluations: (arm name, evaluation name) -> {seed: record}.
Found = dict[tuple[str, str], dict[int, EvalRecord]]
#: The sweep's stored runs: (arm name, seed) -> record.
Runs = dict[tuple[str, int], RunRecord]


@dataclass(frozen=True)
class SweepStep:
    """What `run_ablation`'s `on_run` sees before each arm x seed of its shard (for progress)."""

    index: int  # 1-based, of `total` in this shard
    total: int
    arm: str
    seed: int
    run_id: str
    stored: bool  # its run is complete in the store: reused, not trained


SweepHook = Callable[[SweepStep], None]


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/n' (1-based) -> (i, n); None -> the whole sweep (1, 1)."""
    if text is None:
        return 1, 1
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise VggbenchError(f"bad shard {text!r}; write it as i/n, e.g. 1/4") from None
    if count < 1 or not 1 <= index <= count:
        raise VggbenchError(f"bad shard {text!r}: i must be in 1..n, e.g. 1/{max(count, 1)}")
    return index, count


def sweep(spec: AblationSpec, seeds: int, shard: tuple[int, int] = (1, 1)) -> list[tuple[Arm, int]]:
    """The (arm, seed) jobs of this shard. An arm that starts from another arm's run of the same
    seed stays in that seed's shard, so a shard never waits on another machine."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise VggbenchError(
            f"--seeds {seeds}: need 1 to {MAX_SEEDS} seeds per arm (3 or more for an interval)"
        )
    index, count = shard
    return [(arm, seed) for seed in range(seeds) if seed % count == index - 1 for arm in spec.arms]


@dataclass(frozen=True)
class SweepArgs:
    """One sweep: what every worker or array task of it is given (picklable, for spawn and submitit)."""

    spec: AblationSpec
    seeds: int
    preset: str
    overrides: dict[str, Any]
    results_dir: Path
    shard: tuple[int, int] = (1, 1)
    device: str = "auto"
    quiet: bool = False


@dataclass(frozen=True)
class SweepHooks:
    """What a caller hears during a sweep: `say` the sweep's lines, `on_run` each run before it
    starts (k of N); `progress` and `on_epoch_end` go to `train.train`."""

    say: Callable[[str], None] | None = None
    on_run: SweepHook | None = None
    progress: Progress | None = None
    on_epoch_end: EpochHook | None = None


def run_ablation(args: SweepArgs, hooks: SweepHooks = SweepHooks()) -> AblationRecord:
    """Train and evaluate this shard's arms x seeds (`train_sweep`), then analyse every record of
    the sweep found in the store."""
    budget = train_sweep(args, hooks)
    return analyse(
        args.spec, seeds=args.seeds, preset=args.preset, budget=budget, results_dir=args.results_dir
    )


def train_sweep(args: SweepArgs, hooks: SweepHooks = SweepHooks()) -> Budget:
    """Train and evaluate this shard's arms x seeds (stored runs and evaluations are reused, an
    interrupted run resumes); the sweep's budget. Each run is done under its lock (`locks`), so
    that processes sharing the store (--jobs, concurrent sweeps, shards) do each run once: a run
    another process holds is passed over and come back to (`_claim_next`). An arm with init_from
    fine-tunes its source arm's run of the same seed (`say` tells which); a spec loaded with
    chain=False has none. Each job's config is resolved once (`_Jobs`)."""
    spec, say = args.spec, hooks.say
    budget = preset_budget(spec, args.preset, args.overrides)
    jobs = _Jobs(budget, None if args.quiet else lambda text: sys.stderr.write(f"note: {text}\n"))
    datasets: dict[DataSource, Dataset] = {}  # every run of a sweep validates on the same images
    pending = sweep(spec, args.seeds, args.shard)
    total = len(pending)
    passed_over: set[str] = set()

    def pass_over(run_id: str, holder: str) -> None:
        if say and run_id not in passed_over:
            say(f"{spec.name}: run {run_id} is being trained by {holder}; moving on, back to it later")
        passed_over.add(run_id)

    while pending:
        (arm, seed), lock = _claim_next(spec.name, pending, jobs, args.results_dir, pass_over)
        try:
            resolved = jobs.resolved(arm, seed)
            if hooks.on_run:
                stored = read_run(args.results_dir, resolved.id)
                complete = stored is not None and stored.status == "complete"
                index = total - len(pending) + 1
                hooks.on_run(SweepStep(index, total, arm.name, seed, resolved.id, complete))
            if say:
                _say_job(say, spec.name, arm, seed, resolved)
            run = _train(resolved, args, hooks)
            protocols = [p for p in spec.evaluations if p.applies_to(arm.name)]
            _evaluate(run, protocols, datasets, args.results_dir, args.device)
        finally:
            lock.release()
        jobs.done(arm, seed, run.id)
        pending.remove((arm, seed))
    return budget


def _say_job(
    say: Callable[[str], None], name: str, arm: Arm, seed: int, resolved: train.ResolvedConfig
) -> None:
    say(f"{name}: arm {arm.name!r}, seed {seed} (run {resolved.id})")
    if arm.init_from:
        config = resolved.config
        say(
            f"{name}: arm {arm.name!r}, seed {seed}: fine-tunes run {config.init_from} "
            f"({arm.init_from}) at lr {config.lr:g} for {config.epochs} epochs"
        )


class _Jobs:
    """The sweep's jobs' configs, each resolved once against its data (when first asked for; `note`
    hears of a limit beyond its split, as `train` says it), and the runs done here, which the jobs
    that start from them name."""

    def __init__(self, budget: Budget, note: Callable[[str], None] | None) -> None:
        self.budget, self.note = budget, note
        self.run_ids: dict[tuple[str, int], str] = {}
        self._resolved: dict[tuple[str, int], train.ResolvedConfig] = {}

    def ready(self, arm: Arm, seed: int) -> bool:
        """Whether the run the job starts from is done here (or it starts from none)."""
        return not arm.depends_on or (arm.depends_on, seed) in self.run_ids

    def resolved(self, arm: Arm, seed: int) -> train.ResolvedConfig:
        key = (arm.name, seed)
        if key not in self._resolved:
            config = train_config(arm, seed, self.budget, self.run_ids)
            self._resolved[key] = train.resolve(config, self.note, fresh=True)
        return self._resolved[key]

    def done(self, arm: Arm, seed: int, run_id: str) -> None:
        self.run_ids[(arm.name, seed)] = run_id


def _claim_next(
    name: str,
    pending: list[tuple[Arm, int]],
    jobs: _Jobs,
    results_dir: Path,
    pass_over: Callable[[str, str], None],
) -> tuple[tuple[Arm, int], FileLock]:
    """The first pending job that is ready (its source run done here) and that no other process
    holds, with its run's lock taken; `pass_over` hears of each held one. When every ready job is
    held elsewhere, wait for the first (it is then usually complete, and read from the store). A
    ready job always exists: the sources of a shard's jobs are in the shard, before them."""
    ready = [(arm, seed) for arm, seed in pending if jobs.ready(arm, seed)]
    for arm, seed in ready:
        run_id = jobs.resolved(arm, seed).id
        lock = run_lock(train.checkpoint_dir(results_dir, run_id))
        if lock.try_acquire():
            return (arm, seed), lock
        pass_over(run_id, lock.holder())
    arm, seed = ready[0]
    run_id = jobs.resolved(arm, seed).id
    lock = run_lock(train.checkpoint_dir(results_dir, run_id))
    lock.acquire(
        lambda holder: sys.stderr.write(
            f"{name}: run {run_id} is being trained by {holder}; waiting (nothing else is left)\n"
        )
    )
    return (arm, seed), lock


def stalled_run(run: RunRecord) -> bool:
    """A run whose validation error stayed at chance (training warned): it is kept in the means, so
    that a recipe that stalls now and then shows it, the report counts it per arm, and its arm's
    comparisons get no verdict (as for a seed whose evaluated error is at chance, `at_chance`)."""
    return any(warning.startswith(NOT_LEARNING) for warning in run.warnings)


# --- The sweep's calls into training and evaluation ---------------------------------------------


def train_config(
    arm: Arm, seed: int, budget: Budget, run_ids: dict[tuple[str, int], str]
) -> train.TrainConfig:
    """The TrainConfig of one arm x seed: the budget's, with the arm's own settings and the seed; an
    arm that starts from another uses that arm's run (and one that fine-tunes it, init_from, the
    budget's finetune_lr and finetune_epochs)."""
    return replace(base_config(budget), **arm_settings(arm, seed, budget, run_ids), seed=seed)


def base_config(budget: Budget) -> train.TrainConfig:
    """The settings every run of a sweep shares: those the preset (or the command line) sets."""
    given = {s.name: getattr(budget, s.preset) for s in preset_settings()}
    return train.TrainConfig(**{name: value for name, value in given.items() if value is not None})


def arm_settings(arm: Arm, seed: int, budget: Budget, run_ids: dict[tuple[str, int], str]) -> dict[str, Any]:
    """What one arm sets over the budget: its net, scale and epochs, its own init, lr, LRN alpha or
    input range, and the runs (of the same seed) it starts from."""
    resolved = with_budget(arm, budget)
    own = {name: getattr(resolved, name) for name in ("init", "init_std", "lr", "lrn_alpha", "input_range")}
    chosen = {name: value for name, value in own.items() if value is not None}
    if arm.preinit_from:
        chosen["preinit_from"] = run_ids[(arm.preinit_from, seed)]
    if arm.init_from:
        chosen["init_from"] = run_ids[(arm.init_from, seed)]
    return {"net": arm.net, "scale": arm.scale, "epochs": arm_epochs(arm, budget), **chosen}


def _train(resolved: train.ResolvedConfig, args: SweepArgs, hooks: SweepHooks) -> RunRecord:
    """Train one arm x seed, or find its run in the store; an interrupted run resumes."""
    return train.train(
        resolved,
        results_dir=args.results_dir,
        device=args.device,
        quiet=args.quiet,
        resume=train.has_checkpoint(args.results_dir, resolved.id),
        progress=hooks.progress,
        on_epoch_end=hooks.on_epoch_end,
    )


def _evaluate(
    run: RunRecord,
    protocols: list[EvalProtocol],
    datasets: dict[DataSource, Dataset],
    results_dir: Path,
    device: str,
) -> None:
    """Evaluate a run with every protocol on its own validation split (or a protocol's stratified
    subset of max_images of it), the protocols of one scale set and subset in one pass; the store's
    evaluations are reused, and the images load once per sweep."""
    by_pass: dict[tuple[str, int | None], list[str]] = {}
    for protocol in protocols:
        if stored_protocol_evaluation(run, protocol, results_dir) is None:
            by_pass.setdefault((protocol.scales, protocol.max_images), []).append(protocol.method)
    for (scales, max_images), methods in by_pass.items():
        if run.data not in datasets:
            datasets[run.data] = load_data(run.data, run.data.limit_val)
        evaluate_run(run, methods, scales, datasets[run.data], results_dir, device, max_images=max_images)


def stored_protocol_evaluation(
    run: RunRecord, protocol: EvalProtocol, results_dir: Path
) -> EvalRecord | None:
    """The stored evaluation of a run under a spec's protocol (its method, scales and max_images)."""
    return stored_evaluation(run, protocol.method, protocol.scales, results_dir, protocol.max_images)


# --- Analysing what the store holds --------------------------------------------------------------


def analyse(
    spec: AblationSpec, *, seeds: int, preset: str, budget: Budget, results_dir: Path
) -> AblationRecord:
    """Each arm's mean and std over seeds, each comparison's difference, interval, verdict and the
    seeds it needs, with the paper's numbers beside ours. Stored as one record under
    <results>/ablations/. One process analyses at a time (the store's ablations/lock), so that
    of shards finishing together the last record written is one that saw every run."""
    with FileLock(Path(results_dir) / ABLATIONS / LOCK_FILE):
        return _analyse(spec, seeds=seeds, preset=preset, budget=budget, results_dir=results_dir)


def _analyse(
    spec: AblationSpec, *, seeds: int, preset: str, budget: Budget, results_dir: Path
) -> AblationRecord:
    found, runs = _stored_sweep(spec, seeds, budget, results_dir)
    by_id = {run.id: run for run in runs.values()}

    def lookup(run_id: str) -> RunRecord | None:
        return by_id.get(run_id) or read_run(results_dir, run_id)

    arms = {
        (arm.name, protocol.name): _arm_result(arm, protocol, found[(arm.name, protocol.name)], runs, lookup)
        for arm in spec.arms
        for protocol in spec.evaluations
        if found.get((arm.name, protocol.name))
    }
    comparisons = [
        _comparison_result(
            spec,
            comparison,
            arms[(comparison.baseline, comparison.evaluation)],
            arms[(comparison.treatment, comparison.evaluation)],
            found,
            budget,
            preset_untestable(spec, preset),
        )
        for comparison in spec.comparisons
        if (comparison.baseline, comparison.evaluation) in arms
        and (comparison.treatment, comparison.evaluation) in arms
    ]
    primary = comparisons[0] if comparisons else None
    identity = {
        "ablation": spec.name,
        "net": spec.net,
        "preset": preset,
        "budget": asdict(budget),
        "seeds": seeds,
    }
    record = AblationRecord(
        id=record_id(identity),
        ablation=spec.name,
        title=spec.title,
        net=spec.net,
        preset=preset,
        budget=budget,
        seeds=seeds,
        arms=list(arms.values()),
        comparisons=comparisons,
        difference=primary.difference if primary else None,
        verdict=primary.verdict if primary else "incomplete",
        paper=PaperClaim(spec.claim, spec.section, primary.paper_top1 if primary else None),
        runs_found=len(runs),
        runs_expected=seeds * len(spec.arms),
        cost=_cost(found, runs),
        budget_label=budget_label(spec, preset, budget),
    )
    write_ablation(results_dir, record)
    return record


def budget_label(spec: AblationSpec, preset: str, budget: Budget) -> str:
    """The preset's name and what `budget` changes in it, e.g. "quick+epochs=10" or
    "quick+lr=0.01+from-scratch" (keys as the CLI spells them), so that a sweep with overrides gets
    its own report section and files and is never taken for the preset's. A fine-tuning key counts
    only where it differs from what it follows when the preset leaves it out (--lr moves finetune_lr,
    lr / 10, and --epochs finetune_epochs)."""
    defaults = {f.name: f.default for f in fields(Budget) if f.default is not MISSING}
    base = {**defaults, **preset_values(spec, preset)}
    base["finetune_lr"] = base["finetune_lr"] or budget.lr / 10
    base["finetune_epochs"] = base["finetune_epochs"] or budget.epochs
    parts = [preset]
    for key in (f.name for f in fields(Budget) if f.name != "design"):
        value = getattr(budget, key)
        if key not in base or value != base[key]:  # a key the preset sets not, or otherwise
            parts.append(f"{key.replace('_', '-')}={_label_value(value)}")
    shipped = load_spec(str(spec.path), spec.net).design if spec.path else spec.design
    if budget.design != shipped:  # --from-scratch dropped the spec's fine-tuning chains
        parts.append(budget.design.replace(" ", "-"))
    return "+".join(parts)


def _label_value(value: Any) -> str:
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _stored_sweep(spec: AblationSpec, seeds: int, budget: Budget, results_dir: Path) -> tuple[Found, Runs]:
    """Every complete run of the sweep in the store, and its stored evaluations."""
    found: Found = {}
    runs: Runs = {}
    run_ids: dict[tuple[str, int], str] = {}
    for seed in range(seeds):
        for arm in spec.arms:
            if arm.depends_on and (arm.depends_on, seed) not in run_ids:
                continue
            run = read_run(results_dir, train.resolve(train_config(arm, seed, budget, run_ids)).id)
            if run is None or run.status != "complete":
                continue
            run_ids[(arm.name, seed)], runs[(arm.name, seed)] = run.id, run
            for protocol in (p for p in spec.evaluations if p.applies_to(arm.name)):
                stored = stored_protocol_evaluation(run, protocol, results_dir)
                if stored is not None:
                    found.setdefault((arm.name, protocol.name), {})[seed] = stored
    return found, runs


def _arm_result(
    arm: Arm,
    protocol: EvalProtocol,
    evals: dict[int, EvalRecord],
    runs: Runs,
    lookup: Callable[[str], RunRecord | None],
) -> ArmResult:
    """One arm under one protocol; a seed stalled when its error here is at chance (`at_chance`) or
    its training warned, and the arm's chain is its first seed's (`lookup` finds the runs it
    started from)."""
    seeds = sorted(evals)
    seed_runs = [runs[(arm.name, seed)] for seed in seeds]
    top1 = summarize([evals[seed].top1_err for seed in seeds])
    top5 = summarize([evals[seed].top5_err for seed in seeds])
    row = arm.paper_result(protocol)
    chain = fine_tune_chain(seed_runs[0], lookup)
    return ArmResult(
        name=arm.name,
        net=arm.net,
        scale=arm.scale,
        evaluation=protocol.name,
        method=protocol.method,
        scales=protocol.scales,
        runs=[evals[seed].runs[0] for seed in seeds],
        seeds=seeds,
        top1_mean=top1.mean,
        top1_std=top1.std,
        top5_mean=top5.mean,
        top5_std=top5.std,
        macs_per_image=statistics.fmean(evals[seed].macs_per_image for seed in seeds),
        num_classes=seed_runs[0].num_classes,
        input_range=seed_runs[0].input_range,
        init=seed_runs[0].init,
        chain=chain_labels(chain),
        total_epochs=chain_epochs(chain),
        curves=[run.epochs for run in seed_runs],
        stalled_seeds=[
            seed
            for seed, run in zip(seeds, seed_runs)
            if stalled_run(run) or at_chance(evals[seed].top1_err, run.num_classes)
        ],
        paper_top1=row.top1 if row else None,
        paper_top5=row.top5 if row else None,
        stopped_by=[run.stopped_by for run in seed_runs],
        val_slopes=[run.val_slope for run in seed_runs],
        epochs_run=[len(run.epochs) for run in seed_runs],
    )


def _comparison_result(
    spec: AblationSpec,
    comparison: Comparison,
    base_arm: ArmResult,
    treat_arm: ArmResult,
    found: Found,
    budget: Budget,
    declared: dict[str, str],
) -> ComparisonResult:
    """The difference and its verdict: "not testable" when the budget cannot test the claim
    (testability.py; still measured), "stalled" when either arm has a seed at chance, inconclusive
    with a note for one seed or zero variance; and the seeds that would resolve it."""
    base = found[(comparison.baseline, comparison.evaluation)]
    treat = found[(comparison.treatment, comparison.evaluation)]
    diff = difference({s: r.top1_err for s, r in base.items()}, {s: r.top1_err for s, r in treat.items()})
    paper_top1, gap = paper_difference(spec, comparison), _paper_gap(spec, comparison)
    protocol = spec.evaluation(comparison.evaluation)
    kinds = claim_kinds((base_arm.scale, treat_arm.scale), protocol.method)
    untestable = untestable_reason(kinds, budget.data, budget.crop, declared)
    stalled = [arm for arm in (base_arm, treat_arm) if arm.stalled_seeds]
    if untestable:
        note = not_testable(untestable)
        judged, needed, seeds_note, target = UNTESTABLE, None, NOT_TESTABLE, None
    elif stalled:
        note = "stalled: " + " and ".join(_stalled_seeds(arm) for arm in stalled) + " stayed at chance"
        judged, needed, seeds_note = STALLED, None, "an arm stalled: its spread says nothing"
        target = None
    else:
        judged = verdict(diff, comparison.expect, comparison.margin)
        if diff.zero_variance:
            note = zero_variance_note(diff)
        else:
            note = ONE_SEED_NOTE if diff.ci95_low is None else None
        target = power_target(comparison.expect, gap, comparison.margin)
        needed, seeds_note = seeds_for(diff, target, comparison.expect)
        judged, unconverged = at_budget(judged, [base_arm, treat_arm])
        note = "; ".join(text for text in (unconverged, note) if text) or None
    return ComparisonResult(
        baseline=comparison.baseline,
        treatment=comparison.treatment,
        evaluation=comparison.evaluation,
        expect=comparison.expect,
        margin=comparison.margin,
        difference=diff,
        verdict=judged,
        paper_top1=paper_top1,
        note=note,
        seeds_needed=needed,
        seeds_note=seeds_note,
        seeds_target=target,
        converged=base_arm.converged and treat_arm.converged,
        paper_gap=read_paper_gap(judged, diff, gap),
        paper_gap_top1=gap,
        test_scales=[
            list(q) for q in comparison_scales(comparison, protocol, {a.name: a for a in spec.arms})
        ],
        test_scale_in_treatment=comparison.test_scale_in_treatment,
    )


def _paper_gap(spec: AblationSpec, comparison: Comparison) -> float | None:
    """The paper's difference between the comparison's arms, the target that `seeds_needed` sizes:
    under its own evaluation, else under another of the spec's (the paper measured dense only, so
    a center-crop comparison is sized for the paper's dense gap)."""
    same_arms = [
        c
        for c in spec.comparisons
        if (c.baseline, c.treatment) == (comparison.baseline, comparison.treatment)
    ]
    gaps = (paper_difference(spec, c) for c in [comparison, *same_arms])
    return next((gap for gap in gaps if gap is not None), None)


def _stalled_seeds(arm: ArmResult) -> str:
    seeds = arm.stalled_seeds
    return f"arm {arm.name!r} seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _cost(found: Found, runs: Runs) -> Cost:
    return Cost(
        train_s=sum(run.train_time_s or run.wall_time_s for run in runs.values()),
        eval_s=sum(record.seconds for records in found.values() for record in records.values()),
        machines=sorted({run.machine or run.device for run in runs.values()}),
    )
