"""What the terminal shows: errors named as errors, top-5 only where it says something, tables that
fit the terminal, and the run browser's columns, sort and diff."""

from __future__ import annotations

import json
import re
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
    frame["count"] = pd.array([None, None], dtype="Int64")  # a column with no value at all
    assert "count" in render_table(frame, width=40)


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


def test_runs_compare_diff_only_keeps_the_rows_that_differ(cli, root):
    both = ["runs", "compare", ID_A, ID_B, "--results-dir", str(root), "--format", "json"]
    full = json.loads(cli(*both).out)["runs side by side (* = differs)"]
    only = json.loads(cli(*both, "--diff-only").out)["runs side by side (* = differs)"]
    assert only == [row for row in full if row["differs"] == "*"]
    assert [row["field"] for row in only][:1] == ["config.net"] and len(only) < len(full)


def _config_of(argv: list[str]):
    """The TrainConfig that `vggbench train` would build from `argv` (parsed by train's own options)."""
    import typer

    from vggbench.cli.app import app
    from vggbench.recipe import SETTINGS
    from vggbench.train import TrainConfig

    train = typer.main.get_command(app).commands["train"]
    given = train.make_context("train", argv).params
    options = {s.name: given[s.name] for s in SETTINGS if given[s.name] is not None}
    return TrainConfig(**options)


def test_the_reproduce_command_builds_the_same_config_and_run_id():
    import shlex

    from vggbench.train import TrainConfig

    config = TrainConfig(
        net="A-LRN",
        width=0.0625,
        crop=32,
        data="synthetic",
        limit_train=64,
        scale="256:512",
        seed=3,
        lr=0.003,
        stop="schedule",
        epochs=5,
        patience=1,
        channels_last=False,
        deterministic=True,
        init="paper",
        init_std=0.1,
    )
    run = make_run(ID_A)
    run.config = config.to_dict()
    command = runs.reproduce_command(run)
    argv = shlex.split(command)
    assert argv[:2] == ["vggbench", "train"] and "--no-channels-last" in argv and "--deterministic" in argv
    again = _config_of(argv[2:])
    assert again.to_dict() == run.config and again.run_id == config.run_id


def test_runs_show_prints_the_command_that_made_the_run_and_one_that_trains_it_again(cli, root):
    run = make_run(ID_C)
    run.argv, run.package_version = ["ablate", "lrn", "--preset", "quick"], "0.1.0"
    store.write_run(root, run)
    shown = cli("runs", "show", ID_C, "--results-dir", str(root))
    assert "vggbench ablate lrn --preset quick" in shown.out and "vggbench 0.1.0" in shown.out
    again = next(line for line in shown.out.splitlines() if "to train it again" in line)
    assert again == f"note: to train it again: {runs.reproduce_command(run)}"
    assert "made by            -" in cli("runs", "show", ID_A, "--results-dir", str(root)).out


def test_old_records_read_without_argv_and_the_json_has_the_final_errors_at_top_level(root):
    path = root / "runs" / f"{ID_A}.json"
    data = json.loads(path.read_text())
    assert (data["top1_err"], data["top5_err"]) == (41.25, 10.3125)  # the last epoch's
    for key in ("argv", "package_version", "top1_err", "top5_err"):
        data.pop(key)
    path.write_text(json.dumps(data))
    old = store.read_run(root, ID_A)
    assert old.argv == [] and old.package_version == "" and old.top1_err == 41.25
    assert old == make_run(ID_A)


# --- Tracking --------------------------------------------------------------------------------------


def test_runs_export_epochs_is_long_format_for_pandas_in_one_call(cli, root, tmp_path_factory):
    import pandas as pd

    out = tmp_path_factory.mktemp("export") / "epochs.csv"
    result = cli("runs", "export", "--epochs", "--out", str(out), "--results-dir", str(root))
    assert result.code == 0, result.err
    frame = pd.read_csv(out)
    assert list(frame[["id", "epoch"]].itertuples(index=False, name=None)) == [
        (ID_A, 1),
        (ID_A, 2),
        (ID_B, 1),
        (ID_B, 2),
    ]
    assert frame["val_top1_err"].tolist() == [80.0, 41.25, 79.0, 50.0]
    assert frame.loc[0, "net"] == "A" and frame.loc[0, "seed"] == 0 and frame.loc[0, "lr"] == 0.005
    as_json = pd.read_json(
        __import__("io").StringIO(
            cli("runs", "export", "--epochs", "--format", "json", "--results-dir", str(root)).out
        )
    )
    assert as_json.shape[0] == 4 and as_json["val_top5_err"].tolist() == [20.0, 10.3125, 19.75, 12.5]
    empty = cli("runs", "export", "--epochs", "--results-dir", str(tmp_path_factory.mktemp("none"))).out
    assert empty.splitlines() == [",".join(runs.EPOCH_EXPORT_COLUMNS)]


def test_epochs_csv_keeps_every_epoch_exactly():
    import io

    import pandas as pd

    from vggbench.tracking import EPOCH_COLUMNS, epochs_csv

    run = make_run(ID_A, errors=(80.0, 41.25, 1 / 3))
    frame = pd.read_csv(io.StringIO(epochs_csv(run.epochs)))
    assert tuple(frame.columns) == EPOCH_COLUMNS
    assert frame["val_top1_err"].tolist() == [80.0, 41.25, 1 / 3] and frame["epoch"].tolist() == [1, 2, 3]
    assert frame["data_time_fraction"].tolist() == [0.03] * 3


def test_a_tensorboard_folder_is_named_by_arm_seed_and_id():
    from vggbench.tracking import run_folder_name

    assert run_folder_name("A-LRN", 2, ID_A) == f"A-LRN-seed2-{ID_A}"
    assert run_folder_name("S=256->384", 0, ID_A) == f"S=256-_384-seed0-{ID_A}"


def _tensorboard_missing() -> str | None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return "tensorboard is not installed (pip install 'vggbench[tensorboard]')"
    return None


@pytest.mark.skipif(_tensorboard_missing() is not None, reason=str(_tensorboard_missing()))
def test_train_records_its_command_writes_epochs_csv_and_tensorboard_reads_its_events(cli, tmp_path):
    import pandas as pd
    from conftest import train_argv
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    argv = train_argv(
        epochs=2,
        limit_train=64,
        limit_val=32,
        batch=32,
        results_dir=tmp_path / "r",
        tensorboard=tmp_path / "tb",
    )
    result = cli(*argv)
    assert result.code == 0, result.err
    assert "val top-1 err" in result.err and "top-5 err" in result.err and "after 2 epochs" in result.out
    (run,) = store.read_runs(tmp_path / "r")
    assert result.out.startswith(runs.train_summary(run, False, tmp_path / "r"))
    if runs.stalled_at_chance(run):  # a first run of the defaults: the summary says what to change
        assert "stalled at chance (90% for 10 classes); try --preset quick" in result.out
    assert run.argv == argv and run.package_version
    csv = pd.read_csv(tmp_path / "r" / "checkpoints" / run.id / "epochs.csv")
    assert csv["val_top1_err"].tolist() == [e.val_top1_err for e in run.epochs]
    assert csv["train_loss"].tolist() == [e.train_loss for e in run.epochs]
    (folder,) = (tmp_path / "tb").iterdir()
    assert folder.name == f"A-seed0-{run.id}"
    events = EventAccumulator(str(folder))
    events.Reload()
    import numpy as np

    for tag, name in {"train/loss": "train_loss", "val/top1_err": "val_top1_err", "train/lr": "lr"}.items():
        points = [(s.step, s.value) for s in events.Scalars(tag)]
        assert points == [(e.epoch, float(np.float32(getattr(e, name)))) for e in run.epochs], tag
    assert {"train/images_per_s", "train/data_share", "val/top5_err"} <= set(events.Tags()["scalars"])
    stored = cli(*argv)  # the stored run: its folder is not written twice
    assert stored.code == 0 and len(list(folder.iterdir())) == 1
    elsewhere = [*argv[:-1], str(tmp_path / "tb2")]  # but a new folder gets it whole, from its record
    assert cli(*elsewhere).code == 0
    again = EventAccumulator(str(tmp_path / "tb2" / folder.name))
    again.Reload()
    assert [s.value for s in again.Scalars("val/top1_err")] == [
        s.value for s in events.Scalars("val/top1_err")
    ]


@pytest.mark.parametrize("command", [["train", "--crop", "32", "--quiet"], ["ablate", "lrn", "--quiet"]])
def test_tensorboard_missing_is_a_one_line_error_before_any_work(cli, tmp_path, monkeypatch, command):
    import sys

    from conftest import assert_one_line_error

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails: not installed
    argv = [*command, "--tensorboard", str(tmp_path / "tb"), "--results-dir", str(tmp_path / "r")]
    assert_one_line_error(cli(*argv), "--tensorboard needs the tensorboard package", "vggbench[tensorboard]")
    assert not (tmp_path / "r").exists() and not (tmp_path / "tb").exists()


# --- First-run help --------------------------------------------------------------------------------


def test_train_preset_takes_the_presets_budget_and_explicit_flags_over_it(cli, tmp_path):
    from vggbench.train import TrainConfig

    smoke = runs.preset_defaults("smoke")
    assert smoke == {
        "data": "synthetic",
        "width": 0.0625,
        "crop": 32,
        "epochs": 2,
        "batch_size": 64,
        "limit_train": 512,
        "limit_val": 128,
        "lr": 0.005,
    }
    expected = TrainConfig(**{**smoke, "crop": 64, "seed": 4})
    store.write_run(tmp_path, make_run(expected.run_id))  # found stored: nothing trains
    argv = ["train", "--preset", "smoke", "--crop", "64", "--seed", "4", "--results-dir", str(tmp_path)]
    result = cli(*argv, "--device", "cpu")
    assert result.code == 0, result.err
    assert result.out.startswith(f"run {expected.run_id} (stored; --force retrains)")
    assert runs.preset_defaults("quick", fine_tune=True)["lr"] == 0.0005  # a tenth, as ablate's


def test_a_run_stalled_at_chance_says_so_with_the_change_most_likely_to_fix_it():
    run = make_run(ID_A, errors=(90.0, 89.5))
    run.stopped_by = "stalled"
    assert runs.outcome(run) == (
        "val top-1 err 89.50% top-5 err 22.38% after 2 epochs, stalled at chance (90% for 10 classes)"
    )
    summary = runs.train_summary(run, False, Path("r"))
    assert "stalled at chance (90% for 10 classes); try --preset quick" in summary
    run.argv = ["train", "--preset", "quick"]
    assert runs.stall_fix(run) == "try a lower --lr (e.g. 0.0017)"
    run.init.scheme = "paper"
    assert runs.stall_fix(run).startswith("try --init glorot")
    assert runs.given_preset(run) == "quick"
    learning = make_run(ID_B)
    assert "stalled" not in runs.train_summary(learning, False, Path("r"))


# --- Wording ---------------------------------------------------------------------------------------

HELPS = [
    ["params"],
    ["train"],
    ["ablate"],
    ["report"],
    ["eval"],
    ["bench"],
    ["runs", "list"],
    ["runs", "export"],
]


@pytest.mark.parametrize("argv", HELPS, ids=" ".join)
def test_help_examples_fit_80_columns_and_break_only_before_an_option(cli, monkeypatch, argv):
    monkeypatch.setenv("COLUMNS", "80")
    text = cli(*argv, "--help").out
    lines = text.rstrip().split("Examples:")[-1].strip("\n").splitlines()
    assert lines and all(len(line) <= 80 for line in lines)
    for line, following in zip(lines, lines[1:]):
        if line.rstrip().endswith("\\"):  # continued: the next line starts with an option
            assert following.strip().startswith("-"), (line, following)
        else:
            assert re.match(r"\s*(vggbench|torchrun) ", following), following


def test_train_and_eval_type_data_root_alike_and_quiet_is_one_flag(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    for command in ("train", "eval"):
        line = next(
            line for line in cli(command, "--help").out.splitlines() if re.search(r"--data-root +<", line)
        )
        assert "<path>" in line, line
    ablate = cli("ablate", "--help").out
    assert "--quiet" in ablate and "--no-quiet" not in ablate


def test_eta_holds_through_validation():
    from vggbench.cli.progress import eta_text

    assert eta_text(60.0, 30, 120) == "0:03:00"  # a quarter done in a minute
    assert eta_text(3725.0, 1, 2) == "1:02:05"
    assert eta_text(None, 0, 10) == eta_text(5.0, 0, 10) == eta_text(5.0, 3, None) == "-:--:--"


def test_ablate_says_how_each_run_ended_and_its_error(capsys, root):
    from vggbench.ablations.sweep import SweepStep
    from vggbench.cli.progress import SweepBars

    bars = SweepBars(quiet=False, name="lrn", results_dir=root)
    bars.clock, bars.started = (lambda: 60.0), 0.0
    with bars:
        bars.on_run(SweepStep(1, 2, "A", 0, ID_A, False))
        bars.on_run(SweepStep(2, 2, "A-LRN", 0, ID_B, True))
    assert capsys.readouterr().err.splitlines() == [
        f"lrn: run 1 of 2: arm 'A', seed 0 (run {ID_A}); ETA after the first run",
        f"lrn: run 1 of 2 done: arm 'A', seed 0 (run {ID_A}): val top-1 err 41.25% top-5 err 10.31% after 2 "
        "epochs (schedule)",
        f"lrn: run 2 of 2: arm 'A-LRN', seed 0 (run {ID_B}, stored); about 60 s left (from 1 run so far)",
        f"lrn: run 2 of 2 done: arm 'A-LRN', seed 0 (run {ID_B}, stored): val top-1 err 50.00% top-5 err "
        "12.50% after 2 epochs (schedule)",
    ]


def test_ctrl_c_is_said_as_interrupted_not_as_an_error(capsys, monkeypatch):
    import importlib

    app_module = importlib.import_module("vggbench.cli.app")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(
        app_module.typer.main, "get_command", lambda app: type("C", (), {"main": interrupt, "params": []})()
    )
    monkeypatch.setattr(app_module, "_tidy", lambda command: command)
    assert app_module.run(["params"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.skipif(_tensorboard_missing() is not None, reason=str(_tensorboard_missing()))
def test_ablate_logs_each_trained_run_as_its_epochs_end_and_each_stored_run_whole(root, tmp_path):
    from types import SimpleNamespace

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vggbench.ablations.sweep import SweepStep
    from vggbench.tracking import TensorBoard

    board = TensorBoard(tmp_path / "tb")
    trained = make_run(ID_A)
    board.on_run(SweepStep(1, 2, "A", 0, ID_A, False))
    for metrics in trained.epochs:  # as the trainer's on_epoch_end sees them
        board.log_epoch(SimpleNamespace(epoch=metrics.epoch, metrics=metrics))
    board.on_run(SweepStep(2, 2, "A-LRN", 0, ID_B, True))  # stored: nothing trains
    board.log_stored(root, [("A", ID_A), ("A-LRN", ID_B)])  # what the sweep's record lists
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == [f"A-LRN-seed0-{ID_B}", f"A-seed0-{ID_A}"]
    for name, errors in ((f"A-seed0-{ID_A}", [80.0, 41.25]), (f"A-LRN-seed0-{ID_B}", [79.0, 50.0])):
        events = EventAccumulator(str(tmp_path / "tb" / name))
        events.Reload()
        assert [(s.step, s.value) for s in events.Scalars("val/top1_err")] == [(1, errors[0]), (2, errors[1])]
    assert len(list((tmp_path / "tb" / f"A-seed0-{ID_A}").iterdir())) == 1  # not written twice
