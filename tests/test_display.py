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
    table = cli("runs", "list", "--results-dir", str(root)).out
    header = next(line for line in table.splitlines() if "top-1 err %" in line)
    assert "top-5 err %" in header
    row_a = next(line for line in table.splitlines() if ID_A in line)
    row_b = next(line for line in table.splitlines() if ID_B in line)
    assert "10.31" not in row_a and "12.50" in row_b  # B's top-5: 50 / 4
    store.write_run(root, make_run(ID_C))
    (root / "runs" / f"{ID_B}.json").unlink()
    only_ten = cli("runs", "list", "--results-dir", str(root)).out
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
