"""`vggbench runs` (list, show, compare, export) and the library behind it (`vggbench.runs`), on a
store of hand-made records: exact values in, the same values out in every format."""

from __future__ import annotations

import io
import json
import re

import pandas as pd
import pytest
from conftest import assert_one_line_error

from vggbench import runs, store
from vggbench.store import (
    DataSource,
    EpochMetrics,
    EvalLimits,
    EvalRecord,
    InitInfo,
    Recipe,
    RunRecord,
)

#: Two run ids with a common prefix ("ab12"), and one apart.
ID_A, ID_B, ID_C = "ab12c0ffee01", "ab12d00dfeed", "77e0aa11bb22"


def make_run(run_id: str, net: str = "A", scale: str = "256", errors=(80.0, 41.25), **config) -> RunRecord:
    """A complete run record with the given val top-1 errors per epoch (top-5 = top-1 / 4)."""
    settings = {
        "net": net,
        "data": "fashion-mnist",
        "width": 0.125,
        "crop": 32,
        "batch_size": 128,
        "limit_train": 10000,
        "limit_val": None,
        "stop": "schedule",
        "patience": 2,
        "epochs": 40,
        "lr": 0.005,
        "init": "glorot",
        "scale": scale,
        "seed": 0,
        **config,
    }
    epochs = [
        EpochMetrics(n + 1, 2.0 - n / 10, 0.005, 5.0, 1700.0, 0.03, err, err / 4, 2.0)
        for n, err in enumerate(errors)
    ]
    return RunRecord(
        id=run_id,
        net=net,
        model={"net": net},
        config=settings,
        data=DataSource(settings["data"], limit_train=settings["limit_train"]),
        dataset=settings["data"],
        classes=[str(i) for i in range(10)],
        train_images=10000,
        skipped_images=0,
        val_images=10000,
        seed=settings["seed"],
        width=settings["width"],
        crop=settings["crop"],
        train_scale=scale,
        train_scale_pixels=[37, 37],
        input_range="0-255",
        val_scale=256,
        val_scale_pixels=37,
        init=InitInfo("glorot", random="glorot"),
        init_from=None,
        recipe=Recipe(
            settings["lr"],
            0.9,
            5e-4,
            0.5,
            settings["batch_size"],
            1,
            settings["epochs"],
            1,
            3,
            settings["stop"],
            3,
            5e-6,
        ),
        epochs=epochs,
        stopped_by="schedule",
        val_slope=-0.1,
        warnings=[],
        checkpoint=f"checkpoints/{run_id}/model.pt",
        wall_time_s=150.0,
        train_time_s=100.5,
        images_per_s=1684.9,
        data_time_fraction=0.03,
        device="cpu",
        world_size=1,
        machine="AMD EPYC, 2 cores",
        torch_version="2.14.1",
        code_version="abc",
        created="2026-12-02T06:21:31+00:00",
    )


def make_eval(run_id: str, top1: float = 12.5) -> EvalRecord:
    return EvalRecord(
        id=f"e{run_id[:11]}",
        runs=[run_id],
        nets=["A"],
        train_scales=["256"],
        method="dense",
        test_scales=[256],
        test_scales_px=[37],
        scales_spec="single",
        crop=32,
        dataset="fashion-mnist",
        limits=EvalLimits(),
        normalization=["train mean RGB"],
        images=10000,
        top1_err=top1,
        top5_err=1.75,
        top5_k=5,
        members=[],
        forward_passes_per_image=1.0,
        macs_per_image=1e6,
        seconds=3.0,
        images_per_s=3333.0,
        device="cpu",
        machine="AMD EPYC, 2 cores",
        torch_version="2.14.1",
        created="2026-12-02T06:30:00+00:00",
    )


@pytest.fixture
def root(tmp_path):
    """A store of three runs (A at S=256, A-LRN at S=256 with another lr, A at S=384 on the smoke
    preset's synthetic data), one evaluation of the first, and one interrupted run's checkpoint."""
    store.write_run(tmp_path, make_run(ID_A))
    store.write_run(tmp_path, make_run(ID_B, net="A-LRN", errors=(79.0, 50.0, 43.5), lr=0.01))
    smoke = {"data": "synthetic", "width": 0.0625, "batch_size": 64, "limit_train": 512, "limit_val": 128}
    store.write_run(tmp_path, make_run(ID_C, scale="384", stop="epochs", epochs=2, **smoke))
    store.write_eval(tmp_path, make_eval(ID_A))
    (tmp_path / "checkpoints" / "feedfacecafe").mkdir(parents=True)
    (tmp_path / "checkpoints" / "feedfacecafe" / "last.pt").write_bytes(b"")
    return tmp_path


def test_the_checkpoint_names_are_trains():
    from vggbench.train import checkpoint

    assert (runs.CHECKPOINTS, runs.LAST_CHECKPOINT) == (checkpoint.CHECKPOINTS, checkpoint.LAST_CHECKPOINT)


def test_list_json_has_every_run_with_exact_values_and_the_interrupted_one_last(cli, root):
    result = cli("runs", "list", "--results-dir", str(root), "--format", "json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert [r["id"] for r in rows] == [ID_A, ID_B, ID_C, "feedfacecafe"]
    first = rows[0]
    assert first == {
        "id": ID_A,
        "net": "A",
        "dataset": "fashion-mnist",
        "width": 0.125,
        "crop": 32,
        "train_scale": "256",
        "seed": 0,
        "budget": "40 (schedule)",
        "epochs": 2,
        "stopped_by": "schedule",
        "init": "glorot",
        "top1_err": 41.25,
        "top5_err": 10.3125,
        "train_time_s": 100.5,
        "status": "complete",
        "created": "2026-12-02T06:21:31+00:00",
    }
    assert rows[2]["budget"] == "2 (epochs)"
    assert rows[3]["status"] == runs.INTERRUPTED and rows[3]["net"] is None


@pytest.mark.parametrize(
    "filters, expected",
    [
        (["--config", "A"], [ID_A, ID_C]),
        (["--config", "a-lrn"], [ID_B]),
        (["--data", "synthetic"], [ID_C]),
        (["--scale", "384"], [ID_C]),
        (["--scale", "384:384"], [ID_C]),  # the same train scale, as runs record it
        (["--preset", "quick"], [ID_A, ID_B]),
        (["--preset", "smoke"], [ID_C]),
        (["--preset", "paper"], []),
        (["--config", "A", "--preset", "quick"], [ID_A]),
    ],
)
def test_list_filters(cli, root, filters, expected):
    result = cli("runs", "list", "--results-dir", str(root), "--format", "json", *filters)
    assert result.code == 0, result.err
    assert [r["id"] for r in json.loads(result.out)] == expected


def test_list_table_never_cuts_an_id(cli, root, monkeypatch):
    narrow = cli("runs", "list", "--results-dir", str(root)).out
    assert all(run_id in narrow for run_id in (ID_A, ID_B, ID_C, "feedfacecafe"))
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal, and --wide: every column, unwrapped
    result = cli("runs", "list", "--results-dir", str(root), "--wide")
    assert result.code == 0, result.err
    for run_id in (ID_A, ID_B, ID_C, "feedfacecafe"):
        assert run_id in result.out
    assert "top-1 err %" in result.out and "0.125" in result.out and "2 (schedule)" in result.out


def test_an_id_column_is_kept_whole_in_a_table_wider_than_the_terminal():
    from vggbench.render import render_table

    frame = pd.DataFrame({"id": [ID_A], **{f"column {i}": ["a long text value " * 2] for i in range(12)}})
    assert ID_A in render_table(frame)


@pytest.mark.parametrize(
    "fmt, check",
    [
        ("table", lambda out: ID_B in out and "43.50" in out),
        ("markdown", lambda out: f"| {ID_B} |" in out and "43.50" in out),
        ("latex", lambda out: "\\begin{tabular}" in out and ID_B in out and "43.50" in out),
        ("csv", lambda out: pd.read_csv(io.StringIO(out)).set_index("id").loc[ID_B, "top1_err"] == 43.5),
        ("json", lambda out: {r["id"]: r["top1_err"] for r in json.loads(out)}[ID_B] == 43.5),
    ],
)
def test_list_in_every_format(cli, root, fmt, check):
    result = cli("runs", "list", "--results-dir", str(root), "--format", fmt)
    assert result.code == 0, result.err
    assert check(result.out), result.out


def test_show_by_unique_prefix_has_the_summary_curve_and_evaluations(cli, root):
    result = cli("runs", "show", "ab12c", "--results-dir", str(root), "--format", "json")
    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert RunRecord.from_json(shown["run"]) == make_run(ID_A)
    assert [EvalRecord.from_json(e) for e in shown["evals"]] == [make_eval(ID_A)]
    table = cli("runs", "show", "ab12c", "--results-dir", str(root)).out
    assert f"run {ID_A}" in table and "41.25" in table and "12.50" in table
    assert "top-5" not in table and "10.31" not in table and "1.75" not in table  # 10 classes: no top-5
    csv = pd.read_csv(
        io.StringIO(cli("runs", "show", "77e", "--results-dir", str(root), "--format", "csv").out)
    )
    curve = csv[csv["table"].str.startswith("per-epoch")]
    assert curve["val_top1_err"].tolist() == [80.0, 41.25] and curve["epoch"].tolist() == [1, 2]


def test_show_in_markdown_and_latex(cli, root):
    markdown = cli("runs", "show", ID_A, "--results-dir", str(root), "--format", "markdown").out
    assert "**per-epoch curve" in markdown and re.search(rf"^\| id +\| {ID_A} +\|$", markdown, re.M)
    assert re.search(r"^\| +2 \| .*\| +41\.25 \|", markdown, re.M)  # the curve's second epoch
    latex = cli("runs", "show", ID_A, "--results-dir", str(root), "--format", "latex").out
    assert latex.count("\\begin{tabular}") == 3 and "41.25" in latex


def test_compare_marks_the_differences_first(cli, root):
    result = cli("runs", "compare", ID_A, "ab12d", "--results-dir", str(root), "--format", "json")
    assert result.code == 0, result.err
    table = json.loads(result.out)
    side = table["runs side by side (* = differs)"]
    differing = [row["field"] for row in side if row["differs"] == "*"]
    assert differing[:2] == ["config.lr", "config.net"]  # the config keys that differ lead
    assert side[0] == {"field": "config.lr", "differs": "*", ID_A: "0.005", ID_B: "0.01"}
    errors = next(row for row in side if row["field"] == "val top-1 err (%)")
    assert (errors[ID_A], errors[ID_B], errors["differs"]) == ("41.25", "43.5", "*")
    same = next(row for row in side if row["field"] == "config.crop")
    assert same["differs"] == ""
    curves = table["val top-1 error (%) per epoch"]
    assert curves == [
        {"epoch": 1, ID_A: 80.0, ID_B: 79.0},
        {"epoch": 2, ID_A: 41.25, ID_B: 50.0},
        {"epoch": 3, ID_A: None, ID_B: 43.5},
    ]
    text = cli("runs", "compare", ID_A, ID_B, "--results-dir", str(root)).out
    assert ID_A in text and ID_B in text and "*" in text


def test_export_flattens_every_record_for_pandas(cli, root, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "records.csv"
    result = cli("runs", "export", "--format", "csv", "--out", str(out), "--results-dir", str(root))
    assert result.code == 0 and result.err == f"wrote {out}\n", result.err
    frame = pd.read_csv(out)
    assert frame["kind"].tolist() == ["run", "run", "run", "eval"]
    runs_part = frame[frame["kind"] == "run"].set_index("id")
    assert runs_part.loc[ID_B, "config.lr"] == 0.01 and runs_part.loc[ID_B, "top1_err"] == 43.5
    assert runs_part.loc[ID_A, "recipe.epochs"] == 40 and runs_part.loc[ID_A, "data.spec"] == "fashion-mnist"
    assert frame[frame["kind"] == "eval"]["top1_err"].tolist() == [12.5]
    assert json.loads(runs_part.loc[ID_A, "epochs"])[1]["val_top1_err"] == 41.25
    as_json = json.loads(cli("runs", "export", "--format", "json", "--results-dir", str(root)).out)
    assert pd.json_normalize(as_json).shape[0] == 4 and as_json[3]["limits.max_images"] is None


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["show", "0000"], ["no stored run '0000'", "--results-dir"]),
        (["show", "ab12"], ["run id 'ab12' is ambiguous", ID_A, ID_B, "give more characters"]),
        (["compare", ID_A], ["at least 2 runs", "runs list"]),
        (["compare", ID_A, "ab12c"], ["name the same run", "different runs"]),
        (["export", "--format", "xml"], ["unknown format 'xml'", "csv, json"]),
        (["list", "--format", "xml"], ["unknown format 'xml'", "table, markdown, latex, json, csv"]),
        (["list", "--config", "F"], ["unknown config 'F'", "A, A-LRN"]),
        (["list", "--scale", "big"], ["bad scale 'big'"]),
        (["list", "--preset", "huge"], ["unknown preset 'huge'", "smoke, quick, paper"]),
        (["list", "--sort", "speed"], ["cannot sort by 'speed'", "top1_err", "created"]),
        (["list", "--sort", ""], ["cannot sort by ''", "choose one of id"]),
        (["export", "--out", "runs/x.csv"], ["inside the store's runs/ folder", "elsewhere"]),
        (["show"], ["Missing argument"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, root, argv, fragments):
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    argv = [a.replace("runs/x.csv", str(root / "runs" / "x.csv")) for a in argv]
    assert_one_line_error(cli("runs", *argv, "--results-dir", str(root)), *fragments)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_an_empty_store_lists_nothing_and_says_how_to_fill_it(cli, tmp_path):
    result = cli("runs", "list", "--results-dir", str(tmp_path), "--format", "csv")
    assert result.code == 0 and result.out.startswith("id,net,dataset")
    assert "no runs in" in result.err and "vggbench train" in result.err


def test_preset_match_uses_the_shared_budget_only():
    quick = runs.preset_values("quick")
    assert quick == {
        "data": "fashion-mnist",
        "width": 0.125,
        "crop": 32,
        "batch_size": 128,
        "limit_train": 10000,
        "limit_val": None,
        "stop": "schedule",
        "patience": 2,
    }
    assert runs.matches_preset(make_run(ID_A, lr=0.1, epochs=3, init="kaiming"), quick)
    assert not runs.matches_preset(make_run(ID_A, limit_val=500), quick)
    assert not runs.matches_preset(make_run(ID_A, stop="epochs"), quick)


# --- runs diff: does a store reproduce a reference? --------------------------------------------------


def _seeds(root, errors_by_seed: dict[int, tuple[float, ...]]) -> list[str]:
    """Runs of one recipe (A, seeds as given) in a store; their ids (made up, one per seed)."""
    ids = []
    for seed, errors in errors_by_seed.items():
        run_id = f"5eed{seed:08d}"
        store.write_run(root, make_run(run_id, errors=errors, seed=seed))
        ids.append(run_id)
    return ids


def test_runs_diff_identical_then_the_largest_drift_beside_the_seed_spread(cli, tmp_path):
    from vggbench.reproduce import compare_stores, reproduction_line

    reference, ours = tmp_path / "reference", tmp_path / "ours"
    _seeds(reference, {0: (80.0, 40.0), 1: (80.0, 42.0), 2: (80.0, 44.0)})  # final std 2.0 points
    _seeds(ours, {0: (80.0, 40.0), 1: (80.0, 42.0)})
    store.write_run(ours, make_run(ID_C, errors=(70.0, 30.0)))  # not in the reference
    result = compare_stores(ours, reference)
    assert [r.id for r in result.runs] == ["5eed00000000", "5eed00000001"] and result.unshared == 1
    assert result.identical and [r.seed_spread for r in result.runs] == [2.0, 2.0]
    assert reproduction_line(result) == (
        f"2 of 3 runs in {ours} are in {reference}: identical (every epoch's val errors equal)"
    )
    # a drift of 1.5 points at seed 1 (std 2.0: within), then 2.5 at seed 0 (outside)
    store.write_run(ours, make_run("5eed00000001", errors=(80.0, 43.5), seed=1))
    result = compare_stores(ours, reference)
    assert not result.identical and result.largest().difference == 1.5
    assert reproduction_line(result) == (
        f"2 of 3 runs in {ours} are in {reference}: 1 differs, largest difference +1.50 points of final "
        "val top-1 error (A 5eed00000001), within the seed-to-seed spread (std 2.00 points)"
    )
    store.write_run(ours, make_run("5eed00000000", errors=(80.0, 37.5), seed=0))
    result = cli("runs", "diff", str(reference), "--results-dir", str(ours))
    assert result.code == 0 and result.out.strip().endswith(
        "2 differ, largest difference -2.50 points of final val top-1 error (A 5eed00000000), "
        "outside the seed-to-seed spread (std 2.00 points)"
    )


def test_runs_diff_of_a_single_seed_or_no_shared_runs_says_so(tmp_path):
    from vggbench.reproduce import compare_stores, reproduction_line

    reference, ours = tmp_path / "reference", tmp_path / "ours"
    _seeds(reference, {0: (80.0, 40.0)})
    _seeds(ours, {0: (80.0, 41.0)})
    assert reproduction_line(compare_stores(ours, reference)).endswith(
        "no seed-to-seed spread to judge it by (one seed of its recipe in the reference)"
    )
    store.write_run(ours / "other", make_run(ID_C))
    assert reproduction_line(compare_stores(ours / "other", reference)) == (
        f"0 of 1 runs in {ours / 'other'} are in {reference}: nothing to compare "
        "(other ids: another budget or data)"
    )


@pytest.mark.parametrize("empty", ["ours", "reference"])
def test_runs_diff_of_an_empty_store_is_a_one_line_error(cli, tmp_path, empty):
    _seeds(tmp_path / ("reference" if empty == "ours" else "ours"), {0: (80.0, 40.0)})
    (tmp_path / empty).mkdir(exist_ok=True)
    result = cli("runs", "diff", str(tmp_path / "reference"), "--results-dir", str(tmp_path / "ours"))
    assert_one_line_error(result, f"no runs in {tmp_path / empty / 'runs'}")
