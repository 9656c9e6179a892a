"""What the terminal shows: errors named as errors, top-5 only where it says something, tables that
fit the terminal, and the run browser's columns, sort and diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_runs_command import ID_A, ID_B, ID_C, make_run

from vggbench import runs, store


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A at 10 classes, A-LRN at 1000 classes (top-5 says something there)."""
    store.write_run(tmp_path, make_run(ID_A))
    wide = make_run(ID_B, net="A-LRN", errors=(79.0, 50.0))
    wide.classes = [str(i) for i in range(1000)]
    store.write_run(tmp_path, wide)
    return tmp_path


def test_a_run_in_words_names_errors_as_errors_and_counts_epochs():
    run = make_run(ID_A)
    assert runs.outcome(run) == "val top-1 err 41.25% top-5 err 10.31% after 2 epochs (schedule)"
    one = make_run(ID_A, errors=(89.5,))
    one.stopped_by = "epoch cap"
    assert runs.outcome(one) == "val top-1 err 89.50% top-5 err 22.38% after 1 epoch (epoch cap)"
    assert (runs.plural(1, "run"), runs.plural(0, "run"), runs.plural(2, "run")) == (
        "1 run",
        "0 runs",
        "2 runs",
    )
    assert runs.train_summary(run, False, Path("r")) == (
        f"run {ID_A}: A width 0.125 crop 32 S=256 on fashion-mnist: val top-1 err 41.25% top-5 err "
        f"10.31% after 2 epochs (schedule), 150 s, 1685 img/s, data 3% of train time; r/runs/{ID_A}.json"
    )


def test_runs_list_shows_top5_only_for_more_than_ten_classes(cli, root):
    table = cli("runs", "list", "--results-dir", str(root), "--wide").out
    header = next(line for line in table.splitlines() if "top-1 err %" in line)
    assert "top-5 err %" in header
    row_a = next(line for line in table.splitlines() if ID_A in line)
    row_b = next(line for line in table.splitlines() if ID_B in line)
    assert "10.31" not in row_a and "12.50" in row_b  # B's top-5: 50 / 4
    store.write_run(root, make_run(ID_C))
    (root / "runs" / f"{ID_B}.json").unlink()
    only_ten = cli("runs", "list", "--results-dir", str(root), "--wide").out
    assert "top-1 err" in only_ten and "top-5" not in only_ten
    rows = json.loads(cli("runs", "list", "--results-dir", str(root), "--format", "json").out)
    assert [r["top5_err"] for r in rows] == [10.3125, 10.3125]  # JSON keeps every key and value


def test_runs_show_leaves_top5_out_at_ten_classes_but_not_in_csv(cli, root):
    ten = cli("runs", "show", ID_A, "--results-dir", str(root)).out
    assert "val top-1 err (%)" in ten and "top-5" not in ten and "val_top5_err" not in ten
    thousand = cli("runs", "show", ID_B, "--results-dir", str(root)).out
    assert "50.00 / 12.50" in thousand and "val_top5_err" in thousand
    csv = cli("runs", "show", ID_A, "--results-dir", str(root), "--format", "csv").out
    assert "val_top5_err" in csv.splitlines()[0]


# --- Tables that fit the terminal ----------------------------------------------------------------


def _widest(text: str) -> int:
    return max(map(len, text.splitlines()))


def test_params_runs_list_and_eval_tables_fit_80_columns_with_numbers_whole(cli, root, monkeypatch):
    from test_runs_command import make_eval

    from vggbench.cli.eval import NARROW_OPTIONAL
    from vggbench.render import render
    from vggbench.report.tables import RESULT_HEADERS, results_frame

    monkeypatch.setenv("COLUMNS", "80")
    params = cli("params").out
    assert _widest(params) <= 80 and "132,863,336" in params and "143,667,240" in params
    store.write_run(root, make_run(ID_C, scale="256:512", errors=(70.0, 33.5)))
    listed = cli("runs", "list", "--results-dir", str(root)).out
    assert _widest(listed) <= 80
    assert all(i in listed for i in (ID_A, ID_B, ID_C)) and "33.50" in listed and "256:512" in listed
    frame = results_frame([make_eval(ID_A), make_eval(ID_C, top1=9.75)]).rename(columns=RESULT_HEADERS)
    table = render(frame, "table", "Evaluation", optional=NARROW_OPTIONAL)
    assert _widest(table) <= 80 and "12.50" in table and "9.75" in table and "10,000" in table
    assert ID_A[:8] in table


def test_wide_keeps_the_whole_layout(cli, root, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    wide = cli("params", "--wide").out
    assert _widest(wide) > 80 and "FLOPs (2 x MACs)" in wide and "15,218,180,096" in wide
    listed = cli("runs", "list", "--results-dir", str(root), "--wide").out
    assert "train s" in listed and "40 (schedule)" in listed and "complete" in listed


def test_a_narrow_table_shortens_ids_to_a_unique_prefix_and_notes_what_every_row_shares():
    import pandas as pd

    from vggbench.render import render_table

    frame = pd.DataFrame(
        {
            "id": ["ab12c0ffee01", "ab12c0ffee02"],
            "init": ["init-from ab12c0ffee01", "init-from 77e0aa11bb22"],
            "dataset": ["fashion-mnist"] * 2,
            **{f"value {i}": [1234567.0, 2.5] for i in range(4)},
        }
    )
    text = render_table(frame, width=80)
    assert _widest(text) <= 80
    assert "ab12c0ffee01" in text and "ab12c0ffee02" in text  # the row's own id is whole
    assert "in every row: dataset fashion-mnist" in text
    assert "1234567.00" in text


# --- The run browser ---------------------------------------------------------------------------


def test_runs_list_sorts_by_a_column_and_shows_seed_and_created(cli, root):
    store.write_run(root, make_run(ID_C, errors=(70.0, 33.5), seed=2))
    rows = json.loads(
        cli("runs", "list", "--results-dir", str(root), "--format", "json", "--sort", "top1_err").out
    )
    assert [r["id"] for r in rows] == [ID_C, ID_A, ID_B]
    assert [r["seed"] for r in rows] == [2, 0, 0] and rows[0]["created"] == "2026-12-02T06:21:31+00:00"
    by_header = json.loads(
        cli("runs", "list", "--results-dir", str(root), "--format", "json", "--sort", "top-1 err %").out
    )
    assert [r["id"] for r in by_header] == [ID_C, ID_A, ID_B]
