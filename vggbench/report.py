"""Tables side by side with the paper's numbers, as DataFrames, and their rendered files."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from vggbench import paper
from vggbench.architectures import ARCHITECTURES
from vggbench.counting import layer_breakdown, small_filter_table, summarize
from vggbench.errors import VggbenchError
from vggbench.models import ModelSpec
from vggbench.render import render_latex, render_markdown
from vggbench.scales import to_pixels
from vggbench.store import atomic_write_text, read_records

#: Display headers for the snake_case columns that JSON and CSV keep.
HEADERS = {
    "config": "net",
    "weight_layers": "weight layers",
    "params": "parameters",
    "params_millions": "params (M)",
    "paper_params_millions": "paper Table 2 (M)",
    "agrees": "agrees",
    "conv_macs": "conv MACs",
    "macs": "MACs",
    "flops": "FLOPs (2 x MACs)",
    "receptive_field": "receptive field",
    "output_shape": "output shape",
    "jump": "jump (stride)",
    "layers": "3x3 layers n",
    "stack_params": "stack weights (n x 9C^2)",
    "single_params": "single conv weights",
    "stack_nonlinearities": "stack ReLUs",
    "single_nonlinearities": "single ReLUs",
    "saving": "weights saved",
}


def params_frame(
    width: float = 1.0, num_classes: int = paper.NUM_CLASSES, size: int = paper.PAPER_CROP
) -> pd.DataFrame:
    """Table 2 and beyond: one row per net with exact parameters, MACs and FLOPs at `size`."""
    rows = [asdict(summarize(ModelSpec(name, num_classes, width, size))) for name in ARCHITECTURES]
    return pd.DataFrame(rows).astype({"paper_params_millions": "Int64", "agrees": "boolean"})


def layers_frame(
    config: str, width: float = 1.0, num_classes: int = paper.NUM_CLASSES, size: int = paper.PAPER_CROP
) -> pd.DataFrame:
    """The per-layer breakdown of one net."""
    rows = [asdict(r) for r in layer_breakdown(ModelSpec(config, num_classes, width, size))]
    frame = pd.DataFrame(rows)
    frame["output_shape"] = frame["output_shape"].map(lambda s: "x".join(map(str, s)))
    return frame.astype({"receptive_field": "Int64", "jump": "Int64"})


def filters_frame(channels: int = 512, max_layers: int = 3) -> pd.DataFrame:
    """Section 2.3's argument: n stacked 3x3 convs against one (2n+1)x(2n+1) conv."""
    rows = []
    for row in small_filter_table(channels, max_layers):
        rows.append({**asdict(row), "saving": row.saving})
    return pd.DataFrame(rows)


def display(frame: pd.DataFrame) -> pd.DataFrame:
    """Human headers for terminal, Markdown and LaTeX."""
    return frame.rename(columns=HEADERS)


def write_table2(out_dir: Path, frame: pd.DataFrame | None = None) -> list[Path]:
    """Render Table 2 (our exact counts beside the paper's) as Markdown and LaTeX under `out_dir`:
    `vggbench params --write` and the report both write it here. `frame`: `display(params_frame())`
    when the caller has it already (counting takes seconds)."""
    frame = display(params_frame()) if frame is None else frame
    caption = f"Parameters and compute at 224x224, 1000 classes, against Table 2 of {paper.CITATION}."
    md = Path(out_dir) / "table2.md"
    tex = Path(out_dir) / "tables" / "table2.tex"
    atomic_write_text(
        md, f"# Table 2: parameters\n\n{caption} MACs are multiply-accumulates.\n\n" + render_markdown(frame)
    )
    atomic_write_text(tex, render_latex(frame, caption=caption, label="tab:params"))
    return [md, tex]


# --- Ablations ---------------------------------------------------------------------------------


def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def _interval(entry: dict) -> str:
    if entry["ci95_low"] is None:
        return "n/a (one seed)"
    return f"[{entry['ci95_low']:+.2f}, {entry['ci95_high']:+.2f}]"


def ablation_arms_frame(result: dict) -> pd.DataFrame:
    """Each arm's errors over seeds beside the paper's (percent); `stalled`: runs that stayed at chance."""
    rows = [
        {
            "arm": arm["name"],
            "evaluation": arm["evaluation"],
            "seeds": len(arm["seeds"]),
            "stalled": len(arm.get("stalled_seeds", [])),
            "top-1 err (%)": _pm(arm["top1_mean"], arm["top1_std"]),
            "top-5 err (%)": _pm(arm["top5_mean"], arm["top5_std"]),
            "paper top-1": arm["paper_top1"],
            "paper top-5": arm["paper_top5"],
        }
        for arm in result["arms"]
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "arm",
            "evaluation",
            "seeds",
            "stalled",
            "top-1 err (%)",
            "top-5 err (%)",
            "paper top-1",
            "paper top-5",
        ],
    )


def ablation_comparisons_frame(result: dict) -> pd.DataFrame:
    """treatment - baseline top-1 error with its 95% interval, the paper's difference, the verdict."""
    rows = [
        {
            "comparison": f"{c['treatment']} - {c['baseline']}",
            "evaluation": c["evaluation"],
            "paper expects": c["expect"].replace("_", " "),
            "ours (points)": round(c["top1"], 2),
            "95% CI": _interval(c),
            "paper (points)": c["paper_top1"],
            "verdict": c["verdict"],
        }
        for c in result["comparisons"]
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "comparison",
            "evaluation",
            "paper expects",
            "ours (points)",
            "95% CI",
            "paper (points)",
            "verdict",
        ],
    )


def ablation_budget_line(result: dict) -> str:
    """What the numbers were measured on: the dataset, budget, widths, crop, the init used (with the
    paper's ambiguities: the normal init's std, which layers pre-initialisation copied), the machine
    and the time its runs took."""
    b = result["budget"]
    inits = sorted(
        {
            f"{a['init']['scheme']}" + (f" std {a['init']['std']}" if a["init"].get("std") else "")
            for a in result["arms"]
            if isinstance(a.get("init"), dict)
        }
    )
    line = (
        f"preset {result['preset']}: {b['data']}, width {b['width']:g}, crop {b['crop']}, {b['epochs']} epochs, "
        f"batch {b['batch']}, lr {b['lr']:g}, train images {b.get('limit_train') or 'all'}, "
        f"val images {b.get('limit_val') or 'all'}; init {', '.join(inits) or 'default'}; "
        f"{result['seeds']} seeds; runs found {result['runs_found']}/{result['runs_expected']}"
    )
    preinit = {
        (a["init"]["preinit_mapping"], tuple(a["init"]["copied_layers"]))
        for a in result["arms"]
        if isinstance(a.get("init"), dict) and a["init"].get("preinit_from")
    }
    for mapping, layers in sorted(preinit):
        line += f"; pre-init (mapping {mapping}) copied {len(layers)} layers: {', '.join(layers)}"
    cost = result.get("cost")
    if cost:
        line += (
            f"; its runs trained for {cost['train_s'] / 60:.1f} min and evaluated in {cost['eval_s'] / 60:.1f} min "
            f"on {'; '.join(cost['machines'])}"
        )
    return line


def ablation_notes(result: dict) -> list[str]:
    """What a reader must know to read the numbers: runs that stalled at chance, and how few
    window positions dense evaluation has at a small crop."""
    notes = []
    stalled = [(arm["name"], arm["stalled_seeds"]) for arm in result["arms"] if arm.get("stalled_seeds")]
    for name, seeds in dict(stalled).items():
        notes.append(
            f"arm {name!r}: seed(s) {', '.join(map(str, seeds))} stayed at chance error (training warned); "
            "they are kept in its mean and std"
        )
    crop = result["budget"]["crop"]
    if crop < paper.PAPER_CROP and any(arm.get("method") == "dense" for arm in result["arms"]):
        size = to_pixels(256, crop)
        cells = size >> paper.POOLS  # each max-pool halves the map, rounding down
        positions = cells - crop // 2**paper.POOLS + 1
        notes.append(
            f"at crop {crop}, dense evaluation at Q=256 ({size} px) has a {cells}x{cells} score map, "
            f"{positions}x{positions} window position(s) (the paper's crop 224: 8x8 and 2x2); the max-pools "
            "drop the bottom and right pixels, so it sees an off-centre part of the image and is noisier "
            "than the center crop here"
        )
    return notes


# --- Evaluations: the `eval` table and the paper's Tables 3-6 ---------------------------------

#: Columns of an eval record that the result tables show, with their display headers.
RESULT_HEADERS = {
    "runs": "runs",
    "configs": "net",
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


def _scale_label(scales: object) -> str:
    if scales and isinstance(scales[0], (list, tuple)):
        return " | ".join(_scale_label(s) for s in scales)
    return ",".join(str(s) for s in scales)


def results_frame(records: Sequence[dict]):
    """Eval records as a DataFrame, one row per record (the `vggbench eval` output)."""
    import pandas as pd

    rows = []
    for r in records:
        rows.append(
            {
                "runs": "+".join(r["runs"]),
                "configs": "+".join(r["configs"]),
                "train_scales": "+".join(r["train_scales"])
                if len(set(r["train_scales"])) > 1
                else r["train_scales"][0],
                "method": r["method"],
                "test_scales": _scale_label(r["test_scales"]),
                "test_scales_px": _scale_label(r["test_scales_px"]),
                "dataset": r["dataset"],
                "images": r["images"],
                "top1_err": r["top1_err"],
                "top5_err": r["top5_err"],
                "forward_passes_per_image": r["forward_passes_per_image"],
                "macs_per_image": int(round(r["macs_per_image"])),
                "images_per_s": r["images_per_s"],
            }
        )
    return pd.DataFrame(rows, columns=list(RESULT_HEADERS))


def _net_key(configs: Sequence[str], train_scales: Sequence[str]) -> list[str]:
    return sorted(f"{c}/{s}" for c, s in zip(configs, train_scales))


def _matches(row: paper.PaperResult, record: dict) -> bool:
    if record.get("method") != row.method:
        return False
    configs, trains = record.get("configs", []), record.get("train_scales", [])
    if row.table == 6:
        if row.net == paper.SUBMISSION_7_NETS:  # each net at its own multi-scale Q set
            return _net_key(configs, trains) == sorted(row.net.split("+"))
        return _net_key(configs, trains) == sorted(row.net.split("+")) and _flat(
            record["test_scales"]
        ) == list(row.test_scales)
    return (
        len(configs) == 1
        and configs[0] == row.net
        and trains[0] == row.train_scale
        and _flat(record["test_scales"]) == list(row.test_scales)
    )


def _flat(scales: object) -> list:
    """A shared scale list as is; per-model lists only when they are all the same."""
    if scales and isinstance(scales[0], list):
        return scales[0] if all(s == scales[0] for s in scales) else [None]
    return list(scales)


PAPER_TABLES = {3: paper.TABLE3, 4: paper.TABLE4, 5: paper.TABLE5, 6: paper.TABLE6}
PAPER_TABLE_TITLES = {
    3: "Table 3: single test scale (dense)",
    4: "Table 4: multi-scale test (dense)",
    5: "Table 5: dense vs multi-crop vs both, S in [256;512], Q = {256,384,512}",
    6: "Table 6: fusion of several nets",
}


def recipe_key(record: dict, runs: dict[str, dict]) -> str:
    """What an eval record measured apart from the seeds: its runs' configs without seed (and
    without the ids of the runs they started from, which differ by seed), its dataset and limits.
    Records with the same key are repeats over seeds; a record whose runs are unknown stands alone."""
    configs = []
    for run_id in record.get("runs", []):
        run = runs.get(run_id)
        if run is None:
            return f"record {record.get('id')}"
        config = {k: v for k, v in run["config"].items() if k not in ("seed", "init_from", "preinit_from")}
        config.update(
            init_from=bool(run["config"].get("init_from")),
            preinit_from=bool(run["config"].get("preinit_from")),
        )
        configs.append(config)
    return json.dumps([configs, record.get("dataset"), record.get("limits")], sort_keys=True)


def paper_table_frame(
    table: int, eval_records: Sequence[dict], dataset: str | None = None, runs: dict[str, dict] | None = None
):
    """One of Tables 3-6 with the paper's errors beside ours: one row per paper row, blank where we
    have none. Ours come from the matching eval records (same net(s), train scale(s), test scales in
    paper units and method; restricted to `dataset` when given): the newest one, or, given the run
    records (`runs`, by id), the mean over the newest one's repeats with other seeds (`recipe_key`),
    with their number. Our errors are on our dataset and scaled-down nets, so the comparison is of
    shape (which method or scale wins), not of value."""
    import pandas as pd

    if table not in PAPER_TABLES:
        raise VggbenchError(
            f"no paper table {table} of evaluations; choose one of {', '.join(map(str, PAPER_TABLES))}"
        )
    records = [
        r
        for r in eval_records
        if r.get("kind") == "eval" and (dataset is None or r.get("dataset") == dataset)
    ]
    records = sorted(records, key=lambda r: r.get("created", ""))
    rows = []
    for row in PAPER_TABLES[table]:
        found = [r for r in records if _matches(row, r)]
        group = []
        if found:
            newest = found[-1]
            if runs is None:
                group = [newest]
            else:  # the newest record of each set of runs with the newest one's recipe
                same = {tuple(r["runs"]): r for r in found if recipe_key(r, runs) == recipe_key(newest, runs)}
                group = sorted(same.values(), key=lambda r: r.get("created", ""))
        top1 = statistics.fmean(r["top1_err"] for r in group) if group else None
        top5 = statistics.fmean(r["top5_err"] for r in group) if group else None
        rows.append(
            {
                "net": row.net,
                "train scale": row.train_scale,
                "test scales": ",".join(map(str, row.test_scales)) if row.test_scales else "multi (each net)",
                "method": row.method,
                "paper top-1": row.top1,
                "paper top-5": row.top5,
                "our top-1": top1,
                "our top-5": top5,
                "delta top-1": top1 - row.top1 if group and row.top1 is not None else None,
                "delta top-5": top5 - row.top5 if group and row.top5 is not None else None,
                "seeds": len(group) or None,
                "dataset": group[-1]["dataset"] if group else None,
                "record": group[-1]["id"] if group else None,
            }
        )
    frame = pd.DataFrame(rows)
    for column in ("paper top-1", "paper top-5", "our top-1", "our top-5", "delta top-1", "delta top-5"):
        frame[column] = frame[column].astype("Float64")
    frame["seeds"] = frame["seeds"].astype("Int64")
    return frame


# --- The whole report --------------------------------------------------------------------------


def _section(title: str, frame: pd.DataFrame, note: str = "") -> str:
    return f"## {title}\n\n" + (f"{note}\n\n" if note else "") + render_markdown(frame) + "\n"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def write_report(results_dir: Path, out_dir: Path, plots: bool = True) -> list[Path]:
    """Render every table the store can fill into out_dir/REPORT.md, out_dir/table2.md,
    out_dir/tables/*.tex and out_dir/plots/*.png: Table 2, the Table 3-6 shapes, one table per ablation, throughput."""

    results_dir, out_dir = Path(results_dir), Path(out_dir)
    written: list[Path] = []
    tables: list[tuple[str, pd.DataFrame, str]] = []
    parts = [
        f"# vggbench report\n\nOur measurements beside {paper.CITATION}. Errors are percent; MACs are "
        "multiply-accumulates (FLOPs = 2 x MACs). Regenerate with `vggbench report`.\n"
    ]

    table2 = display(params_frame())
    note2 = "Exact counts at 224x224 and 1000 classes; the paper rounds to millions."
    parts.append(_section("Table 2: parameters and compute", table2, note2))
    written += write_table2(out_dir, table2)

    evals = read_records(results_dir, "evals")
    runs = {run["id"]: run for run in read_records(results_dir, "runs")}
    for number in (3, 4, 5, 6):
        frame = paper_table_frame(number, evals, runs=runs)
        if len(frame):
            title = PAPER_TABLE_TITLES[number]
            note = (
                "Ours are measured on the dataset and budget named in each row (the mean over `seeds` runs "
                "that differ only in their seed; `record` is the newest); the paper's are ImageNet at "
                "full scale, so compare the ordering and the differences, not the absolute errors."
            )
            parts.append(_section(title, frame, note))
            tables.append((f"table{number}", frame, title))

    ablation_records = sorted(
        read_records(results_dir, "ablations"), key=lambda r: (r["ablation"], r["preset"])
    )
    for result in ablation_records:
        if not result["arms"]:
            continue
        heading = (
            f"Ablation `{result['ablation']}` ({result['config']}, {result['preset']}): {result['title']}"
        )
        note = (
            f"Paper ({result['section']}): {result['claim']}\n\nMeasured on {ablation_budget_line(result)}."
        )
        note += "".join(f"\n\nNote: {text}." for text in ablation_notes(result))
        arms, comparisons = ablation_arms_frame(result), ablation_comparisons_frame(result)
        parts.append(_section(heading, arms, note) + render_markdown(comparisons) + "\n")
        slug = _slug(f"ablation-{result['ablation']}-{result['config']}-{result['preset']}")
        tables.append((slug, arms, heading))
        tables.append((slug + "-comparisons", comparisons, heading + " (comparisons)"))

    bench_records = read_records(results_dir, "bench")
    if bench_records:
        from vggbench.bench import bench_frame

        frame = bench_frame(bench_records)
        parts.append(
            _section("Throughput", frame, "Measured by `vggbench bench`; each row names its machine.")
        )
        tables.append(("throughput", frame, "Throughput"))

    if plots:
        from vggbench.plots import write_plots

        images = write_plots(ablation_records, evals, out_dir / "plots")
        written += images
        if images:
            parts.append("## Plots\n\n" + "".join(f"![{p.stem}](plots/{p.name})\n\n" for p in images))

    for slug, frame, caption in tables:
        path = out_dir / "tables" / f"{slug}.tex"
        atomic_write_text(path, render_latex(frame, caption=caption.replace("`", ""), label=f"tab:{slug}"))
        written.append(path)
    report_path = out_dir / "REPORT.md"
    atomic_write_text(report_path, "\n".join(parts))
    return [report_path] + written
