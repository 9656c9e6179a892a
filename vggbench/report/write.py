"""The rendered report: Table 2's files (also `vggbench params --write`) and the whole report,
REPORT.md with LaTeX tables and PNG/PDF figures, from what the results store holds: a summary of the
ablations first, then Table 2, Tables 3-6, one section per ablation and budget (its tables and
captioned figures), and throughput."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vggbench import fs, paper
from vggbench.ablations.stats import (
    ABLATIONS,
    AT_BUDGET,
    PAPER_GAP,
    UNTESTABLE,
    AblationRecord,
    read_ablations,
)
from vggbench.bench.tables import HEADERS as BENCH_HEADERS
from vggbench.bench.tables import KIND as BENCH
from vggbench.bench.tables import bench_frame
from vggbench.counts import HEADERS as COUNT_HEADERS
from vggbench.counts import display, params_frame
from vggbench.errors import VggbenchError
from vggbench.render import render_latex, render_markdown
from vggbench.report.plots import Figure, ablation_figures
from vggbench.report.tables import (
    EVIDENCE,
    PAPER_TABLE_TITLES,
    ablation_arms_frame,
    ablation_budget_line,
    ablation_comparisons_frame,
    ablation_notes,
    gap_of,
    headline,
    paper_table_frame,
    resolution,
    seeds_advice,
    summary_comparison,
    summary_group,
)
from vggbench.store import (
    EVALS,
    RUNS,
    EvalRecord,
    RunRecord,
    atomic_write_text,
    read_evals,
    read_records,
    read_runs,
    record_paths,
)

INTRODUCTION = (
    f"# vggbench report\n\nOur measurements beside {paper.CITATION}. Errors are percent; MACs are "
    "multiply-accumulates (FLOPs = 2 x MACs). Regenerate with `vggbench report`.\n"
)
TABLE2_NOTE = "Exact counts at 224x224 and 1000 classes; the paper rounds to millions."
PAPER_TABLES_NOTE = (
    "Ours are measured on the dataset and budget named in each row, one row per recipe (`recipe`: "
    "the mean over `seeds` runs that differ only in their seed; `record` is the newest; `images`: the "
    "validation images each evaluation saw, a stratified subset when fewer than the split); the paper's "
    "are ImageNet at full scale, so compare the ordering and the differences, not the absolute "
    "errors. Our top-5 is left out for datasets of 10 classes or fewer, where it is no test."
)
TABLE5_NOTE = " Table 5 adds what each method costs: MACs and wall-clock milliseconds per image, ours."
THROUGHPUT_NOTE = "Measured by `vggbench bench`; each row names its machine."
VOCABULARY = (
    "How to read a verdict. Each compares treatment - baseline top-1 error (points) over seeds with "
    "its 95% interval (paired by seed). **consistent** / **contradicts**: the interval decides the "
    "paper's claim (a lower error; no gain beyond the margin; equal within the margin) its way or "
    "against it; **inconclusive**: it does not (it straddles the claim, or one seed, or zero "
    "variance); **stalled**: a seed of an arm stayed within 1 point of chance error or its training "
    "warned, and an arm that learnt nothing says nothing of the claim; **not testable at this "
    "budget**: the budget cannot test the claim (scale claims on images whose objects do not vary in "
    "size, dense claims below crop 128), measured and shown all the same; **at this budget**: an arm "
    "had not converged (a seed hit the epoch cap), so the verdict is about this budget, not the "
    "paper's claim. Beside the sign, the paper's size: whether the paper's difference lies inside "
    "our interval (consistent with the paper's size; `inside` in the comparisons tables) or outside "
    "it (ours `smaller`, `larger`, or of the `opposite` sign). Each line reads the first comparison "
    "the budget can test; every comparison follows."
)
SUMMARY_NOTE = (
    "Seeds needed: the seeds at which the comparison's own test has 80% power at the seed-to-seed "
    "spread we measured: a one-sided t-test at 2.5% to detect the paper's difference (claims of a "
    "lower error) or to rule out a gain of the margin (claims of no gain), and two one-sided tests to "
    "show equality within the margin (claims of equal errors). None for comparisons the budget cannot "
    "test."
)
#: The summary's parts, by `summary_group`, in order.
SUMMARY_GROUPS = {
    "tested": "What this budget tests",
    "budget": "At this budget only (an arm had not converged)",
    "untestable": "Not testable at this budget",
}
#: The first lines of every .tex the report writes: what a document needs to \input it.
LATEX_PREAMBLE = (
    "% Written by `vggbench report`. Needs \\usepackage{booktabs} (\\toprule, \\midrule, \\bottomrule);\n"
    "% sized to fit \\textwidth of a plain 10pt article; \\input it in an article.\n"
)
#: The line a table scaled down to \textwidth adds to LATEX_PREAMBLE.
RESIZED_NOTE = "% Scaled to \\textwidth by \\resizebox: needs \\usepackage{graphicx} too.\n"
#: Columns the LaTeX tables leave out: record ids are for finding records in the store, not for a paper.
LATEX_DROPPED = ("record",)
#: Table 2's column that its LaTeX leaves out for width, said in its caption instead: twice the MACs.
TABLE2_FLOPS = COUNT_HEADERS["flops"]


@dataclass
class LatexTable:
    """A table of the report that also goes to tables/<slug>.tex."""

    slug: str
    frame: pd.DataFrame
    caption: str


def latex_table(frame: pd.DataFrame, caption: str, label: str) -> str:
    """A table to \\input in a LaTeX document: the packages it needs first, no record ids."""
    kept = frame.drop(columns=[c for c in LATEX_DROPPED if c in frame.columns])
    body = render_latex(kept, caption=caption.replace("`", ""), label=label)
    return LATEX_PREAMBLE + (RESIZED_NOTE if "\\resizebox" in body else "") + body


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
    narrower = frame.drop(columns=[TABLE2_FLOPS])
    atomic_write_text(tex, latex_table(narrower, f"{caption} FLOPs are 2 x MACs.", "tab:params"))
    return [md, tex]


def write_report(results_dir: Path, out_dir: Path, plots: bool = True) -> list[Path]:
    """Render every table the store can fill into out_dir/REPORT.md, out_dir/table2.md,
    out_dir/tables/*.tex and out_dir/plots/*.{png,pdf}: the ablations' summary, Table 2, the
    Table 3-6 shapes, one section per ablation and budget with its figures, throughput."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    if results_dir.exists() and not results_dir.is_dir():
        # a file where the store should be: the report would go there too by default
        in_the_way = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(results_dir))
        raise fs.fs_error(in_the_way, "write" if out_dir == results_dir else "read", results_dir)
    if not any(record_paths(results_dir, kind) for kind in (RUNS, EVALS, ABLATIONS, BENCH)):
        # most likely a mistyped --results-dir: an empty report there would hide the typo
        raise VggbenchError(
            f"the store {results_dir} has no records (no runs, evals, ablations or bench results); "
            "check --results-dir, or fill it first with vggbench train, ablate or bench"
        )
    # every record is read (a corrupt one is an error) before anything is written
    evals = read_evals(results_dir)
    runs = {run.id: run for run in read_runs(results_dir)}
    ablations = latest_ablations(read_ablations(results_dir))
    bench_records = read_records(results_dir, BENCH)
    table2 = display(params_frame())
    written = write_table2(out_dir, table2)
    figures: dict[str, list[Figure]] = {}
    if plots:
        figures = {record.id: ablation_figures(record, out_dir / "plots") for record in ablations}
        written += [path for found in figures.values() for figure in found for path in figure.paths]
    parts = [INTRODUCTION]
    tables: list[LatexTable] = []
    for markdown, latex in (
        _summary_sections(ablations),
        ([_section("Table 2: parameters and compute", table2, TABLE2_NOTE)], []),
        _paper_table_sections(evals, runs),
        _ablation_sections(ablations, figures),
        _throughput_sections(bench_records),
    ):
        parts += markdown
        tables += latex

    for table in tables:
        path = out_dir / "tables" / f"{table.slug}.tex"
        atomic_write_text(path, latex_table(table.frame, table.caption, f"tab:{table.slug}"))
        written.append(path)
    report_path = out_dir / "REPORT.md"
    atomic_write_text(report_path, "\n".join(parts))
    return [report_path] + written


def latest_ablations(records: list[AblationRecord]) -> list[AblationRecord]:
    """One record per ablation, net and budget (`AblationRecord.label`), the newest of those with
    arms (one of another number of seeds would write the same section and files), sorted by them."""
    latest = {(r.ablation, r.net, r.label): r for r in records if r.arms}
    return [latest[key] for key in sorted(latest)]


def _section(title: str, frame: pd.DataFrame, note: str = "") -> str:
    return f"## {title}\n\n" + (f"{note}\n\n" if note else "") + render_markdown(frame) + "\n"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _paper_table_sections(
    evals: list[EvalRecord], runs: dict[str, RunRecord]
) -> tuple[list[str], list[LatexTable]]:
    """Tables 3-6, each where at least one of its rows has our numbers."""
    markdown, latex = [], []
    for number in (3, 4, 5, 6):
        frame = paper_table_frame(number, evals, runs=runs)
        if frame["our top-1"].notna().any():
            title = PAPER_TABLE_TITLES[number]
            note = PAPER_TABLES_NOTE + (TABLE5_NOTE if number == 5 else "")
            markdown.append(_section(title, frame, note))
            latex.append(LatexTable(f"table{number}", frame, title))
    return markdown, latex


def _summary_sections(records: list[AblationRecord]) -> tuple[list[str], list[LatexTable]]:
    """The report's first section, one screen: the verdict vocabulary, then one line per ablation and
    budget (`headline`) under what the budget can test, what it tests only at this budget and what
    it cannot test; then every comparison, grouped by the evidence behind its verdict."""
    if not records:
        return [], []
    text = f"## Summary of the ablations\n\n{VOCABULARY}\n\n"
    for group, title in SUMMARY_GROUPS.items():
        lines = [f"- {headline(r)}" for r in records if summary_group(r) == group]
        text += f"### {title}\n\n" + ("\n".join(lines) or "- none") + "\n\n"
    return [text + _every_comparison(records)], []


def _every_comparison(records: list[AblationRecord]) -> str:
    """Every comparison of every ablation, grouped: verdicts with evidence about converged nets,
    about this budget only, those without evidence (with the seeds that would resolve them), and
    those the budget cannot test (with why)."""
    groups: dict[str, list[str]] = {"evidence": [], "budget": [], "without": [], "untestable": []}
    for record in records:
        for c in record.comparisons:
            item = (
                f"- `{record.ablation}` ({record.net}, {record.label}), {c.treatment} - {c.baseline}, "
                f"{c.evaluation}: **{c.verdict}** (ours {c.difference.top1:+.2f} points"
            )
            item += f", paper {c.paper_top1:+.1f})" if c.paper_top1 is not None else ")"
            gap = gap_of(c)
            item += f", {PAPER_GAP[gap]}" if gap else ""
            if c.verdict == UNTESTABLE:
                groups["untestable"].append(item + f"; {c.note}")
            elif c.verdict in EVIDENCE:
                groups["evidence"].append(item)
            elif c.verdict.removesuffix(f" {AT_BUDGET}") in EVIDENCE:
                groups["budget"].append(item + f"; {c.note}")
            else:
                advice = seeds_advice(c, record.seeds)
                groups["without"].append(item + (f"; {c.note}" if c.note else "") + f"; {advice}")
    titles = {
        "evidence": "Verdicts about converged nets (every seed ended by the paper's stopping rule):",
        "budget": "Verdicts about this budget only (an arm had not converged):",
        "without": "Without evidence (stalled or inconclusive):",
        "untestable": "Not testable at this budget (measured, no verdict):",
    }
    text = f"### Every comparison\n\n{SUMMARY_NOTE}\n\n"
    return (
        text + "\n\n".join(f"{titles[k]}\n\n" + ("\n".join(v) or "- none") for k, v in groups.items()) + "\n"
    )


def _figure_markdown(figure: Figure) -> str:
    """A figure, its caption under it, and its PDF."""
    png, pdf = figure.paths
    pdf_link = f"[plots/{pdf.name}](plots/{pdf.name})"
    return f"![{figure.title}](plots/{png.name})\n\n*{figure.caption}* PDF: {pdf_link}\n\n"


def _ablation_sections(
    records: list[AblationRecord], figures: dict[str, list[Figure]]
) -> tuple[list[str], list[LatexTable]]:
    """One section per ablation and budget: its arms, its comparisons, what they were measured on,
    and its figures (`figures`, by record id) with their captions."""
    markdown, latex = [], []
    for record in records:
        heading = f"Ablation `{record.ablation}` ({record.net}, {record.label}): {record.title}"
        note = f"Paper ({record.paper.section}): {record.paper.claim}\n\n"
        note += f"Measured on {ablation_budget_line(record)}."
        note += "".join(f"\n\nNote: {text}." for text in ablation_notes(record))
        read = summary_comparison(record)
        if read is not None and read.verdict != UNTESTABLE:
            note += f"\n\nSeeds, for {read.treatment} - {read.baseline} ({read.evaluation}): "
            note += f"{resolution(read, record.seeds)}."
        arms, comparisons = ablation_arms_frame(record), ablation_comparisons_frame(record)
        text = _section(heading, arms, note) + render_markdown(comparisons) + "\n"
        markdown.append(text + "".join(_figure_markdown(f) for f in figures.get(record.id, [])))
        slug = _slug(f"ablation-{record.ablation}-{record.net}-{record.label}")
        latex.append(LatexTable(slug, arms, heading))
        latex.append(LatexTable(slug + "-comparisons", comparisons, heading + " (comparisons)"))
    return markdown, latex


def _throughput_sections(bench_records: list[dict]) -> tuple[list[str], list[LatexTable]]:
    if not bench_records:
        return [], []
    frame = bench_frame(bench_records)
    frame["width"] = frame["width"].map(lambda w: f"{w:g}")  # 0.125, not the two decimals of a float cell
    frame = frame.rename(columns=BENCH_HEADERS)
    return [_section("Throughput", frame, THROUGHPUT_NOTE)], [LatexTable("throughput", frame, "Throughput")]
