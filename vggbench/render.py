"""One table, five formats: a rich terminal table, Markdown, LaTeX, JSON and CSV from a DataFrame."""

from __future__ import annotations

import io
import json

import pandas as pd
from rich.console import Console
from rich.table import Table

from vggbench.errors import VggbenchError

FORMATS = ("table", "markdown", "latex", "json", "csv")


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    if fmt not in allowed:
        raise VggbenchError(f"unknown format {fmt!r}; choose one of {', '.join(allowed)}")
    return fmt


def _cell(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).map(_cell) if len(frame) else frame


def render_table(frame: pd.DataFrame, title: str | None = None, width: int = 160) -> str:
    """A rich table as text (used for the terminal)."""
    table = Table(title=title)
    for column, justify in zip(frame.columns, _alignment(frame)):
        table.add_column(str(column), justify=justify)
    for row in _display(frame).itertuples(index=False):
        table.add_row(*row)
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(table)
    return console.file.getvalue()


def _alignment(frame: pd.DataFrame) -> list[str]:
    """Numbers right, text left, decided on the raw values (display turns all into text)."""
    return ["right" if pd.api.types.is_numeric_dtype(frame[c]) else "left" for c in frame.columns]


def render_markdown(frame: pd.DataFrame) -> str:
    return _display(frame).to_markdown(index=False, colalign=_alignment(frame)) + "\n"


def render_latex(frame: pd.DataFrame, caption: str | None = None, label: str | None = None) -> str:
    align = "".join(a[0] for a in _alignment(frame))
    return _display(frame).to_latex(
        index=False, caption=caption, label=label, column_format=align, escape=True
    )


def render(frame: pd.DataFrame, fmt: str, title: str | None = None) -> str:
    """The frame in `fmt`; JSON keeps raw values (a list of objects, one per row)."""
    check_format(fmt)
    if fmt == "table":
        return render_table(frame, title)
    if fmt == "markdown":
        return render_markdown(frame)
    if fmt == "latex":
        return render_latex(frame, caption=title)
    if fmt == "csv":
        return frame.to_csv(index=False)
    return json.dumps(json.loads(frame.to_json(orient="records")), indent=2) + "\n"
