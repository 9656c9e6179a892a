"""Tables side by side with the paper's numbers, as DataFrames, and their rendered files."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from vggbench import paper
from vggbench.architectures import ARCHITECTURES
from vggbench.counting import layer_breakdown, small_filter_table, summarize
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


# --- The whole report --------------------------------------------------------------------------


def _section(title: str, frame: pd.DataFrame, note: str = "") -> str:
    return f"## {title}\n\n" + (f"{note}\n\n" if note else "") + render_markdown(frame) + "\n"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def write_report(results_dir: Path, out_dir: Path, plots: bool = True) -> list[Path]:
    """Render every table the store can fill into out_dir/REPORT.md, out_dir/table2.md,
    out_dir/tables/*.tex and out_dir/plots/*.png: Table 2, the Table 3-6 shapes, one table per ablation, throughput."""
    from vggbench import evaluation

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
        frame = evaluation.paper_table_frame(number, evals, runs=runs)
        if len(frame):
            title = evaluation.PAPER_TABLE_TITLES[number]
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
