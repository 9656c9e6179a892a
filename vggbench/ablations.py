"""The paper's ablations: a declarative spec (ablations/*.toml) -> arms x seeds -> runs ->
evaluations -> statistics over seeds and a verdict against the paper's claim.

Adding an ablation is adding a spec file. A spec names its arms (net, train scale, init), its
evaluations (method, test scales), its comparisons (baseline, treatment, what the paper expects)
and the paper's numbers by reference into `paper.py`; budgets come from ablations/presets.toml.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomllib
from scipy import stats as scipy_stats

from vggbench import paper
from vggbench.errors import VggbenchError

SPEC_DIR = Path(__file__).resolve().parent.parent / "ablations"
PRESETS = ("smoke", "quick", "paper")
EXPECTATIONS = ("lower", "no_better", "similar")
CONFIDENCE = 0.95

_SPEC_KEYS = {
    "title",
    "section",
    "claim",
    "choices",
    "default",
    "paper_top1_gap",
    "arms",
    "evaluations",
    "comparisons",
    "presets",
}
_REQUIRED_SPEC_KEYS = {"title", "claim", "choices", "arms", "evaluations", "comparisons"}
_ARM_KEYS = {
    "name",
    "config",
    "scale",
    "init",
    "init_std",
    "preinit_from",
    "init_from",
    "lr",
    "paper",
    "paper_multi",
}
_REQUIRED_ARM_KEYS = {"name", "config", "scale"}
_EVALUATION_KEYS = {"name", "method", "scales"}
_COMPARISON_KEYS = {"baseline", "treatment", "evaluation", "expect", "margin"}
_REQUIRED_COMPARISON_KEYS = {"baseline", "treatment", "evaluation", "expect"}
_PAPER_REF_KEYS = {"table", "net", "scale"}
PRESET_KEYS = {
    "data",
    "width",
    "crop",
    "epochs",
    "batch",
    "limit_train",
    "limit_val",
    "lr",
    "init",
    "init_std",
}


@dataclass(frozen=True)
class PaperRef:
    """Where an arm's published numbers are: a row of Table 3 or 4 by net and train scale."""

    table: int
    net: str
    scale: str

    def result(self) -> paper.PaperResult | None:
        rows = [r for r in paper.paper_results(self.net, self.table) if r.train_scale == self.scale]
        return rows[0] if rows else None


@dataclass(frozen=True)
class Arm:
    name: str
    config: str
    scale: str
    init: str | None = None
    init_std: float | None = None
    preinit_from: str | None = None  # another arm's name: its run of the same seed is the source
    init_from: str | None = None  # another arm's name: fine-tune from its run of the same seed
    lr: float | None = None
    paper: PaperRef | None = None
    paper_multi: PaperRef | None = None

    @property
    def depends_on(self) -> str | None:
        return self.preinit_from or self.init_from

    def paper_result(self, evaluation: Evaluation) -> paper.PaperResult | None:
        """The paper's row for this arm under an evaluation: Table 3 (single scale) or Table 4
        (multi-scale), both measured with dense evaluation, so none for another method."""
        if evaluation.method != "dense":
            return None
        ref = self.paper_multi if evaluation.scales == "multi" and self.paper_multi else self.paper
        return ref.result() if ref else None


@dataclass(frozen=True)
class Evaluation:
    name: str
    method: str
    scales: str


@dataclass(frozen=True)
class Comparison:
    baseline: str
    treatment: str
    evaluation: str
    expect: str
    margin: float = 1.0  # percentage points, for "no_better" and "similar"


@dataclass(frozen=True)
class AblationSpec:
    name: str
    title: str
    section: str
    claim: str
    choices: tuple[str, ...]
    config: str  # the chosen net, from --config or the spec's default
    arms: tuple[Arm, ...]
    evaluations: tuple[Evaluation, ...]
    comparisons: tuple[Comparison, ...]
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    paper_top1_gap: float | None = None
    path: Path | None = None

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def evaluation(self, name: str) -> Evaluation:
        return next(e for e in self.evaluations if e.name == name)


def available_ablations(spec_dir: Path = SPEC_DIR) -> list[str]:
    return sorted(p.stem for p in spec_dir.glob("*.toml") if p.stem != "presets")


def _check_keys(table: dict, allowed: set[str], required: set[str], where: str, path: Path) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise VggbenchError(
            f"{path}: unknown key {unknown[0]!r} in {where}; allowed keys: {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(table))
    if missing:
        raise VggbenchError(f"{path}: missing key {missing[0]!r} in {where}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise VggbenchError(f"{path}: not valid TOML ({error})") from None


def load_presets(spec_dir: Path = SPEC_DIR) -> dict[str, dict[str, Any]]:
    path = spec_dir / "presets.toml"
    presets = _read_toml(path)
    for name, values in presets.items():
        _check_keys(values, PRESET_KEYS, set(), f"preset {name!r}", path)
    return presets


def load_spec(name_or_path: str, config: str | None = None, spec_dir: Path = SPEC_DIR) -> AblationSpec:
    """Read and check a spec; `{config}` in names, configs and paper references becomes `config`."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = spec_dir / f"{name_or_path}.toml"
        if not path.exists():
            raise VggbenchError(
                f"unknown ablation {name_or_path!r}; choose one of {', '.join(available_ablations(spec_dir))}"
            )
    raw = _read_toml(path)
    _check_keys(raw, _SPEC_KEYS, _REQUIRED_SPEC_KEYS, "the spec", path)
    choices = tuple(raw["choices"])
    default = raw.get("default", choices[0])
    chosen = config or default
    if chosen.upper() not in (c.upper() for c in choices):
        raise VggbenchError(
            f"ablation {path.stem!r} cannot use --config {chosen}; choose one of {', '.join(choices)}"
        )
    chosen = next(c for c in choices if c.upper() == chosen.upper())

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{config}", chosen)
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    arms = []
    for index, table in enumerate(raw["arms"]):
        _check_keys(table, _ARM_KEYS, _REQUIRED_ARM_KEYS, f"arms[{index}]", path)
        table = fill(table)
        for ref_key in ("paper", "paper_multi"):
            if ref_key in table:
                _check_keys(
                    table[ref_key], _PAPER_REF_KEYS, _PAPER_REF_KEYS, f"arms[{index}].{ref_key}", path
                )
                table[ref_key] = PaperRef(**table[ref_key])
        arms.append(Arm(**table))
    names = [a.name for a in arms]
    for arm in arms:
        if arm.depends_on and arm.depends_on not in names[: names.index(arm.name)]:
            raise VggbenchError(
                f"{path}: arm {arm.name!r} starts from {arm.depends_on!r}, which is not an earlier arm"
            )
    evaluations = []
    for index, table in enumerate(raw["evaluations"]):
        _check_keys(table, _EVALUATION_KEYS, _EVALUATION_KEYS, f"evaluations[{index}]", path)
        evaluations.append(Evaluation(**table))
    comparisons = []
    for index, table in enumerate(raw["comparisons"]):
        _check_keys(table, _COMPARISON_KEYS, _REQUIRED_COMPARISON_KEYS, f"comparisons[{index}]", path)
        comparison = Comparison(**fill(table))
        if comparison.expect not in EXPECTATIONS:
            raise VggbenchError(
                f"{path}: comparisons[{index}].expect {comparison.expect!r}; choose one of {', '.join(EXPECTATIONS)}"
            )
        unknown = {comparison.baseline, comparison.treatment} - set(names)
        if unknown:
            raise VggbenchError(
                f"{path}: comparisons[{index}] names arm {sorted(unknown)[0]!r}, which the spec does not define"
            )
        if comparison.evaluation not in {e.name for e in evaluations}:
            raise VggbenchError(
                f"{path}: comparisons[{index}] names evaluation {comparison.evaluation!r}, which the spec does not define"
            )
        comparisons.append(comparison)
    presets = raw.get("presets", {})
    for preset, values in presets.items():
        _check_keys(values, PRESET_KEYS, set(), f"presets.{preset}", path)
    return AblationSpec(
        path.stem,
        raw["title"],
        raw.get("section", ""),
        raw["claim"],
        choices,
        chosen,
        tuple(arms),
        tuple(evaluations),
        tuple(comparisons),
        presets,
        raw.get("paper_top1_gap"),
        path,
    )


def preset_budget(spec: AblationSpec, preset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The budget of a preset: presets.toml, then the spec's own table, then the user's overrides."""
    if preset not in PRESETS:
        raise VggbenchError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    spec_dir = spec.path.parent if spec.path else SPEC_DIR
    budget = {**load_presets(spec_dir).get(preset, {}), **spec.presets.get(preset, {})}
    budget.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return budget


# --- Statistics over seeds ---------------------------------------------------------------------


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
    common = sorted(set(baseline) & set(treatment))
    paired = len(common) >= 2 and len(common) == len(baseline) == len(treatment)
    mean = statistics.fmean(treatment.values()) - statistics.fmean(baseline.values())
    if paired:
        deltas = [treatment[s] - baseline[s] for s in common]
        n = len(deltas)
        half = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * statistics.stdev(deltas) / math.sqrt(n)
        return Difference(mean, mean - half, mean + half, True, n)
    a, b = list(baseline.values()), list(treatment.values())
    if len(a) < 2 or len(b) < 2:
        return Difference(mean, None, None, False, min(len(a), len(b)))
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Difference(mean, mean, mean, False, min(len(a), len(b)))
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, dof) * se
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
    evaluation = spec.evaluation(comparison.evaluation)
    numbers = []
    for name in (comparison.baseline, comparison.treatment):
        row = spec.arm(name).paper_result(evaluation)
        if row is None or row.top1 is None:
            return None
        numbers.append(row.top1)
    return round(numbers[1] - numbers[0], 2)


# --- Sharding ----------------------------------------------------------------------------------


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
    if seeds < 1:
        raise VggbenchError(f"--seeds {seeds}: need at least 1 (3 or more for an interval)")
    index, count = shard
    return [(arm, seed) for seed in range(seeds) if seed % count == index - 1 for arm in spec.arms]


def with_budget(arm: Arm, budget: dict[str, Any]) -> Arm:
    """The arm's own init/lr override the preset's."""
    return replace(
        arm,
        init=arm.init or budget.get("init"),
        init_std=arm.init_std or budget.get("init_std"),
        lr=arm.lr or budget.get("lr"),
    )


# --- Running a sweep and analysing it ----------------------------------------------------------

ABLATIONS_KIND = "ablations"


def train_config(arm: Arm, seed: int, budget: dict[str, Any], run_ids: dict[tuple[str, int], str]):
    """The TrainConfig of one arm x seed; an arm that starts from another uses that arm's run."""
    from vggbench.train import TrainConfig

    arm = with_budget(arm, budget)
    options: dict[str, Any] = {
        "net": arm.config,
        "scale": arm.scale,
        "seed": seed,
        "data": budget["data"],
        "width": budget["width"],
        "crop": budget["crop"],
        "epochs": budget["epochs"],
        "batch_size": budget["batch"],
        "limit_train": budget.get("limit_train"),
        "limit_val": budget.get("limit_val"),
    }
    for key, value in (("init", arm.init), ("init_std", arm.init_std), ("lr", arm.lr)):
        if value is not None:
            options[key] = value
    if arm.preinit_from:
        options["preinit_from"] = run_ids[(arm.preinit_from, seed)]
    if arm.init_from:
        options["init_from"] = run_ids[(arm.init_from, seed)]
    return TrainConfig(**options)


def run_ablation(
    spec: AblationSpec,
    *,
    seeds: int,
    preset: str,
    overrides: dict[str, Any] | None = None,
    results_dir: Path,
    shard: tuple[int, int] = (1, 1),
    device: str = "auto",
    quiet: bool = False,
    say=None,
) -> dict[str, Any]:
    """Train and evaluate this shard's arms x seeds (stored runs and evaluations are reused, an
    interrupted run resumes), then analyse every record of the sweep found in the store."""
    from vggbench import train as training

    budget = preset_budget(spec, preset, overrides)
    run_ids: dict[tuple[str, int], str] = {}
    for arm, seed in sweep(spec, seeds, shard):
        config = train_config(arm, seed, budget, run_ids)
        if say:
            say(f"{spec.name}: arm {arm.name!r}, seed {seed} (run {config.run_id})")
        record = training.train(
            config,
            results_dir=results_dir,
            device=device,
            quiet=quiet,
            resume=training.has_checkpoint(results_dir, config),
        )
        run_ids[(arm.name, seed)] = record.id
        for evaluation in spec.evaluations:
            evaluate_run(record.to_json(), evaluation, results_dir, device)
    return analyse(spec, seeds=seeds, preset=preset, budget=budget, results_dir=results_dir)


def _eval_request(run: dict[str, Any], evaluation: Evaluation, results_dir: Path, device: str = "auto"):
    """The `vggbench eval` request of one evaluation of a run, on the run's own validation subset."""
    from vggbench.evaluation import EvalRequest

    config = run["config"]
    return EvalRequest(
        runs=[run["id"]],
        methods=[evaluation.method],
        scales=evaluation.scales,
        data_root=config.get("data_root"),
        limit_val=config.get("limit_val"),
        results_dir=str(results_dir),
        device=device,
    )


def find_eval_record(
    run: dict[str, Any], evaluation: Evaluation, results_dir: Path, evals: list[dict[str, Any]] | None = None
) -> dict[str, Any] | None:
    """The stored evaluation of `run` with this method and scale set, if there is one. `evals`: the
    store's eval records when the caller has read them already (reading them all is the slow part)."""
    from vggbench.scales import parse_train_scale, test_scales
    from vggbench.store import read_records

    expected = list(test_scales(evaluation.scales, parse_train_scale(run["train_scale"])))
    for record in read_records(results_dir, "evals") if evals is None else evals:
        if (
            record["runs"] == [run["id"]]
            and record["method"] == evaluation.method
            and record["test_scales"] == expected
            and record["limits"].get("max_images") is None
            and record["limits"].get("limit_val") == run["config"].get("limit_val")
        ):
            return record
    return None


def evaluate_run(
    run: dict[str, Any], evaluation: Evaluation, results_dir: Path, device: str = "auto"
) -> dict[str, Any]:
    """Evaluate a run with one protocol, or find that evaluation in the store."""
    from vggbench.evaluation import run_eval

    stored = find_eval_record(run, evaluation, results_dir)
    if stored is not None:
        return stored
    return run_eval(_eval_request(run, evaluation, results_dir, device))[0]


def _stored_results(spec: AblationSpec, seeds: int, budget: dict[str, Any], results_dir: Path):
    """(arm, evaluation) -> {seed: eval record} for every record of the sweep already stored."""
    from vggbench.store import read_record, read_records

    evals = read_records(results_dir, "evals")
    found: dict[tuple[str, str], dict[int, dict]] = {}
    run_ids: dict[tuple[str, int], str] = {}
    runs: dict[tuple[str, int], dict] = {}
    for seed in range(seeds):
        for arm in spec.arms:
            if arm.depends_on and (arm.depends_on, seed) not in run_ids:
                continue
            config = train_config(arm, seed, budget, run_ids)
            run = read_record(results_dir, "runs", config.run_id)
            if run is None or run.get("status") != "complete":
                continue
            run_ids[(arm.name, seed)], runs[(arm.name, seed)] = run["id"], run
            for evaluation in spec.evaluations:
                record = find_eval_record(run, evaluation, results_dir, evals)
                if record is not None:
                    found.setdefault((arm.name, evaluation.name), {})[seed] = record
    return found, runs


def stalled_run(run: dict[str, Any]) -> bool:
    """A run whose validation error stayed at chance (training warned): it is kept in the means, so
    that a recipe that stalls now and then shows it, and the report counts it per arm."""
    from vggbench.train import NOT_LEARNING

    return any(warning.startswith(NOT_LEARNING) for warning in run.get("warnings", []))


def analyse(
    spec: AblationSpec, *, seeds: int, preset: str, budget: dict[str, Any], results_dir: Path
) -> dict[str, Any]:
    """Each arm's mean and std over seeds, each comparison's difference, interval and verdict,
    with the paper's numbers beside ours. Stored as one record under <results>/ablations/."""
    from vggbench.store import record_id, write_record

    found, runs = _stored_results(spec, seeds, budget, results_dir)
    arms = []
    for arm in spec.arms:
        for evaluation in spec.evaluations:
            records = found.get((arm.name, evaluation.name), {})
            if not records:
                continue
            row = arm.paper_result(evaluation)
            top1 = summarize([r["top1_err"] for r in records.values()])
            top5 = summarize([r["top5_err"] for r in records.values()])
            curves = [runs[(arm.name, s)].get("epochs", []) for s in sorted(records)]
            stalled = [s for s in sorted(records) if stalled_run(runs[(arm.name, s)])]
            arms.append(
                {
                    "name": arm.name,
                    "config": arm.config,
                    "scale": arm.scale,
                    "evaluation": evaluation.name,
                    "method": evaluation.method,
                    "scales": evaluation.scales,
                    "runs": [r["runs"][0] for r in records.values()],
                    "seeds": sorted(records),
                    "top1_mean": top1.mean,
                    "top1_std": top1.std,
                    "top5_mean": top5.mean,
                    "top5_std": top5.std,
                    "macs_per_image": statistics.fmean(r["macs_per_image"] for r in records.values()),
                    "init": next(iter(runs[(arm.name, s)]["init"] for s in records)),
                    "curves": curves,
                    "stalled_seeds": stalled,
                    "paper_top1": row.top1 if row else None,
                    "paper_top5": row.top5 if row else None,
                }
            )
    comparisons = []
    for comparison in spec.comparisons:
        base = found.get((comparison.baseline, comparison.evaluation), {})
        treat = found.get((comparison.treatment, comparison.evaluation), {})
        if not base or not treat:
            continue
        diff = difference(
            {s: r["top1_err"] for s, r in base.items()}, {s: r["top1_err"] for s, r in treat.items()}
        )
        entry = {
            "baseline": comparison.baseline,
            "treatment": comparison.treatment,
            "evaluation": comparison.evaluation,
            "expect": comparison.expect,
            "margin": comparison.margin,
            "top1": diff.top1,
            "ci95_low": None if diff.ci95_low is None else float(diff.ci95_low),
            "ci95_high": None if diff.ci95_high is None else float(diff.ci95_high),
            "paired": diff.paired,
            "n": diff.n,
            "verdict": verdict(diff, comparison.expect, comparison.margin),
            "paper_top1": paper_difference(spec, comparison),
        }
        if diff.ci95_low is None:
            entry["note"] = "one seed only: no interval; run with --seeds 3 or more for a verdict"
        comparisons.append(entry)
    primary = comparisons[0] if comparisons else None
    result = {
        "kind": "ablation",
        "ablation": spec.name,
        "title": spec.title,
        "section": spec.section,
        "claim": spec.claim,
        "config": spec.config,
        "preset": preset,
        "budget": budget,
        "seeds": seeds,
        "arms": arms,
        "comparisons": comparisons,
        "difference": {k: primary[k] for k in ("top1", "ci95_low", "ci95_high")} if primary else None,
        "verdict": primary["verdict"] if primary else "incomplete",
        "paper": {
            "claim": spec.claim,
            "section": spec.section,
            "top1_difference": primary["paper_top1"] if primary else None,
        },
        "runs_found": len(runs),
        "runs_expected": seeds * len(spec.arms),
        "cost": {
            "train_s": sum(run.get("train_time_s") or run["wall_time_s"] for run in runs.values()),
            "eval_s": sum(record["seconds"] for records in found.values() for record in records.values()),
            "machines": sorted({run.get("machine") or run["device"] for run in runs.values()}),
        },
    }
    result["id"] = record_id(
        {"ablation": spec.name, "config": spec.config, "preset": preset, "budget": budget, "seeds": seeds}
    )
    write_record(results_dir, ABLATIONS_KIND, result["id"], result)
    return result
