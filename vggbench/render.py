"""One table, five formats: a rich terminal table, Markdown, LaTeX, JSON and CSV from a DataFrame.

pandas and rich are imported inside the functions: the CLI imports this module to build its help,
and `vggbench --help` should not pay for them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vggbench.errors import VggbenchError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "markdown", "latex", "json", "csv")

#: Columns that hold run or record ids (init: 'init-from <id>'): never wrapped or cut in a
#: terminal table, as ids are for copying into the next command.
ID_COLUMNS = frozenset(
    {"id", "run", "runs", "run id", "eval id", "init", "init_from", "init from", "preinit from"}
)


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    if fmt not in allowed:
        raise VggbenchError(f"unknown format {fmt!r}; choose one of {', '.join(allowed)}")
    return fmt


def _cell(value: object) -> str:
    import pandas as pd  # lazy: keeps CLI start-up fast

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


def render_table(frame: pd.DataFrame, title: str | None = None, width: int = 160, slack: int = 40) -> str:
    """A rich table as text (used for the terminal). Id columns keep their full width (no wrap, no
    ellipsis); other columns fold when the table is wider than `width` + `slack`."""
    from rich.console import Console  # lazy: keeps CLI start-up fast
    from rich.table import Table

    shown = _display(frame)
    table = Table(title=title)
    for column, justify in zip(frame.columns, _alignment(frame)):
        if str(column) in ID_COLUMNS:
            longest = max([len(str(column))] + [len(str(v)) for v in shown[column]])
            table.add_column(str(column), justify=justify, no_wrap=True, min_width=longest)
        else:
            table.add_column(str(column), justify=justify, overflow="fold")
    for row in shown.itertuples(index=False):
        table.add_row(*row)
    wide = Console(width=10_000)
    measure = table.__rich_measure__(wide, wide.options)
    # up to `slack` columns past `width` rather than fold a table that nearly fits; never narrower
    # than its id columns need
    fit = max(measure.minimum, min(measure.maximum, width + slack), width)
    console = Console(file=io.StringIO(), width=fit, force_terminal=False, color_system=None)
    console.print(table)
    return console.file.getvalue()


def _alignment(frame: pd.DataFrame) -> list[str]:
    """Numbers right, text left, decided on the raw values (display turns all into text)."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    return ["right" if pd.api.types.is_numeric_dtype(frame[c]) else "left" for c in frame.columns]


def render_markdown(frame: pd.DataFrame) -> str:
    return _display(frame).to_markdown(index=False, colalign=_alignment(frame)) + "\n"


#: LaTeX's special characters in text and what stands for each (pandas escapes cells, not captions).
LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_text(text: str) -> str:
    """`text` with LaTeX's special characters escaped, e.g. for a caption."""
    return "".join(LATEX_SPECIAL.get(char, char) for char in text)


def render_latex(frame: pd.DataFrame, caption: str | None = None, label: str | None = None) -> str:
    align = "".join(a[0] for a in _alignment(frame))
    return _display(frame).to_latex(
        index=False,
        caption=latex_text(caption) if caption else None,
        label=label,
        column_format=align,
        escape=True,
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


def render_sections(
    sections: Sequence[tuple[str, pd.DataFrame]], fmt: str, notes: Sequence[str] = (), key: str = "table"
) -> str:
    """Several titled tables as one output in `fmt`, each format still parseable as a whole:
    table, Markdown and LaTeX print each table under its title (notes after them: plain lines,
    Markdown lines, LaTeX comments); JSON is one object {title: rows, ..., "notes": [...]}; CSV is
    one table, the rows of every section under a first column `key` naming its section (columns a
    section lacks are empty), so that pandas reads it in one call (notes are left out)."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    check_format(fmt)
    if fmt == "csv":
        frames = [
            frame.astype(object).assign(**{key: title})[[key, *frame.columns]] for title, frame in sections
        ]
        return pd.concat(frames, ignore_index=True).to_csv(index=False) if frames else ""
    if fmt == "json":
        out = {title: json.loads(frame.to_json(orient="records")) for title, frame in sections}
        if notes:
            out["notes"] = list(notes)
        return json.dumps(out, indent=2) + "\n"
    parts = []
    for title, frame in sections:
        if fmt == "markdown":
            parts.append(f"**{title}**\n\n{render_markdown(frame)}")
        else:
            parts.append(render(frame, fmt, title))
    prefix = {"latex": "% ", "markdown": "", "table": ""}[fmt]
    parts += [f"{prefix}note: {note}\n" for note in notes]
    return "\n".join(parts)
