"""The spec of an ablation (ablations/<name>.toml), read and checked, and the budgets it runs at
(ablations/presets.toml, then the spec's own [presets.NAME] table, then the user's overrides).

The specs ship inside the package as `vggbench/specs` (in a checkout, a link to the top-level
ablations/ folder, which a wheel copies), found with importlib.resources."""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from vggbench import paper
from vggbench.data import INPUT_RANGES
from vggbench.errors import VggbenchError
from vggbench.train.config import DEFAULT_INIT_STD, DEFAULT_PATIENCE, STOP_RULES

#: The packaged specs and presets: a real folder wherever the package is installed from files (a wheel,
#: an editable install, a checkout on sys.path), so it is a Path for the spec's `path` and its errors.
SPEC_DIR = Path(str(resources.files("vggbench").joinpath("specs")))
PRESETS_FILE = "presets.toml"
PRESETS = ("smoke", "quick", "gpu", "paper")
EXPECTATIONS = ("lower", "no_better", "similar")
_JITTERED = "{}:{}".format(*paper.JITTER_RANGE)  # "256:512", Table 5's train scale
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
    "chain",
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
    "lrn_alpha",
    "input_range",
    "paper",
    "paper_multi",
}
_REQUIRED_ARM_KEYS = {"name", "net", "scale"}
_PAPER_REF_KEYS = {"table", "net", "scale"}
_EVALUATION_KEYS = {"name", "method", "scales", "max_images", "arms"}
_REQUIRED_EVALUATION_KEYS = {"name", "method", "scales"}
_COMPARISON_KEYS = {"baseline", "treatment", "evaluation", "expect", "margin"}
_REQUIRED_COMPARISON_KEYS = {"baseline", "treatment", "evaluation", "expect"}
#: A budget's design: arms with `init_from` fine-tune another arm's run (the paper's chains), or every
#: arm trains from scratch for the same epochs (`chain = false`, `vggbench ablate --from-scratch`).
CHAIN, FROM_SCRATCH = "chain", "from scratch"


@dataclass(frozen=True)
class PaperRef:
    """Where an arm's published numbers are: a row of Table 3 or 4 by net and train scale."""

    table: int
    net: str
    scale: str

    def result(self, method: str | None = None) -> paper.PaperResult | None:
        """The row; Table 5 has one per method, so `method` picks it there."""
        rows = [
            r
            for r in paper.paper_results(self.net, self.table)
            if r.train_scale == self.scale and (method is None or r.method == method)
        ]
        return rows[0] if rows else None


@dataclass(frozen=True)
class EvalProtocol:
    """A test protocol the arms are evaluated with (a spec's [[evaluations]] table): a method and a
    scale set, as `vggbench eval` takes them; optionally on a stratified subset of `max_images` of
    the run's validation images (`eval --max-images`), and only for some arms (`arms`, by name;
    every arm when None)."""

    name: str
    method: str
    scales: str
    max_images: int | None = None
    arms: tuple[str, ...] | None = None

    def applies_to(self, arm: str) -> bool:
        return self.arms is None or arm in self.arms


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
    lr: float | None = None  # None: the budget's (its finetune_lr for an arm with init_from)
    lrn_alpha: float | None = None  # Krizhevsky's LRN alpha (nets with LRN); None: the paper's
    input_range: str | None = None  # "0-255" or "0-1"; None: the budget's, else the paper's
    paper: PaperRef | None = None
    paper_multi: PaperRef | None = None

    @property
    def depends_on(self) -> str | None:
        return self.preinit_from or self.init_from

    def paper_result(self, protocol: EvalProtocol) -> paper.PaperResult | None:
        """The paper's row for this arm under a protocol: Table 3 (single scale) or Table 4
        (multi-scale), both measured with dense evaluation, so none for another method; at the
        jitter scale set Q = {256, 384, 512}, Table 5's row of the method for a jittered arm."""
        if protocol.scales == "jitter" and self.paper and self.paper.scale == _JITTERED:
            return PaperRef(5, self.paper.net, self.paper.scale).result(protocol.method)
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
    """What every arm of a sweep trains on and for how long. An arm that fine-tunes another's run
    (init_from) trains at `finetune_lr` for `finetune_epochs` (the paper: 1e-2 -> 1e-3); `design`
    says whether the sweep chained its arms so (CHAIN) or trained every arm from scratch."""

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
    input_range: str | None = None  # for arms that set none; None: the paper's 0-255
    finetune_lr: float | None = None  # None: lr / 10
    finetune_epochs: int | None = None  # None: epochs
    #: "schedule": every run ends by the paper's rule (the plateau after the last lr decrease),
    #: epochs / finetune_epochs being caps; None: after exactly that many epochs
    stop: str | None = None
    patience: int | None = None  # epochs without a better val error before lr / 10 (default 2)
    max_lr_decreases: int | None = None  # None: the paper's 3; 0 is a fixed lr
    bf16: bool = False  # bf16 autocast (train --bf16): a GPU preset's speed, part of the run ids
    design: str = CHAIN  # set from the spec (chain = false / --from-scratch), not a preset key

    def __post_init__(self) -> None:
        """Fine-tuning defaults: the paper's lr / 10 (1e-2 -> 1e-3) and the preset's epochs."""
        if self.finetune_lr is None:
            object.__setattr__(self, "finetune_lr", self.lr / 10)
        if self.finetune_epochs is None:
            object.__setattr__(self, "finetune_epochs", self.epochs)


PRESET_KEYS = {f.name for f in fields(Budget)} - {"design"}


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
    chain: bool = True  # False: init_from was dropped, every arm trains from scratch

    @property
    def design(self) -> str:
        """CHAIN when some arm fine-tunes another arm's run, else FROM_SCRATCH."""
        return CHAIN if any(a.init_from for a in self.arms) else FROM_SCRATCH

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def evaluation(self, name: str) -> EvalProtocol:
        return next(e for e in self.evaluations if e.name == name)


def available_ablations(spec_dir: Path = SPEC_DIR) -> list[str]:
    return sorted(p.stem for p in spec_dir.glob("*.toml") if p.name != PRESETS_FILE)


def presets_path(spec_dir: Path) -> Path:
    """The presets a spec folder runs at: its own presets.toml, else the packaged one, so a spec file
    anywhere on disk runs at the shipped budgets."""
    path = spec_dir / PRESETS_FILE
    return path if path.is_file() else SPEC_DIR / PRESETS_FILE


def load_presets(spec_dir: Path = SPEC_DIR) -> dict[str, dict[str, Any]]:
    path = presets_path(spec_dir)
    presets = _read_toml(path)
    for name, values in presets.items():
        _check_keys(values, PRESET_KEYS, set(), f"preset {name!r}", path)
        _check_budget_values(values, f"preset {name!r}", str(path))
    return presets


def load_spec(
    name_or_path: str, net: str | None = None, spec_dir: Path = SPEC_DIR, chain: bool | None = None
) -> AblationSpec:
    """Read and check a spec; `{net}` in its names, nets, paper references and comparisons becomes
    `net` (the spec's default when None). `chain` False (`--from-scratch`), or the spec's own
    `chain = false` when `chain` is None, drops every arm's init_from: each arm trains from scratch."""
    path = _spec_path(name_or_path, spec_dir)
    raw = _read_toml(path)
    _check_keys(raw, _SPEC_KEYS, _REQUIRED_SPEC_KEYS, "the spec", path)
    choices = tuple(raw["choices"])
    chosen = _chosen_net(net or raw.get("default", choices[0]), choices, path)
    spec_chain = raw.get("chain", True)
    if not isinstance(spec_chain, bool):
        raise VggbenchError(f"{path}: chain = {spec_chain!r}; write chain = true or chain = false")
    chained = spec_chain if chain is None else chain
    arms = _arms(_fill(raw["arms"], chosen), path)
    if not chained:
        arms = tuple(replace(arm, init_from=None) for arm in arms)
    evaluations = _evaluations(_fill(raw["evaluations"], chosen), arms, path)
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
        chain=chained,
    )


def preset_budget(spec: AblationSpec, preset: str, overrides: dict[str, Any] | None = None) -> Budget:
    """The budget of a preset: presets.toml, then the spec's own table, then the user's overrides
    (keys of Budget; None leaves the preset's). finetune_lr defaults to lr / 10 (the paper's
    1e-2 -> 1e-3) and finetune_epochs to epochs; the design is the spec's."""
    if preset not in PRESETS:
        raise VggbenchError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    spec_dir = spec.path.parent if spec.path else SPEC_DIR
    values = preset_values(spec, preset)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    _check_budget_values(given, "", "", cli=True)
    values.update(given)
    missing = [f.name for f in fields(Budget) if f.default is MISSING and f.name not in values]
    if missing:
        raise VggbenchError(
            f"preset {preset!r} sets no {missing[0]!r}; "
            f"add it to presets.toml or to the spec's [presets.{preset}] table"
        )
    budget = Budget(**values, design=spec.design)
    where = f"{presets_path(spec_dir)}" + (f" and {spec.path.name}'s [presets.{preset}]" if spec.path else "")
    _check_schedule(budget, preset, where)
    return budget


def preset_values(spec: AblationSpec, preset: str) -> dict[str, Any]:
    """The budget keys a preset sets for a spec: presets.toml's, then the spec's own table's."""
    spec_dir = spec.path.parent if spec.path else SPEC_DIR
    return {**load_presets(spec_dir).get(preset, {}), **spec.presets.get(preset, {})}


def _check_schedule(budget: Budget, preset: str, where: str) -> None:
    """The paper's stopping rule needs lr decreases and caps of at least the patience; `where`
    names the files the preset comes from."""
    if budget.stop != "schedule":
        return
    patience = budget.patience or DEFAULT_PATIENCE
    if budget.max_lr_decreases == 0:
        raise VggbenchError(
            f"preset {preset!r} ({where}) asks for stop = 'schedule' with a fixed lr (max_lr_decreases = 0); "
            "the rule stops at the plateau after the last decrease: allow decreases or drop stop"
        )
    cap = min(budget.epochs, budget.finetune_epochs)
    if cap < patience:
        raise VggbenchError(
            f"preset {preset!r} ({where}): epoch cap {cap} is below the patience {patience}, so the "
            "schedule could never lower the lr; raise epochs (and finetune_epochs) or lower patience"
        )


def with_budget(arm: Arm, budget: Budget) -> Arm:
    """The arm's own init/lr/input range override the preset's; an arm that fine-tunes another
    arm's run (init_from) gets the budget's finetune_lr unless it sets its own lr."""
    return replace(
        arm,
        init=arm.init or budget.init,
        init_std=arm.init_std or budget.init_std,
        lr=arm.lr or (budget.finetune_lr if arm.init_from else budget.lr),
        input_range=arm.input_range or budget.input_range,
    )


def arm_epochs(arm: Arm, budget: Budget) -> int:
    """The epochs an arm trains: finetune_epochs when it fine-tunes another arm's run."""
    return budget.finetune_epochs if arm.init_from else budget.epochs


# --- Reading a spec, one part at a time ----------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise VggbenchError(f"{path}: not valid TOML ({error})") from None
    except OSError as error:
        raise VggbenchError(f"cannot read spec file {path}: {error.strerror}") from None


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
    """A path as given (a .toml name, or one with a folder), or a spec's name in `spec_dir`."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or len(path.parts) > 1:
        if path.is_dir():
            raise VggbenchError(f"spec file {path} is a directory; name a .toml file in it")
        if not path.is_file():
            raise VggbenchError(
                f"no spec file {path}; name an existing .toml file or an ablation: "
                f"{', '.join(available_ablations(spec_dir))}"
            )
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
        if arm.depends_on and arm.depends_on not in names:
            raise VggbenchError(
                f"{path}: arm {arm.name!r} starts from {arm.depends_on!r}, which is not an arm of this "
                f"spec; name an arm above it ({', '.join(repr(n) for n in names[:index]) or 'none yet'})"
            )
        if arm.depends_on and arm.depends_on not in names[:index]:
            raise VggbenchError(
                f"{path}: arm {arm.name!r} starts from {arm.depends_on!r}, which is not an earlier arm; "
                f"move {arm.depends_on!r} above {arm.name!r}"
            )
    return arms


def _arm(table: dict[str, Any], where: str, path: Path) -> Arm:
    _check_keys(table, _ARM_KEYS, _REQUIRED_ARM_KEYS, where, path)
    refs = {}
    for key in ("paper", "paper_multi"):
        if key in table:
            _check_keys(table[key], _PAPER_REF_KEYS, _PAPER_REF_KEYS, f"{where}.{key}", path)
            refs[key] = PaperRef(**table[key])
    name = f"{where} ({table['name']!r})"
    if "lrn_alpha" in table and not _positive(table["lrn_alpha"]):
        raise VggbenchError(
            f"{path}: lrn_alpha = {table['lrn_alpha']!r} in {name} must be a positive number; "
            f"Krizhevsky's (the paper's) is {paper.LRN_ALPHA}"
        )
    _check_budget_values(table, name, str(path))
    return Arm(**{**table, **refs})


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def _check_budget_values(values: dict[str, Any], where: str, path: str, cli: bool = False) -> None:
    """The numbers a preset, a spec's presets table, an arm or the command line may set: init
    std, input range, fine-tuning lr and epochs. An error names the file (or option) and the fix."""
    checks = {
        "init_std": (_positive, f"must be a positive number; the paper's is {DEFAULT_INIT_STD}"),
        "input_range": (
            lambda v: v in INPUT_RANGES,
            f"is not an input range; choose {' or '.join(INPUT_RANGES)}",
        ),
        "finetune_lr": (
            _positive,
            "must be a positive number; the paper fine-tunes at 1e-3 (leave it out for lr / 10)",
        ),
        "finetune_epochs": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "must be a whole number of at least 1 (leave it out for the preset's epochs)",
        ),
        "patience": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "must be a whole number of epochs, at least 1 (the paper does not say; 1 suits short epochs)",
        ),
        "max_lr_decreases": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "must be a whole number, at least 0 (the paper's is 3)",
        ),
        "bf16": (lambda v: isinstance(v, bool), "must be true or false (bf16 autocast on a GPU)"),
        "stop": (
            lambda v: v in STOP_RULES,
            f"is not a stopping rule; choose {' or '.join(STOP_RULES)} (the paper's)",
        ),
    }
    for key, (ok, fix) in checks.items():
        if key in values and values[key] is not None and not ok(values[key]):
            what = (
                f"--{key.replace('_', '-')} {values[key]}"
                if cli
                else f"{path}: {key} = {values[key]!r} in {where}"
            )
            raise VggbenchError(f"{what} {fix}")


def _evaluations(tables: list[dict[str, Any]], arms: tuple[Arm, ...], path: Path) -> tuple[EvalProtocol, ...]:
    names = [a.name for a in arms]
    protocols = []
    for index, table in enumerate(tables):
        where = f"evaluations[{index}]"
        _check_keys(table, _EVALUATION_KEYS, _REQUIRED_EVALUATION_KEYS, where, path)
        max_images = table.get("max_images")
        if max_images is not None and (
            not isinstance(max_images, int) or isinstance(max_images, bool) or max_images < 1
        ):
            raise VggbenchError(
                f"{path}: max_images = {max_images!r} in {where} must be a whole number of at least 1 "
                "(e.g. 2000), or left out for the whole validation split"
            )
        only = table.get("arms")
        if only is not None:
            if not isinstance(only, list) or not only:
                raise VggbenchError(
                    f"{path}: arms in {where} must be a list of arm names, e.g. arms = [{names[0]!r}]; "
                    "leave it out to evaluate every arm"
                )
            unknown = [a for a in only if a not in names]
            if unknown:
                raise VggbenchError(
                    f"{path}: {where} evaluates arm {unknown[0]!r}, which the spec does not define; "
                    f"name one of {', '.join(repr(n) for n in names)}"
                )
            only = tuple(only)
        protocols.append(EvalProtocol(**{**table, "arms": only}))
    return tuple(protocols)


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
        protocol = next(e for e in evaluations if e.name == comparison.evaluation)
        for arm in (comparison.baseline, comparison.treatment):
            if not protocol.applies_to(arm):
                raise VggbenchError(
                    f"{path}: {where} compares arm {arm!r} under evaluation {protocol.name!r}, which does "
                    f"not evaluate it; add {arm!r} to that evaluation's arms"
                )
        comparisons.append(comparison)
    return tuple(comparisons)


def _spec_presets(presets: dict[str, dict[str, Any]], path: Path) -> dict[str, dict[str, Any]]:
    for preset, values in presets.items():
        _check_keys(values, PRESET_KEYS, set(), f"presets.{preset}", path)
        _check_budget_values(values, f"presets.{preset}", str(path))
    return presets


def _paper_number(name: str | None, path: Path) -> float | None:
    """A number the paper states in its text, named by its constant in paper.py (its one home)."""
    if name is None:
        return None
    value = getattr(paper, str(name), None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise VggbenchError(f"{path}: paper_top1_gap {name!r} is not a number of vggbench/paper.py")
    return float(value)
