"""One table, five formats: a rich terminal table, Markdown, LaTeX, JSON and CSV from a DataFrame.

pandas and rich are imported inside the functions: the CLI imports this module to build its help,
and `vggbench --help` should not pay for them.
"""

from __future__ import annotations

import functools
import io
import json
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
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


#: What a cell shows where it has no value.
MISSING = "-"


def _cell(value: object) -> str:
    import pandas as pd  # lazy: keeps CLI start-up fast

    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).map(_cell) if len(frame) else frame


def render_table(
    frame: pd.DataFrame,
    title: str | None = None,
    width: int | None = None,
    wide: bool = False,
    optional: Sequence[str] = (),
) -> str:
    """A rich table as text for the terminal, at most `width` columns wide (default: the terminal's,
    rich's Console, which honours COLUMNS). Numbers and ids are never cut; their headers wrap over
    lines as narrow as their values, text columns fold, and when that is not enough ids are shortened
    to their shortest unique prefix (at least `SHORT_ID` characters; commands take prefixes) and
    counts are given in G or M, and at last the `optional` columns are left out (a line under the
    table says so). `wide`: today's layout, ruled, up to 200 columns."""
    from rich.console import Console  # lazy: keeps CLI start-up fast

    shown = _display(frame)
    if wide:
        table = _wide_table(frame, shown, title)
        return _print(table, _wide_fit(table))
    width = width or Console().width
    notes: list[str] = []
    leave_out = functools.partial(_leave_out, optional=optional)
    steps = (_as_shown, _wrapped_headers, _one_value_noted, _short_ids, leave_out, _in_billions, _in_millions)
    wrap = False
    for step in steps:
        frame, shown, notes = step(frame, shown, notes)
        wrap = wrap or step is _wrapped_headers
        if _fits(frame, shown, width, wrap):
            break
    table, needed = _narrow_table(frame, shown, title, width, wrap)
    lines = [wrapped for note in notes for wrapped in textwrap.wrap(note, width, subsequent_indent="  ")]
    return _print(table, max(width, needed)) + "".join(f"{line}\n" for line in lines)


#: The fewest characters of an id that a narrow table shows (a unique prefix, as git's short hashes).
SHORT_ID = 8


def _print(table: object, width: int) -> str:
    from rich.console import Console  # lazy: keeps CLI start-up fast

    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(table)
    return console.file.getvalue()


def _wide_table(frame: pd.DataFrame, shown: pd.DataFrame, title: str | None) -> object:
    """Today's table: ruled, id columns at their full width, other columns folding."""
    from rich.table import Table  # lazy: keeps CLI start-up fast

    table = Table(title=title)
    for column, justify in zip(frame.columns, _alignment(frame)):
        if str(column) in ID_COLUMNS:
            longest = max([len(str(column))] + [len(str(v)) for v in shown[column]])
            table.add_column(str(column), justify=justify, no_wrap=True, min_width=longest)
        else:
            table.add_column(str(column), justify=justify, overflow="fold")
    for row in shown.itertuples(index=False):
        table.add_row(*row)
    return table


def _wide_fit(table: object, width: int = 160, slack: int = 40) -> int:
    """Up to `slack` columns past `width` rather than fold a table that nearly fits; never narrower
    than its id columns need."""
    from rich.console import Console  # lazy: keeps CLI start-up fast

    console = Console(width=10_000)
    measure = table.__rich_measure__(console, console.options)
    return max(measure.minimum, min(measure.maximum, width + slack), width)


#: Characters between two columns of a narrow table.
GAP = 2


#: The id columns that name the row itself: a narrow table never folds them (ids of other runs, as
#: in `init`, fold like text).
OWN_ID_COLUMNS = frozenset({"id", "run", "run id", "eval id"})


def _kept_whole(frame: pd.DataFrame) -> list[bool]:
    """Which columns never wrap: numbers and the row's own ids."""
    return [a == "right" or str(c) in OWN_ID_COLUMNS for c, a in zip(frame.columns, _alignment(frame))]


def _fixed_width(column: object, cells: list[str], wrap: bool) -> int:
    """A number or id column's width: its widest value or header (`wrap`: its header's longest word)."""
    header = _wrap(str(column), max(map(len, cells), default=0)) if wrap else [str(column)]
    return max(map(len, [*header, *cells]))


def _text_widths(column: object, cells: list[str]) -> tuple[int, int]:
    """A text column's (narrowest without breaking a word, widest) width."""
    texts = [str(column), *cells]
    return max(len(w) for text in texts for w in text.replace("/", "/ ").split(" ")), max(map(len, texts))


def _fits(frame: pd.DataFrame, shown: pd.DataFrame, width: int, wrap: bool) -> bool:
    """Whether the table fits `width` with its text columns folded at spaces only (`wrap`: and the
    headers of numbers and ids)."""
    total = GAP * (len(frame.columns) - 1)
    for column, whole in zip(shown.columns, _kept_whole(frame)):
        cells = [str(v) for v in shown[column]]
        total += _fixed_width(column, cells, wrap) if whole else _text_widths(column, cells)[0]
    return total <= width


def _narrow_table(
    frame: pd.DataFrame, shown: pd.DataFrame, title: str | None, width: int, wrap: bool
) -> tuple[object, int]:
    """A table without rules between columns, `width` wide at most: numbers and ids at their full
    width (their headers wrapped to it), text columns given the rest: their full width where it
    fits, else each its longest word and a share of what is left, else (folding inside words) a
    share of the room by that word's length. Returns the table and the width it needs (more than
    `width` only where its numbers and ids alone are wider)."""
    from rich import box  # lazy: keeps CLI start-up fast
    from rich.table import Table

    whole = _kept_whole(frame)
    cells = {c: [str(v) for v in shown[c]] for c in shown.columns}
    fixed = {c: _fixed_width(c, cells[c], wrap) for c, w in zip(shown.columns, whole) if w}
    text = {c: _text_widths(c, cells[c]) for c, w in zip(shown.columns, whole) if not w}
    room = width - sum(fixed.values()) - GAP * (len(shown.columns) - 1)
    widths = dict(fixed) | _share(text, room)
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for column, justify, kept in zip(shown.columns, _alignment(frame), whole):
        header = "\n".join(_wrap(str(column), widths[column])) if kept and wrap else str(column)
        table.add_column(header, justify=justify, no_wrap=kept, overflow="fold", width=widths[column])
    for row in shown.itertuples(index=False):
        table.add_row(*row)
    return table, sum(widths.values()) + GAP * (len(shown.columns) - 1)


def _share(text: dict[object, tuple[int, int]], room: int) -> dict[object, int]:
    """The widths of the text columns ((narrowest, widest) each) in `room` characters."""
    narrowest = sum(low for low, _ in text.values())
    widest = sum(high for _, high in text.values())
    if widest <= room:
        return {c: high for c, (_, high) in text.items()}
    if narrowest <= room:  # the narrowest columns whole first, the widest fold
        widths, spare = {c: low for c, (low, _) in text.items()}, room - narrowest
        for c, (low, high) in sorted(text.items(), key=lambda item: item[1][1] - item[1][0]):
            widths[c] += min(high - low, spare)
            spare -= widths[c] - low
        return widths
    return {c: max(1, low * room // max(narrowest, 1)) for c, (low, _) in text.items()}


def _wrap(header: str, width: int) -> list[str]:
    """A header's words on lines of at most `width` characters (or its longest word)."""
    lines = [""]
    for word in header.replace("/", "/ ").split(" "):
        joint = "" if lines[-1].endswith("/") else " "
        if lines[-1] and len(lines[-1]) + len(joint) + len(word) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]}{joint}{word}".strip()
    return lines


Step = tuple["pd.DataFrame", "pd.DataFrame", list[str]]


def _as_shown(frame: pd.DataFrame, shown: pd.DataFrame, notes: list[str]) -> Step:
    return frame, shown, notes


def _wrapped_headers(frame: pd.DataFrame, shown: pd.DataFrame, notes: list[str]) -> Step:
    """The headers of numbers and ids wrapped to their values' width (`render_table` tells
    `_fits` and `_narrow_table` from here on)."""
    return frame, shown, notes


def _one_value_noted(frame: pd.DataFrame, shown: pd.DataFrame, notes: list[str]) -> Step:
    """The text columns with one value in every row (of two or more) as a line under the table."""
    whole = dict(zip(shown.columns, _kept_whole(frame)))
    found = {str(c): shown[c].iloc[0] for c in shown.columns if not whole[c] and shown[c].nunique() == 1}
    if len(shown) < 2 or not found or len(found) == len(shown.columns):
        return frame, shown, notes
    line = "in every row: " + "; ".join(f"{c} {v}" for c, v in found.items())
    keep = [c for c in shown.columns if str(c) not in found]
    return frame[keep], shown[keep], [*notes, line]


_HEX_ID = re.compile(r"\b[0-9a-f]{12}\b")


def _short_ids(frame: pd.DataFrame, shown: pd.DataFrame, notes: list[str]) -> Step:
    """Every 12-hex-digit id in the id columns cut to the shortest prefix (at least SHORT_ID) that
    tells the table's ids apart."""
    columns = [c for c in shown.columns if str(c) in ID_COLUMNS - OWN_ID_COLUMNS]
    ids = sorted({m for c in columns for v in shown[c] for m in _HEX_ID.findall(str(v))})
    length = SHORT_ID
    while len({i[:length] for i in ids}) < len(ids):
        length += 1
    out = shown.copy()
    for c in columns:
        out[c] = [_HEX_ID.sub(lambda m: m.group()[:length], str(v)) for v in shown[c]]
    return frame, out, notes


def _in_units(shown: pd.DataFrame, frame: pd.DataFrame, unit: float, name: str) -> pd.DataFrame:
    """Whole-number columns of counts past `unit` in that unit, two decimals (7.61 G)."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    out = shown.copy()
    for column in frame.columns:
        values = frame[column]
        largest = values.abs().max() if pd.api.types.is_integer_dtype(values) else None
        if largest is not None and pd.notna(largest) and largest >= unit:
            out[column] = [MISSING if pd.isna(v) else f"{v / unit:.2f} {name}" for v in values]
    return out


def _in_billions(frame: pd.DataFrame, shown: pd.DataFrame, notes: list[str]) -> Step:
    """Counts past a billion in G, e.g. MACs: 7.61 G."""
    return frame, _in_units(shown, frame, 1e9, "G"), notes


def _in_millions(frame: pd.DataFrame, shown: pd.DataFrame, notes: list[str]) -> Step:
    """Counts past a million in M (after `_in_billions`: those below a billion)."""
    billions = _in_units(shown, frame, 1e9, "G")
    millions = _in_units(shown, frame, 1e6, "M")
    return frame, billions.where(billions != shown, millions), notes


def _leave_out(frame: pd.DataFrame, shown: pd.DataFrame, notes: list[str], optional: Sequence[str]) -> Step:
    gone = [c for c in optional if c in shown.columns]
    if not gone:
        return frame, shown, notes
    keep = [c for c in shown.columns if c not in gone]
    return frame[keep], shown[keep], [*notes, f"left out to fit: {', '.join(gone)} (--wide shows them)"]


def _alignment(frame: pd.DataFrame) -> list[str]:
    """Numbers right, text left, decided on the raw values (display turns all into text)."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    return ["right" if pd.api.types.is_numeric_dtype(frame[c]) else "left" for c in frame.columns]


def render_markdown(frame: pd.DataFrame) -> str:
    return _display(frame).to_markdown(index=False, colalign=_alignment(frame)) + "\n"


#: LaTeX's special characters in text and what stands for each. Under LaTeX's default font encoding
#: (OT1) < > | print as other glyphs (-> came out as "-¿"), so they are spelt as commands too.
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
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "±": r"$\pm$",
}
LATEX_ARROW = r"$\to$"


def latex_text(text: str) -> str:
    """`text` with LaTeX's special characters escaped and each `->` an arrow, e.g. for a caption."""
    return LATEX_ARROW.join("".join(LATEX_SPECIAL.get(c, c) for c in part) for part in text.split("->"))


#: \textwidth of a plain \documentclass{article} at its default 10pt, in points.
TEXT_WIDTH_PT = 345.0
#: How a table may be set, roomiest first: the font size, how wide its digits are against 10pt's
#: (Computer Modern's smaller sizes are drawn wider than a scaled 10pt) and \tabcolsep (LaTeX's
#: default is 6pt).
SETTINGS = (
    ("small", 0.925, 4.0),
    ("footnotesize", 0.85, 4.0),
    ("footnotesize", 0.85, 2.5),
    ("scriptsize", 0.8, 2.5),
)
#: Text columns whose widest cell is at least this wide (points at 10pt) may move to the notes.
NOTE_MIN_PT = 80.0
#: Widths at 10pt of Computer Modern's glyphs (cmr10), to estimate a table's width before TeX sets it.
_CMR10 = {
    **dict(
        zip("abcdefghijklm", (5.0, 5.56, 4.44, 5.56, 4.44, 3.06, 5.0, 5.56, 2.78, 3.06, 5.28, 2.78, 8.33))
    ),
    **dict(
        zip("nopqrstuvwxyz", (5.56, 5.0, 5.56, 5.28, 3.92, 3.94, 3.89, 5.56, 5.28, 7.22, 5.28, 5.28, 4.44))
    ),
    **dict.fromkeys("0123456789", 5.0),
    **dict.fromkeys(" -", 3.33),
    **dict.fromkeys("()", 3.89),
    **dict.fromkeys("[].,:;'!", 2.78),
    "/": 5.0,
    "I": 3.61,
    "J": 5.14,
    **dict.fromkeys("%±+=<>", 7.78),
}


def _width_pt(text: str) -> float:
    """About how wide `text` is at 10pt (capitals and other glyphs as 7.5pt, an arrow as 10pt)."""
    return sum(_CMR10.get(c, 7.5) for c in text.replace("->", "\x00")) + 2.5 * text.count("->")


def _widest_pt(texts: Sequence[str]) -> float:
    return max(map(_width_pt, texts), default=0.0)


def _header_lines(header: str, cells: Sequence[str]) -> list[str]:
    """A header's words on as many lines as keep each within its column's widest cell (or word)."""
    words = header.split(" ")
    width = max(_widest_pt(cells), _widest_pt(words))
    lines = [words[0]]
    for word in words[1:]:
        if _width_pt(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _table_pt(columns: dict[str, list[str]], setting: tuple[str, float, float]) -> float:
    """The estimated width of a table of `columns` set as `setting`, without \\tabcolsep at its edges."""
    _, scale, tabcolsep = setting
    cells = sum(_widest_pt([*_header_lines(header, texts), *texts]) for header, texts in columns.items())
    return scale * cells + 2 * tabcolsep * (len(columns) - 1)


def _note_key(index: int) -> str:
    return f"({chr(ord('a') + index)})" if index < 26 else f"({index + 1})"


def _one_value(columns: dict[str, list[str]], given: bool) -> dict[str, str]:
    """The columns that hold one value in every row (`given`: in at least two rows, the others
    missing), with that value."""
    found = {}
    for header, texts in columns.items():
        values = set(texts) - {MISSING} if given else set(texts)
        if len(values) == 1 and (not given or len(texts) - texts.count(MISSING) > 1):
            found[header] = values.pop()
    return found


@dataclass
class LatexLayout:
    """A table laid out to fit: its columns as display text with their alignment (l or r), the notes
    set under it, its setting (`SETTINGS`), and whether it is scaled down to \\textwidth besides."""

    columns: dict[str, list[str]]
    align: dict[str, str]
    notes: list[str]
    setting: tuple[str, float, float]
    resized: bool


def latex_layout(frame: pd.DataFrame) -> LatexLayout:
    """How a table fits a plain article's \\textwidth, by an estimate of its width. Columns with one
    value in every row go to the notes as that value, and so do those with one value wherever they
    have one (in two rows or more); then, while the table is wider than \\textwidth in the tightest
    setting, the text column with the widest cells (not the first: it names the row) goes to the notes,
    each distinct text once under a key, (a), (b), ..., that its cells show. The table takes the
    roomiest setting in which it fits; when none does, the tightest, scaled down to \\textwidth."""
    shown = _display(frame)
    columns = {str(c): list(shown[c]) for c in frame.columns}
    align = {str(c): a[0] for c, a in zip(frame.columns, _alignment(frame))}
    notes = []
    for given, lead in ((False, "In every row"), (True, "Wherever given")):
        if len(frame) < 2:
            break
        found = _one_value(columns, given)
        if found and len(found) < len(columns):
            notes.append(f"{lead}: " + "; ".join(f"{h}: {text}" for h, text in found.items()) + ".")
            columns = {h: texts for h, texts in columns.items() if h not in found}
    keys: dict[str, str] = {}
    moved: set[str] = set()
    while _table_pt(columns, SETTINGS[-1]) > TEXT_WIDTH_PT:
        movable = [
            h
            for h, texts in list(columns.items())[1:]
            if align[h] == "l" and h not in moved and _widest_pt(texts) >= NOTE_MIN_PT
        ]
        if not movable:
            break
        widest = max(movable, key=lambda h: _widest_pt(columns[h]))
        texts = [text for text in dict.fromkeys(columns[widest]) if text != MISSING]
        for text in texts:
            keys.setdefault(text, _note_key(len(keys)))
        notes.append(f"{widest}: " + "; ".join(f"{keys[text]} {text}" for text in texts) + ".")
        columns[widest] = [keys.get(text, text) for text in columns[widest]]
        moved.add(widest)
    fits = [setting for setting in SETTINGS if _table_pt(columns, setting) <= TEXT_WIDTH_PT]
    setting = fits[0] if fits else SETTINGS[-1]
    return LatexLayout(columns, {h: align[h] for h in columns}, notes, setting, resized=not fits)


def _latex_header_rows(columns: dict[str, list[str]]) -> list[str]:
    """The header as rows, one per line of the tallest header, each header on its bottom lines."""
    lines = {header: _header_lines(header, texts) for header, texts in columns.items()}
    height = max(map(len, lines.values()))
    padded = [[""] * (height - len(found)) + found for found in lines.values()]
    return [" & ".join(latex_text(cell) for cell in row) + " \\\\" for row in zip(*padded)]


def render_latex(frame: pd.DataFrame, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs table in a float that fits a plain article's \\textwidth (`latex_layout`): headers
    on several rows where that narrows a column, what left the columns in notes under it, every
    text escaped. A table scaled down (`LatexLayout.resized`) needs graphicx's \\resizebox."""
    layout = latex_layout(frame)
    columns = layout.columns
    tabular = [
        f"\\begin{{tabular}}{{@{{}}{''.join(layout.align.values())}@{{}}}}",
        "\\toprule",
        *_latex_header_rows(columns),
        "\\midrule",
        *(" & ".join(map(latex_text, row)) + " \\\\" for row in zip(*columns.values())),
        "\\bottomrule",
        "\\end{tabular}",
    ]
    if layout.resized:
        tabular = ["\\resizebox{\\textwidth}{!}{%", *tabular, "}"]
    lines = ["\\begin{table}", "\\centering"]
    lines += [f"\\caption{{{latex_text(caption)}}}"] if caption else []
    lines += [f"\\label{{{label}}}"] if label else []
    size, _, tabcolsep = layout.setting
    lines += [f"\\{size}", f"\\setlength{{\\tabcolsep}}{{{tabcolsep:g}pt}}", *tabular]
    if layout.notes:
        notes = [latex_text(note) + "\\par" for note in layout.notes]
        lines += ["\\par\\smallskip", "{\\footnotesize\\raggedright", *notes[:-1], notes[-1] + "}"]
    return "\n".join([*lines, "\\end{table}"]) + "\n"


def render(
    frame: pd.DataFrame, fmt: str, title: str | None = None, wide: bool = False, optional: Sequence[str] = ()
) -> str:
    """The frame in `fmt`; JSON keeps raw values (a list of objects, one per row); `wide` and
    `optional`: how a table fits the terminal (`render_table`)."""
    check_format(fmt)
    if fmt == "table":
        return render_table(frame, title, wide=wide, optional=optional)
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
