"""Browsing the results store: its runs as rows to list, one run in detail, runs side by side, and
every record flattened for pandas. The `vggbench runs` commands are a thin layer over these.

Only the JSON records are read (no torch), so listing a store is instant; a run is named by its id
or a unique prefix of it, as git names commits (`store.find_run`).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vggbench import store
from vggbench.ablations.spec import load_presets
from vggbench.ablations.stats import top5_comparable
from vggbench.architectures import get_architecture
from vggbench.errors import VggbenchError
from vggbench.recipe import SETTINGS, at_chance, preset_settings, setting, shared_by_arms
from vggbench.scales import parse_train_scale
from vggbench.store import EpochMetrics, EvalRecord, RunRecord

if TYPE_CHECKING:
    import pandas as pd

#: train.checkpoint's CHECKPOINTS and LAST_CHECKPOINT (not imported: that module loads torch);
#: a test keeps them equal.
CHECKPOINTS, LAST_CHECKPOINT = "checkpoints", "last.pt"

#: The columns of `runs list` (JSON and CSV keep these snake_case names and raw values).
RUN_COLUMNS = [
    "id",
    "net",
    "dataset",
    "width",
    "crop",
    "train_scale",
    "seed",
    "budget",
    "epochs",
    "stopped_by",
    "init",
    "top1_err",
    "top5_err",
    "train_time_s",
    "status",
    "created",
]
#: Its terminal, Markdown and LaTeX headers (epochs and stopped_by show as one column, `trained`;
#: budget is the epochs given and the stopping rule).
RUN_HEADERS = {
    "train_scale": "S",
    "top1_err": "top-1 err %",
    "top5_err": "top-5 err %",
    "train_time_s": "train s",
}
INTERRUPTED = "checkpoint only"  # a run with a checkpoint and no record: interrupted or running now


# --- Selecting runs -----------------------------------------------------------------------------


def select_runs(
    root: Path,
    config: str | None = None,
    data: str | None = None,
    scale: str | None = None,
    preset: str | None = None,
) -> list[RunRecord]:
    """The stored runs (oldest first) that match every filter given: the net (--config), the data
    spec or dataset name, the train scale S, and an ablation preset's shared budget (`matches_preset`)."""
    config = get_architecture(config).name if config is not None else None
    scale = str(parse_train_scale(scale)) if scale is not None else None  # "256:256" is "256"
    budget = preset_values(preset) if preset is not None else None
    chosen = []
    for run in store.read_runs(root):
        if config is not None and run.net != config:
            continue
        if data is not None and data not in (run.data.spec, run.dataset):
            continue
        if scale is not None and run.train_scale != scale:
            continue
        if budget is not None and not matches_preset(run, budget):
            continue
        chosen.append(run)
    return chosen


def preset_values(preset: str) -> dict[str, Any]:
    """The shared values of an ablation preset (ablations/presets.toml), as they appear in a run's
    config; an unknown preset names the known ones."""
    values = _preset(preset)
    return {s.name: values.get(s.preset) for s in shared_by_arms()}


def _preset(preset: str) -> dict[str, Any]:
    presets = load_presets()
    if preset not in presets:
        raise VggbenchError(f"unknown preset {preset!r}; choose one of {', '.join(presets)}")
    return presets[preset]


def preset_defaults(preset: str, fine_tune: bool = False) -> dict[str, Any]:
    """`train --preset`: the settings an ablation preset sets (its budget: data, width, crop, batch,
    image limits, epochs, lr, init, stopping rule, ...), by setting name. A run that fine-tunes
    another (`fine_tune`) gets a tenth of the preset's lr, as `ablate`'s fine-tuned arms do."""
    values = _preset(preset)
    found = {s.name: values[s.preset] for s in preset_settings() if s.preset in values}
    if fine_tune and "lr" in found:
        found["lr"] = found["lr"] / 10
    return found


def matches_preset(run: RunRecord, budget: dict[str, Any]) -> bool:
    """Whether the run trained at this preset budget: the same values of the settings every arm
    keeps (`recipe.shared_by_arms`: data, width, crop, batch, image limits, stopping rule, ...), a
    setting the preset leaves out meaning the training default. The arms' own lr, epochs and init
    are not part of a preset, so they do not decide."""
    for key, wanted in budget.items():
        if key == "patience" and wanted is None:
            continue  # the preset leaves the patience to the training default, whatever it is
        default = setting(key).default
        if run.config.get(key, default) != (default if wanted is None else wanted):
            return False
    return True


def interrupted_runs(root: Path) -> list[str]:
    """Ids of runs with a checkpoint but no record: interrupted (resume them with --resume) or
    still training."""
    folder = Path(root) / CHECKPOINTS
    if not folder.is_dir():
        return []
    records = Path(root) / store.RUNS
    return sorted(
        p.name
        for p in folder.iterdir()
        if (p / LAST_CHECKPOINT).exists() and not (records / f"{p.name}.json").exists()
    )


def get_run(root: Path, run_id_or_prefix: str) -> RunRecord:
    """One stored run by id or unique prefix; an unknown or ambiguous one is a one-line error."""
    run_id = store.find_run(root, run_id_or_prefix)
    record = store.read_run(root, run_id)
    assert record is not None  # find_run found its file
    return record


def get_runs(root: Path, ids: Sequence[str], at_least: int = 1) -> list[RunRecord]:
    """Several stored runs by ids or prefixes, each once, in the order given."""
    runs = [get_run(root, i) for i in ids]
    seen: dict[str, str] = {}
    for given, run in zip(ids, runs):
        if run.id in seen:
            raise VggbenchError(
                f"{given!r} and {seen[run.id]!r} name the same run {run.id}; give different runs"
            )
        seen[run.id] = given
    if len(runs) < at_least:
        raise VggbenchError(
            f"give at least {at_least} runs to compare (got {len(runs)}); `vggbench runs list` shows the ids"
        )
    return runs


def run_evals(root: Path, run_id: str) -> list[EvalRecord]:
    """The stored evaluations of a run, alone or in a fusion, oldest first."""
    return [e for e in store.read_evals(root) if run_id in e.runs]


# --- A run in words ---------------------------------------------------------------------------------


def plural(count: int, word: str) -> str:
    """'1 epoch', '3 epochs', '10 classes'."""
    return f"{count} {word}{'' if count == 1 else 'es' if word.endswith('s') else 's'}"


def outcome(run: RunRecord) -> str:
    """What a run reached and how it ended, e.g. 'val top-1 err 41.25% top-5 err 10.31% after 2
    epochs (schedule)': the errors named as errors, as every summary line says them; a run at
    chance says so ('..., stalled at chance: 90% for 10 classes')."""
    errors = f"val top-1 err {run.top1_err:.2f}% top-5 err {run.top5_err:.2f}%"
    epochs = plural(len(run.epochs), "epoch")
    if stalled_at_chance(run):
        chance = f"{100 * (1 - 1 / run.num_classes):.0f}% for {plural(run.num_classes, 'class')}"
        return f"{errors} after {epochs}, stalled at chance ({chance})"
    return f"{errors} after {epochs} ({run.stopped_by})"


def stalled_at_chance(run: RunRecord) -> bool:
    """Whether the run ended having learned nothing: stopped as stalled, at chance."""
    return run.stopped_by == "stalled" and at_chance(run.top1_err, run.num_classes)


#: The crop up to which a run is at the quick preset's (CPU) scale, where --preset quick is the fix.
QUICK_SCALE_CROP = 64


def stall_fix(run: RunRecord) -> str:
    """The one change most likely to get a run off chance: Glorot's init instead of the paper's
    normal one (which stalls without pre-training); at CPU scale without a preset, the quick preset
    (the recipe of every reported number); else a lower lr."""
    if run.init.scheme == "paper":
        return "try --init glorot (the paper's normal init stalls without pre-training)"
    if run.crop <= QUICK_SCALE_CROP and "--preset" not in run.argv:
        return "try --preset quick (the budget of every reported number: lr 0.005, batch 128, 10,000 images)"
    return f"try a lower --lr (e.g. {run.recipe.lr / 3:.2g})"


def train_summary(run: RunRecord, stored: bool, root: Path) -> str:
    """`train`'s one line: the run, what it reached (`outcome`; a stalled run the change most
    likely to fix it), its speed and its record's path."""
    fix = f"; {stall_fix(run)}" if stalled_at_chance(run) else ""
    return (
        f"run {run.id}{' (stored; --force retrains)' if stored else ''}: {run.net} width "
        f"{run.width:g} crop {run.crop} S={run.train_scale} on {run.dataset}: {outcome(run)}{fix}, "
        f"{run.wall_time_s:.0f} s, {run.images_per_s:.0f} img/s, "
        f"data {100 * run.data_time_fraction:.0f}% of train time; "
        f"{Path(root) / store.RUNS / (run.id + '.json')}"
    )


def reproduce_command(run: RunRecord) -> str:
    """The `vggbench train` command that trains this run again: every setting of its config that is
    not train's default, as train's option (the data's fingerprint is found again from the files;
    the same files give the same run id). `train` finds the run stored; --force retrains it."""
    argv = ["vggbench", "train"]
    for s in SETTINGS:
        if s.name not in run.config:
            continue
        value, default = run.config[s.name], s.default
        flag = s.flag or "--" + s.name.replace("_", "-")
        if s.type is bool:
            if bool(value) != bool(default):
                argv.append(flag if value else f"--no-{flag[2:]}")
        elif value is not None and value != default:
            argv += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(argv)


def made_by(run: RunRecord) -> str | None:
    """The command line that made the run, as it was typed (None: not recorded)."""
    return shlex.join(["vggbench", *run.argv]) if run.argv else None


def given_preset(run: RunRecord) -> str | None:
    """The preset a run's command named (`train --preset`, `ablate --preset`), None if none."""
    argv = run.argv
    for index, arg in enumerate(argv):
        if arg == "--preset" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--preset="):
            return arg.split("=", 1)[1]
    return None


# --- Rows -------------------------------------------------------------------------------------------


def budget_label(run: RunRecord) -> str:
    """The epochs a run was given and its stopping rule: '30 (schedule)' (the paper's rule, the
    epochs a cap) or '10 (epochs)' (exactly that many)."""
    return f"{run.recipe.epochs} ({run.recipe.stop})"


def init_label(run: RunRecord) -> str:
    if run.init.scheme == "paper" and run.init.std is not None:
        return f"paper (std {run.init.std:g})"
    return run.init.scheme


def run_row(run: RunRecord) -> dict[str, Any]:
    """One run as a `runs list` row (snake_case keys of RUN_HEADERS)."""
    return {
        "id": run.id,
        "net": run.net,
        "dataset": run.dataset,
        "width": run.width,
        "crop": run.crop,
        "train_scale": run.train_scale,
        "seed": run.seed,
        "budget": budget_label(run),
        "epochs": len(run.epochs),
        "stopped_by": run.stopped_by,
        "init": init_label(run),
        "top1_err": run.top1_err,
        "top5_err": run.top5_err,
        "train_time_s": run.train_time_s,
        "status": run.status,
        "created": run.created,
    }


def runs_frame(runs: Sequence[RunRecord], interrupted: Sequence[str] = ()) -> pd.DataFrame:
    """`runs list`: one row per run, then one per run that has only a checkpoint (its id and
    status)."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    rows = [run_row(run) for run in runs]
    rows += [{"id": run_id, "status": INTERRUPTED} for run_id in interrupted]
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return frame.astype({"width": "Float64", "crop": "Int64", "seed": "Int64", "epochs": "Int64"})


def sort_runs(frame: pd.DataFrame, column: str | None) -> pd.DataFrame:
    """`runs_frame` sorted by one of its columns (RUN_COLUMNS, or a header of RUN_HEADERS),
    stably, missing values last; None keeps the store's order (oldest first)."""
    if column is None:
        return frame
    names = {**{c: c for c in RUN_COLUMNS}, **{h: c for c, h in RUN_HEADERS.items()}, "trained": "epochs"}
    if column not in names:
        raise VggbenchError(f"cannot sort by {column!r}; choose one of {', '.join(RUN_COLUMNS)}")
    return frame.sort_values(names[column], kind="stable", na_position="last").reset_index(drop=True)


#: What `runs list` leaves out of a terminal table unless --wide: what a store's runs mostly share
#: (width, crop, budget) and the train time; `created` shows its date only.
NARROW_DROPS = ("width", "crop", "budget", "train_time_s")


def display_runs(frame: pd.DataFrame, runs: Sequence[RunRecord], wide: bool = True) -> pd.DataFrame:
    """`runs_frame` (rows of `runs`, by id) for people: the width as given (0.125, not 0.12),
    epochs and stop reason in one `trained` column, short headers, and top-5 only where it says
    something (`ablations.stats.top5_comparable`, as the report): the column left out when no run
    has more than 10 classes. Not `wide`: NARROW_DROPS left out, and the status only where a run is
    not complete (in `trained`)."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    shown = frame.copy()
    comparable = {run.id: top5_comparable(run.num_classes) for run in runs}
    shown["top5_err"] = [e if comparable.get(i) else None for i, e in zip(frame["id"], frame["top5_err"])]
    if not any(comparable.values()):
        shown = shown.drop(columns="top5_err")
    if not wide:
        shown["created"] = [None if pd.isna(c) else str(c)[:10] for c in frame["created"]]
        shown["epochs"] = [
            s if s != "complete" else e for e, s in zip(frame["epochs"].astype(object), frame["status"])
        ]
        shown = shown.drop(columns=[*NARROW_DROPS, "status"])
    if "width" in shown:
        shown["width"] = [None if pd.isna(w) else f"{w:g}" for w in frame["width"]]
    trained = [e if pd.isna(s) else f"{e} ({s})" for e, s in zip(shown["epochs"], frame["stopped_by"])]
    place = shown.columns.get_loc("stopped_by")
    shown = shown.drop(columns=["epochs", "stopped_by"])
    shown.insert(place - 1, "trained", trained)
    return shown.rename(columns=RUN_HEADERS)


def summary_frame(run: RunRecord, top5: bool = True) -> pd.DataFrame:
    """`runs show`: what a run is and what it reached (top-5 with `top5`), as (field, value) rows."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    recipe = run.recipe
    rows = [
        ("id", run.id),
        ("net", f"{run.net} (width {run.width:g}, crop {run.crop}, {run.num_classes} classes)"),
        ("data", f"{run.dataset}: {run.train_images} train / {run.val_images} val images"),
        ("train scale S", f"{run.train_scale} ({'x'.join(map(str, run.train_scale_pixels))} px)"),
        ("val scale Q", f"{run.val_scale:g} ({run.val_scale_pixels} px), center crop"),
        ("init", init_label(run) + (f", fine-tuned from {run.init_from}" if run.init_from else "")),
        (
            "recipe",
            f"lr {recipe.lr:g} (final {recipe.final_lr:g}, {recipe.lr_decreases} decreases), "
            f"momentum {recipe.momentum:g}, weight decay {recipe.weight_decay:g}, "
            f"dropout {recipe.dropout:g}, batch {recipe.batch_size}",
        ),
        ("budget", f"{budget_label(run)}; trained {len(run.epochs)}, stopped by {run.stopped_by}"),
        ("preset", given_preset(run) or "-"),
        _errors_row(run, top5),
        (
            "train time",
            f"{run.train_time_s:.0f} s ({run.images_per_s:.0f} img/s), wall {run.wall_time_s:.0f} s",
        ),
        ("machine", f"{run.machine}, {run.device}, torch {run.torch_version}"),
        (
            "created",
            f"{run.created} (code {run.code_version}"
            + (f", vggbench {run.package_version})" if run.package_version else ")"),
        ),
        ("status", run.status),
        ("checkpoint", run.checkpoint),
    ]
    rows += [("warning", warning) for warning in run.warnings]
    rows.append(("made by", made_by(run) or "-"))
    return pd.DataFrame(rows, columns=["field", "value"])


def _errors_row(run: RunRecord, top5: bool) -> tuple[str, str]:
    if top5:
        return ("val top-1 / top-5 err (%)", f"{run.top1_err:.2f} / {run.top5_err:.2f}")
    return ("val top-1 err (%)", f"{run.top1_err:.2f}")


def curve_frame(run: RunRecord, top5: bool = True) -> pd.DataFrame:
    """A run's per-epoch curve: loss, lr, validation errors (top-5 with `top5`) and time."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    columns = ["epoch", "train_loss", "lr", "val_top1_err", "val_top5_err", "wall_s", "images_per_s"]
    columns = [c for c in columns if top5 or c != "val_top5_err"]
    return pd.DataFrame([{c: getattr(e, c) for c in columns} for e in run.epochs], columns=columns)


def show_top5(run: RunRecord, fmt: str) -> bool:
    """Whether `runs show` shows a run's top-5 errors: always in CSV (its columns stay), else only
    where top-5 says something (`ablations.stats.top5_comparable`, as the report)."""
    return fmt == "csv" or top5_comparable(run.num_classes)


def evals_frame(evals: Sequence[EvalRecord], top5: bool = True) -> pd.DataFrame:
    """A run's stored evaluations, one row each (`vggbench eval` has every column; top-5 with
    `top5`)."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    rows = [
        {
            "eval id": e.id,
            "runs": "+".join(e.runs),
            "method": e.method,
            "test Q": json.dumps(e.test_scales),
            "images": e.images,
            "top-1 err (%)": e.top1_err,
            "top-5 err (%)": e.top5_err,
        }
        for e in evals
    ]
    columns = ["eval id", "runs", "method", "test Q", "images", "top-1 err (%)", "top-5 err (%)"]
    return pd.DataFrame(rows, columns=columns[: None if top5 else -1])


def compare_frame(runs: Sequence[RunRecord], diff_only: bool = False) -> pd.DataFrame:
    """Runs side by side: one row per config key, result and final epoch, one column per run id,
    and a `differs` column that marks ('*') the rows where the runs disagree (config first);
    `diff_only`: those rows only."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    keys = sorted({k for run in runs for k in run.config})
    rows = [(f"config.{k}", [run.config.get(k) for run in runs]) for k in keys]
    rows += [
        ("dataset", [run.dataset for run in runs]),
        ("init", [init_label(run) for run in runs]),
        ("epochs trained", [len(run.epochs) for run in runs]),
        ("stopped by", [run.stopped_by for run in runs]),
        ("final lr", [run.recipe.final_lr for run in runs]),
        ("val top-1 err (%)", [run.top1_err for run in runs]),
        ("val top-5 err (%)", [run.top5_err for run in runs]),
        ("final train loss", [run.epochs[-1].train_loss for run in runs]),
        ("train time (s)", [run.train_time_s for run in runs]),
    ]
    table = [
        {
            "field": name,
            "differs": "*" if len({json.dumps(v, default=str) for v in values}) > 1 else "",
            **{run.id: _plain(v) for run, v in zip(runs, values)},
        }
        for name, values in rows
    ]
    frame = pd.DataFrame(table, columns=["field", "differs", *[run.id for run in runs]])
    differs = frame["differs"] == "*"
    is_config = frame["field"].str.startswith("config.")
    # the differing config keys first, then the rest of the config, then the results
    order = frame.assign(_rank=(~is_config) * 2 + (is_config & ~differs)).sort_values("_rank", kind="stable")
    if diff_only:
        order = order[order["differs"] == "*"]
    return order.drop(columns="_rank").reset_index(drop=True)


def _plain(value: Any) -> str:
    """A compare cell: one text type per column, so numbers of several kinds and None line up."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def curves_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """The runs' val top-1 error per epoch side by side (a run that stopped earlier has gaps)."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    epochs = max(len(run.epochs) for run in runs)
    rows = [
        {
            "epoch": n + 1,
            **{run.id: run.epochs[n].val_top1_err if n < len(run.epochs) else None for run in runs},
        }
        for n in range(epochs)
    ]
    return pd.DataFrame(rows, columns=["epoch", *[run.id for run in runs]])


# --- Export -----------------------------------------------------------------------------------------


EXPORT_FORMATS = ("csv", "json")


def export_rows(root: Path) -> list[dict[str, Any]]:
    """Every run and evaluation record of the store, flattened: nested objects become dotted
    columns (config.lr, recipe.epochs, limits.max_images), `kind` says which record a row is, and a
    run also gets its final top1_err and top5_err (an evaluation has them already); lists (epochs,
    classes, runs) stay lists."""
    rows = []
    for run in store.read_runs(root):
        data = run.to_json()
        rows.append({**_flatten(data), "top1_err": run.top1_err, "top5_err": run.top5_err})
    rows += [_flatten(e.to_json()) for e in store.read_evals(root)]
    return rows


#: What each row of `runs export --epochs` says of its run, before the epoch's own fields.
EPOCH_RUN_COLUMNS = ("id", "net", "dataset", "width", "crop", "train_scale", "seed")
EPOCH_EXPORT_COLUMNS = (*EPOCH_RUN_COLUMNS, *(f.name for f in fields(EpochMetrics)))


def epoch_rows(root: Path) -> list[dict[str, Any]]:
    """Every epoch of every stored run in long format, one row per run and epoch: the run's id and
    what tells runs apart (EPOCH_RUN_COLUMNS), then the epoch's fields (the columns of epochs.csv
    and the run records' epoch keys)."""
    return [
        {**{c: getattr(run, c) for c in EPOCH_RUN_COLUMNS}, **asdict(epoch)}
        for run in store.read_runs(root)
        for epoch in run.epochs
    ]


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def render_export(rows: list[dict[str, Any]], fmt: str, columns: Sequence[str] = ()) -> str:
    """JSON: a list of objects (lists as lists); CSV: one table, lists as JSON text in their cell
    (`columns`: the header of a table without rows)."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    if fmt == "json":
        return json.dumps(rows, indent=2, default=str) + "\n"
    cells = [{k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()} for row in rows]
    columns = list(dict.fromkeys(k for row in cells for k in row)) or list(columns)
    return pd.DataFrame(cells, columns=columns).to_csv(index=False)


def check_export_target(out: Path, root: Path) -> None:
    """An export file must not land where the store reads records (it would be taken for one) and
    must not be a folder."""
    target = Path(out).resolve()
    for kind in (store.RUNS, store.EVALS, "ablations", "bench"):
        if target.parent == (Path(root) / kind).resolve():
            raise VggbenchError(
                f"--out {out} is inside the store's {kind}/ folder, where it would be read as a record; "
                "write it elsewhere, e.g. --out export.csv"
            )
    if target.is_dir():
        raise VggbenchError(f"--out {out} is a folder; give a file name, e.g. --out {Path(out) / 'runs.csv'}")
