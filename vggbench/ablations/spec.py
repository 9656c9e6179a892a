"""The spec of an ablation (ablations/<name>.toml), read and checked, and the budgets it runs at
(ablations/presets.toml, then the spec's own [presets.NAME] table, then the user's overrides)."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomllib

from vggbench import paper
from vggbench.errors import VggbenchError

SPEC_DIR = Path(__file__).resolve().parent.parent.parent / "ablations"
PRESETS = ("smoke", "quick", "paper")
EXPECTATIONS = ("lower", "no_better", "similar")
NET_PLACEHOLDER = "{net}"  # in a spec's names, nets, paper references and comparisons: the chosen net

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
    "net",
    "scale",
    "init",
    "init_std",
    "preinit_from",
    "init_from",
    "lr",
    "paper",
    "paper_multi",
}
_REQUIRED_ARM_KEYS = {"name", "net", "scale"}
_PAPER_REF_KEYS = {"table", "net", "scale"}
_EVALUATION_KEYS = {"name", "method", "scales"}
_COMPARISON_KEYS = {"baseline", "treatment", "evaluation", "expect", "margin"}
_REQUIRED_COMPARISON_KEYS = {"baseline", "treatment", "evaluation", "expect"}


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
class EvalProtocol:
    """A test protocol every arm is evaluated with (a spec's [[evaluations]] table): a method and a
    scale set, as `vggbench eval` takes them."""

    name: str
    method: str
    scales: str


@dataclass(frozen=True)
class Arm:
    """One way of training: a net at a train scale, with its own init or learning rate if it has one."""

    name: str
    net: str
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

    def paper_result(self, protocol: EvalProtocol) -> paper.PaperResult | None:
        """The paper's row for this arm under a protocol: Table 3 (single scale) or Table 4
        (multi-scale), both measured with dense evaluation, so none for another method."""
        if protocol.method != "dense":
            return None
        ref = self.paper_multi if protocol.scales == "multi" and self.paper_multi else self.paper
        return ref.result() if ref else None


@dataclass(frozen=True)
class Comparison:
    """treatment against baseline under one evaluation, and what the paper says of the difference."""

    baseline: str
    treatment: str
    evaluation: str
    expect: str
    margin: float = 1.0  # percentage points, for "no_better" and "similar"


@dataclass(frozen=True)
class Budget:
    """What every arm of a sweep trains on and for how long."""

    data: str
    width: float
    crop: int
    epochs: int
    batch: int
    lr: float
    limit_train: int | None = None
    limit_val: int | None = None
    init: str | None = None  # for arms that set none
    init_std: float | None = None


PRESET_KEYS = {f.name for f in fields(Budget)}


@dataclass(frozen=True)
class AblationSpec:
    """One ablation, read and checked: the claim under test, its arms, protocols and comparisons."""

    name: str
    title: str
    section: str
    claim: str
    choices: tuple[str, ...]
    net: str  # the chosen net, from --config or the spec's default
    arms: tuple[Arm, ...]
    evaluations: tuple[EvalProtocol, ...]
    comparisons: tuple[Comparison, ...]
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)  # the spec's own budget keys
    paper_top1_gap: float | None = None  # a gap the paper states in its text, from paper.py
    path: Path | None = None

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def evaluation(self, name: str) -> EvalProtocol:
        return next(e for e in self.evaluations if e.name == name)


def available_ablations(spec_dir: Path = SPEC_DIR) -> list[str]:
    return sorted(p.stem for p in spec_dir.glob("*.toml") if p.stem != "presets")


def load_presets(spec_dir: Path = SPEC_DIR) -> dict[str, dict[str, Any]]:
    path = spec_dir / "presets.toml"
    presets = _read_toml(path)
    for name, values in presets.items():
        _check_keys(values, PRESET_KEYS, set(), f"preset {name!r}", path)
    return presets


def load_spec(name_or_path: str, net: str | None = None, spec_dir: Path = SPEC_DIR) -> AblationSpec:
    """Read and check a spec; `{net}` in its names, nets, paper references and comparisons becomes
    `net` (the spec's default when None)."""
    path = _spec_path(name_or_path, spec_dir)
    raw = _read_toml(path)
    _check_keys(raw, _SPEC_KEYS, _REQUIRED_SPEC_KEYS, "the spec", path)
    choices = tuple(raw["choices"])
    chosen = _chosen_net(net or raw.get("default", choices[0]), choices, path)
    arms = _arms(_fill(raw["arms"], chosen), path)
    evaluations = _evaluations(raw["evaluations"], path)
    return AblationSpec(
        name=path.stem,
        title=raw["title"],
        section=raw.get("section", ""),
        claim=raw["claim"],
        choices=choices,
        net=chosen,
        arms=arms,
        evaluations=evaluations,
        comparisons=_comparisons(_fill(raw["comparisons"], chosen), arms, evaluations, path),
        presets=_spec_presets(raw.get("presets", {}), path),
        paper_top1_gap=_paper_number(raw.get("paper_top1_gap"), path),
        path=path,
    )


def preset_budget(spec: AblationSpec, preset: str, overrides: dict[str, Any] | None = None) -> Budget:
    """The budget of a preset: presets.toml, then the spec's own table, then the user's overrides."""
    if preset not in PRESETS:
        raise VggbenchError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    spec_dir = spec.path.parent if spec.path else SPEC_DIR
    values = {**load_presets(spec_dir).get(preset, {}), **spec.presets.get(preset, {})}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    missing = [f.name for f in fields(Budget) if f.default is MISSING and f.name not in values]
    if missing:
        raise VggbenchError(
            f"preset {preset!r} sets no {missing[0]!r}; "
            f"add it to presets.toml or to the spec's [presets.{preset}] table"
        )
    return Budget(**values)


def with_budget(arm: Arm, budget: Budget) -> Arm:
    """The arm's own init/lr override the preset's."""
    return replace(
        arm,
        init=arm.init or budget.init,
        init_std=arm.init_std or budget.init_std,
        lr=arm.lr or budget.lr,
    )


# --- Reading a spec, one part at a time ----------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise VggbenchError(f"{path}: not valid TOML ({error})") from None


def _check_keys(table: dict, allowed: set[str], required: set[str], where: str, path: Path) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise VggbenchError(
            f"{path}: unknown key {unknown[0]!r} in {where}; allowed keys: {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(table))
    if missing:
        raise VggbenchError(f"{path}: missing key {missing[0]!r} in {where}")


def _spec_path(name_or_path: str, spec_dir: Path) -> Path:
    """A .toml path as given, or a spec's name in `spec_dir`."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        return path
    path = spec_dir / f"{name_or_path}.toml"
    if not path.exists():
        raise VggbenchError(
            f"unknown ablation {name_or_path!r}; choose one of {', '.join(available_ablations(spec_dir))}"
        )
    return path


def _chosen_net(net: str, choices: tuple[str, ...], path: Path) -> str:
    """The spec's spelling of the net the user chose (the CLI takes any case)."""
    for choice in choices:
        if choice.upper() == net.upper():
            return choice
    raise VggbenchError(
        f"ablation {path.stem!r} cannot use --config {net}; choose one of {', '.join(choices)}"
    )


def _fill(value: Any, net: str) -> Any:
    """The spec's tables with the placeholder replaced by the chosen net."""
    if isinstance(value, str):
        return value.replace(NET_PLACEHOLDER, net)
    if isinstance(value, dict):
        return {k: _fill(v, net) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, net) for v in value]
    return value


def _arms(tables: list[dict[str, Any]], path: Path) -> tuple[Arm, ...]:
    arms = tuple(_arm(table, f"arms[{index}]", path) for index, table in enumerate(tables))
    names = [a.name for a in arms]
    for index, arm in enumerate(arms):
        if arm.depends_on and arm.depends_on not in names[:index]:
            raise VggbenchError(
                f"{path}: arm {arm.name!r} starts from {arm.depends_on!r}, which is not an earlier arm"
            )
    return arms


def _arm(table: dict[str, Any], where: str, path: Path) -> Arm:
    _check_keys(table, _ARM_KEYS, _REQUIRED_ARM_KEYS, where, path)
    refs = {}
    for key in ("paper", "paper_multi"):
        if key in table:
            _check_keys(table[key], _PAPER_REF_KEYS, _PAPER_REF_KEYS, f"{where}.{key}", path)
            refs[key] = PaperRef(**table[key])
    return Arm(**{**table, **refs})


def _evaluations(tables: list[dict[str, Any]], path: Path) -> tuple[EvalProtocol, ...]:
    for index, table in enumerate(tables):
        _check_keys(table, _EVALUATION_KEYS, _EVALUATION_KEYS, f"evaluations[{index}]", path)
    return tuple(EvalProtocol(**table) for table in tables)


def _comparisons(
    tables: list[dict[str, Any]], arms: tuple[Arm, ...], evaluations: tuple[EvalProtocol, ...], path: Path
) -> tuple[Comparison, ...]:
    arm_names, evaluation_names = {a.name for a in arms}, {e.name for e in evaluations}
    comparisons = []
    for index, table in enumerate(tables):
        where = f"comparisons[{index}]"
        _check_keys(table, _COMPARISON_KEYS, _REQUIRED_COMPARISON_KEYS, where, path)
        comparison = Comparison(**table)
        if comparison.expect not in EXPECTATIONS:
            raise VggbenchError(
                f"{path}: {where}.expect {comparison.expect!r}; choose one of {', '.join(EXPECTATIONS)}"
            )
        unknown = {comparison.baseline, comparison.treatment} - arm_names
        if unknown:
            raise VggbenchError(
                f"{path}: {where} names arm {sorted(unknown)[0]!r}, which the spec does not define"
            )
        if comparison.evaluation not in evaluation_names:
            raise VggbenchError(
                f"{path}: {where} names evaluation {comparison.evaluation!r}, which the spec does not define"
            )
        comparisons.append(comparison)
    return tuple(comparisons)


def _spec_presets(presets: dict[str, dict[str, Any]], path: Path) -> dict[str, dict[str, Any]]:
    for preset, values in presets.items():
        _check_keys(values, PRESET_KEYS, set(), f"presets.{preset}", path)
    return presets


def _paper_number(name: str | None, path: Path) -> float | None:
    """A number the paper states in its text, named by its constant in paper.py (its one home)."""
    if name is None:
        return None
    value = getattr(paper, str(name), None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise VggbenchError(f"{path}: paper_top1_gap {name!r} is not a number of vggbench/paper.py")
    return float(value)
