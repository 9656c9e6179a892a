"""`vggbench report`: every table the store can fill, beside the paper's numbers."""

from __future__ import annotations

from pathlib import Path

import typer

from vggbench.cli.common import OUTPUT, examples, wrote

EPILOG = examples(
    "vggbench report",
    "vggbench report --results-dir build/demo --out build/demo",
    "vggbench report --no-plots",
)


def report_command(
    results_dir: Path = typer.Option(
        Path("results"), help="the results store to read", rich_help_panel=OUTPUT
    ),
    out: Path = typer.Option(
        None,
        help="where to write REPORT.md, tables/ and plots/ (default: the results store)",
        rich_help_panel=OUTPUT,
    ),
    plots: bool = typer.Option(True, help="also draw PNG plots with matplotlib", rich_help_panel=OUTPUT),
) -> None:
    """Render every table the store can fill, beside the paper's numbers: Markdown, LaTeX, plots."""
    # lazy: keeps CLI start-up fast (torch loads only for the command that needs it)
    from vggbench.report.write import write_report

    for path in write_report(results_dir, out or results_dir, plots=plots):
        wrote(path)
