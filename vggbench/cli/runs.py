"""`vggbench runs`: browsing the results store (list, show, compare, diff, export)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vggbench.cli.common import FORMAT_HELP, OUTPUT, echo, examples, note, wrote
from vggbench.render import check_format, render, render_sections

runs_app = typer.Typer(
    help="Browse the results store: list, show, compare and export runs (ids or unique prefixes).",
    no_args_is_help=True,
    epilog=examples(
        "vggbench runs list --config A", "vggbench runs show 1cc2", "vggbench runs compare 1cc2 3573"
    ),
)

RESULTS_DIR_OPTION = typer.Option(
    Path("results"), "--results-dir", help="the results store", rich_help_panel=OUTPUT
)
WIDE_OPTION = typer.Option(
    False, "--wide", help="the table as wide as it is (every column, ids in full)", rich_help_panel=OUTPUT
)


@runs_app.command(
    "list",
    epilog=examples(
        "vggbench runs list",
        "vggbench runs list --config A-LRN --preset quick --sort top1_err",
        "vggbench runs list --scale 256:512 --format csv > runs.csv",
    ),
)
def runs_list(
    config: str = typer.Option(None, "--config", help="only runs of this net (A, A-LRN, B, C, D, E, B-5x5)"),
    data: str = typer.Option(
        None, "--data", help="only runs on this data spec or dataset, e.g. fashion-mnist"
    ),
    scale: str = typer.Option(None, "--scale", help="only runs of this train scale S: 256, 384 or 256:512"),
    preset: str = typer.Option(
        None,
        "--preset",
        help="only runs at this ablation preset's shared budget (presets.toml: data, width, crop, batch, "
        "image limits, stopping rule; lr, epochs and init vary by arm and do not decide)",
    ),
    sort: str = typer.Option(
        None,
        "--sort",
        help="sort by this column, e.g. top1_err, created, seed, net (default: oldest first)",
        metavar="COLUMN",
    ),
    results_dir: Path = RESULTS_DIR_OPTION,
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP, rich_help_panel=OUTPUT),
    wide: bool = WIDE_OPTION,
) -> None:
    """Every stored run: id in full, net, data, budget, train scale, init, val errors, time, status.

    Runs with a checkpoint but no record yet (interrupted, or training now) are listed last.
    """
    from vggbench import runs as runs_lib  # lazy: keeps CLI start-up fast

    check_format(fmt)
    chosen = runs_lib.select_runs(results_dir, config, data, scale, preset)
    filtered = any(v is not None for v in (config, data, scale, preset))
    frame = runs_lib.runs_frame(chosen, [] if filtered else runs_lib.interrupted_runs(results_dir))
    frame = runs_lib.sort_runs(frame, sort)
    if not len(frame):
        where = Path(results_dir) / "runs"
        note(f"no runs{' match' if filtered else ''} in {where}; train one with vggbench train")
    shown = frame if fmt in ("json", "csv") else runs_lib.display_runs(frame, chosen, wide or fmt != "table")
    echo(render(shown, fmt, f"Runs in {results_dir}", wide=wide))


@runs_app.command(
    "show",
    epilog=examples("vggbench runs show 1cc24b2f6f9c", "vggbench runs show 1cc2 --format markdown"),
)
def runs_show(
    run_id: str = typer.Argument(..., help="a stored run id or a unique prefix of one", metavar="RUN"),
    results_dir: Path = RESULTS_DIR_OPTION,
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP, rich_help_panel=OUTPUT),
) -> None:
    """One run: what it is and reached, the command that made it and one that trains it again, its
    per-epoch curve, and its stored evaluations.

    JSON gives the whole record and its evaluation records."""
    import json

    from vggbench import runs as runs_lib  # lazy: keeps CLI start-up fast

    check_format(fmt)
    run = runs_lib.get_run(results_dir, run_id)
    evals = runs_lib.run_evals(results_dir, run.id)
    if fmt == "json":
        echo(json.dumps({"run": run.to_json(), "evals": [e.to_json() for e in evals]}, indent=2, default=str))
        return
    top5 = runs_lib.show_top5(run, fmt)
    sections = [
        (f"run {run.id}", runs_lib.summary_frame(run, top5)),
        ("per-epoch curve (validation: center crop at Q)", runs_lib.curve_frame(run, top5)),
        ("stored evaluations", runs_lib.evals_frame(evals, top5)),
    ]
    notes = [f"to train it again: {runs_lib.reproduce_command(run)}"]
    echo(render_sections(sections, fmt, notes, key="table"))


@runs_app.command(
    "compare",
    epilog=examples(
        "vggbench runs compare 1cc2 3573 --diff-only",
        "vggbench runs compare 1cc2 3573 390c --format markdown",
    ),
)
def runs_compare(
    run_ids: list[str] = typer.Argument(..., help="two or more run ids or unique prefixes", metavar="RUN"),
    diff_only: bool = typer.Option(
        False, "--diff-only", help="only the rows where the runs differ", rich_help_panel=OUTPUT
    ),
    results_dir: Path = RESULTS_DIR_OPTION,
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP, rich_help_panel=OUTPUT),
) -> None:
    """Runs side by side: config (rows that differ first, marked *), errors, and their curves."""
    from vggbench import runs as runs_lib  # lazy: keeps CLI start-up fast

    check_format(fmt)
    chosen = runs_lib.get_runs(results_dir, run_ids, at_least=2)
    sections = [
        ("runs side by side (* = differs)", runs_lib.compare_frame(chosen, diff_only)),
        ("val top-1 error (%) per epoch", runs_lib.curves_frame(chosen)),
    ]
    echo(render_sections(sections, fmt, key="table"))


@runs_app.command("diff", epilog=examples("vggbench runs diff results --results-dir build/demo"))
def runs_diff(
    reference: Path = typer.Argument(..., help="the reference store, e.g. results", metavar="REFERENCE"),
    results_dir: Path = RESULTS_DIR_OPTION,
) -> None:
    """This store's runs beside the reference's runs of the same ids, in one line: identical, or the
    largest difference of the final val top-1 error and whether it lies within the seed-to-seed spread."""
    from vggbench.reproduce import compare_stores, reproduction_line  # lazy: keeps CLI start-up fast

    echo(reproduction_line(compare_stores(results_dir, reference)))


@runs_app.command(
    "export",
    epilog=examples(
        "vggbench runs export --format csv --out records.csv",
        "vggbench runs export --epochs --out epochs.csv",
    ),
)
def runs_export(
    fmt: str = typer.Option("csv", "--format", help="csv or json", rich_help_panel=OUTPUT),
    out: Path = typer.Option(
        None,
        "--out",
        help="write here (atomically) instead of stdout",
        rich_help_panel=OUTPUT,
        metavar="FILE",
    ),
    epochs: bool = typer.Option(
        False,
        "--epochs",
        help="every run's epochs instead, one row per run and epoch (long format)",
        rich_help_panel=OUTPUT,
    ),
    results_dir: Path = RESULTS_DIR_OPTION,
) -> None:
    """Every run and evaluation record, flattened to one row each (kind says which), for pandas:
    pd.read_csv or pd.read_json. With --epochs, every epoch of every run, one row each."""
    # lazy: keeps CLI start-up fast
    from vggbench import runs as runs_lib
    from vggbench.store import atomic_write_text

    check_format(fmt, runs_lib.EXPORT_FORMATS)
    if out is not None:
        runs_lib.check_export_target(out, results_dir)
    rows = runs_lib.epoch_rows(results_dir) if epochs else runs_lib.export_rows(results_dir)
    text = runs_lib.render_export(rows, fmt, runs_lib.EPOCH_EXPORT_COLUMNS if epochs else ())
    if out is None:
        sys.stdout.write(text)
        return
    atomic_write_text(out, text)
    wrote(out)
