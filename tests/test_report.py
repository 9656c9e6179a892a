"""The report's tables from typed records: Tables 3-6 beside the paper, the ablation tables, and
the whole report rendered from a store."""

from dataclasses import replace

import pytest

from vggbench.ablations.spec import Budget
from vggbench.ablations.stats import (
    AblationRecord,
    ArmResult,
    ComparisonResult,
    Cost,
    Difference,
    PaperClaim,
    read_ablations,
    write_ablation,
)
from vggbench.errors import VggbenchError
from vggbench.render import render
from vggbench.report.tables import (
    PAPER_TABLE_TITLES,
    ablation_arms_frame,
    ablation_budget_line,
    ablation_comparisons_frame,
    ablation_notes,
    paper_table_frame,
)
from vggbench.report.write import write_report
from vggbench.store import DataSource, EvalLimits, EvalRecord, InitInfo, Recipe, RunRecord, write_record


def make_eval(**fields) -> EvalRecord:
    """An eval record with plausible values for every field the test does not set."""
    defaults = dict(
        id="x",
        runs=["r"],
        nets=["A"],
        train_scales=["256"],
        method="dense",
        test_scales=[256],
        test_scales_px=[37],
        scales_spec="single",
        crop=32,
        dataset="synthetic",
        limits=EvalLimits(),
        normalization=["train mean RGB"],
        images=10,
        top1_err=50.0,
        top5_err=10.0,
        top5_k=5,
        members=[],
        forward_passes_per_image=2.0,
        macs_per_image=1e6,
        seconds=1.0,
        images_per_s=10.0,
        device="cpu",
        machine="test machine",
        torch_version="2",
        created="2026",
    )
    return EvalRecord(**{**defaults, **fields})


def make_run(run_id: str, config: dict) -> RunRecord:
    """A run record whose config is `config` (what recipe keys read) and the rest plausible."""
    recipe = Recipe(0.01, 0.9, 5e-4, 0.5, 64, 1, config.get("epochs", 1), 2, 3, 0, 0.01)
    return RunRecord(
        id=run_id,
        net="A",
        model={},
        config=config,
        data=DataSource("fashion-mnist"),
        dataset="fashion-mnist",
        classes=[str(c) for c in range(10)],
        train_images=100,
        skipped_images=0,
        val_images=10,
        seed=config.get("seed", 0),
        width=0.125,
        crop=32,
        train_scale="256",
        train_scale_pixels=[37],
        val_scale=256,
        val_scale_pixels=37,
        init=InitInfo("kaiming"),
        init_from=None,
        recipe=recipe,
        epochs=[],
        warnings=[],
        checkpoint="",
        wall_time_s=1.0,
        train_time_s=1.0,
        images_per_s=100.0,
        data_time_fraction=0.1,
        device="cpu",
        world_size=1,
        machine="test machine",
        torch_version="2",
        code_version="test",
        created="2026",
    )


# --- Tables 3-6 -----------------------------------------------------------------------------------


def test_paper_table_puts_our_numbers_beside_the_paper():
    record = make_eval(
        id="x",
        runs=["r"],
        nets=["D"],
        train_scales=["256:512"],
        method="multi-crop",
        test_scales=[256, 384, 512],
        dataset="synthetic",
        top1_err=30.0,
        top5_err=10.0,
        created="2026",
    )
    frame = paper_table_frame(5, [record])
    row = frame[(frame["net"] == "D") & (frame["method"] == "multi-crop")].iloc[0]
    assert (row["paper top-1"], row["our top-1"]) == (24.6, 30.0)
    assert row["delta top-1"] == pytest.approx(5.4)
    assert frame["our top-1"].isna().sum() == len(frame) - 1
    for fmt in ("table", "markdown", "latex"):
        assert "24.6" in render(paper_table_frame(5, [record]), fmt, PAPER_TABLE_TITLES[5])


def test_paper_table_averages_the_newest_records_repeats_over_seeds_only():
    def run(run_id, seed, epochs=5):
        config = {
            "net": "A",
            "scale": "256",
            "epochs": epochs,
            "seed": seed,
            "init_from": None,
            "preinit_from": f"source-{seed}",
        }
        return make_run(run_id, config)

    def record(record_id, run_id, top1, created):
        return make_eval(
            id=record_id,
            runs=[run_id],
            nets=["A"],
            train_scales=["256"],
            method="dense",
            test_scales=[256],
            dataset="fashion-mnist",
            limits=EvalLimits(),
            top1_err=top1,
            top5_err=1.0,
            created=created,
        )

    runs = {
        r.id: r
        for r in (
            run("s0", 0),
            run("s1", 1),
            run("s2", 2),
            run("long", 0, epochs=25),
            run("long1", 1, epochs=25),
        )
    }
    records = [
        record("e-long", "long", 11.0, "2026-01"),
        record("e0", "s0", 20.0, "2026-02"),
        record("e1", "s1", 22.0, "2026-03"),
        record("e2", "s2", 27.0, "2026-04"),
    ]
    row = paper_table_frame(3, records, runs=runs).iloc[0]
    assert (row["net"], row["our top-1"], row["seeds"], row["record"]) == ("A", 23.0, 3, "e2")
    assert row["delta top-1"] == pytest.approx(23.0 - 29.6)
    # without the run records: the newest record alone
    row = paper_table_frame(3, records).iloc[0]
    assert (row["our top-1"], row["seeds"]) == (27.0, 1)
    # the longer run is another recipe, never averaged in; a record of unknown runs stands alone
    newest_long = records + [record("e-long1", "long1", 13.0, "2026-05")]
    assert paper_table_frame(3, newest_long, runs=runs).iloc[0]["our top-1"] == 12.0
    # a run evaluated again counts once, with its newest record
    again = records + [record("e1-again", "s1", 25.0, "2026-05")]
    row = paper_table_frame(3, again, runs=runs).iloc[0]
    assert (row["our top-1"], row["seeds"]) == (24.0, 3)
    assert (
        paper_table_frame(3, records[:3] + [record("e9", "gone", 40.0, "2026-06")], runs=runs).iloc[0][
            "seeds"
        ]
        == 1
    )


# --- Ablation tables ------------------------------------------------------------------------------


def arm_result(**fields) -> ArmResult:
    defaults = dict(
        name="A",
        net="A",
        scale="256",
        evaluation="dense",
        method="dense",
        scales="single",
        runs=["r0", "r1"],
        seeds=[0, 1],
        top1_mean=20.0,
        top1_std=1.0,
        top5_mean=5.0,
        top5_std=0.5,
        macs_per_image=1,
        init=InitInfo("glorot"),
        curves=[],
        stalled_seeds=[],
        paper_top1=29.6,
        paper_top5=10.4,
    )
    return ArmResult(**{**defaults, **fields})


BUDGET = Budget(
    data="synthetic", width=0.0625, crop=32, epochs=2, batch=64, lr=0.01, limit_train=512, limit_val=128
)
COMPARISON = ComparisonResult(
    baseline="A",
    treatment="A-LRN",
    evaluation="dense",
    expect="no_better",
    margin=1.0,
    difference=Difference(1.5, -0.25, 3.25, True, 2),
    verdict="consistent",
    paper_top1=0.1,
)
KNOWN = AblationRecord(
    id="known",
    ablation="lrn",
    title="LRN",
    net="A",
    preset="smoke",
    budget=BUDGET,
    seeds=2,
    arms=[
        arm_result(),
        arm_result(
            name="A-LRN",
            net="A-LRN",
            top1_mean=21.5,
            top1_std=None,
            top5_mean=6.0,
            top5_std=0.0,
            paper_top1=29.7,
            paper_top5=10.5,
        ),
    ],
    comparisons=[COMPARISON],
    difference=COMPARISON.difference,
    verdict="consistent",
    paper=PaperClaim("LRN does not help.", "4.1", 0.1),
    runs_found=4,
    runs_expected=4,
    cost=Cost(0.0, 0.0, ["test machine"]),
)


def test_known_record_gives_known_cells():
    arms = ablation_arms_frame(KNOWN)
    assert arms.iloc[0].to_dict() == {
        "arm": "A",
        "evaluation": "dense",
        "seeds": 2,
        "stalled": 0,
        "top-1 err (%)": "20.00 ± 1.00",
        "top-5 err (%)": "5.00 ± 0.50",
        "paper top-1": 29.6,
        "paper top-5": 10.4,
    }
    assert arms.iloc[1]["top-1 err (%)"] == "21.50"
    row = ablation_comparisons_frame(KNOWN).iloc[0].to_dict()
    assert row == {
        "comparison": "A-LRN - A",
        "evaluation": "dense",
        "paper expects": "no better",
        "ours (points)": 1.5,
        "95% CI": "[-0.25, +3.25]",
        "paper (points)": 0.1,
        "verdict": "consistent",
    }
    line = ablation_budget_line(KNOWN)
    assert "synthetic, width 0.0625, crop 32, 2 epochs" in line and "init glorot" in line


def test_notes_count_stalled_runs_and_the_dense_windows_of_a_small_crop():
    dense_arm = replace(KNOWN.arms[1], method="dense", stalled_seeds=[1])
    record = replace(KNOWN, arms=[KNOWN.arms[0], dense_arm])
    stalled, geometry = ablation_notes(record)
    assert stalled.startswith("arm 'A-LRN': seed(s) 1 stayed at chance error")
    # crop 32: Q=256 is 37 px, floor(37/32) = 1 cell, 1 - 1 + 1 = 1 window position
    assert (
        "at crop 32, dense evaluation at Q=256 (37 px) has a 1x1 score map, 1x1 window position(s)"
        in geometry
    )
    assert ablation_arms_frame(record).iloc[1]["stalled"] == 1
    at_224 = replace(record, budget=replace(BUDGET, crop=224), arms=[KNOWN.arms[0]])
    assert ablation_notes(at_224) == []
    # crop 64: Q=256 is 73 px, 2 cells, 2 - 2 + 1 = 1 position
    at_64 = replace(record, budget=replace(BUDGET, crop=64), arms=[dense_arm])
    assert "(73 px) has a 2x2 score map, 1x1 window" in ablation_notes(at_64)[1]


def test_budget_line_names_the_preinit_layers_the_machine_and_the_time():
    preinit = InitInfo(
        scheme="preinit (rest kaiming)",
        std=None,
        preinit_from="0123abcd",
        preinit_mapping="stage",
        copied_layers=["features.0", "classifier.6"],
    )
    record = replace(
        KNOWN,
        arms=[KNOWN.arms[0], replace(KNOWN.arms[1], init=preinit)],
        cost=Cost(90.0, 30.0, ["AMD EPYC 7B13, 2 cores, 2 torch threads"]),
    )
    line = ablation_budget_line(record)
    assert "init glorot, preinit (rest kaiming)" in line
    assert "pre-init (mapping stage) copied 2 layers: features.0, classifier.6" in line
    assert line.endswith(
        "trained for 1.5 min and evaluated in 0.5 min on AMD EPYC 7B13, 2 cores, 2 torch threads"
    )


def test_ablation_record_round_trips_and_refuses_an_older_format(tmp_path):
    write_ablation(tmp_path, KNOWN)
    assert read_ablations(tmp_path) == [KNOWN]
    old = {key: value for key, value in KNOWN.to_json().items() if key != "schema"}
    write_record(tmp_path, "ablations", "known", old)
    with pytest.raises(VggbenchError, match="older format"):
        read_ablations(tmp_path)


def test_report_renders_known_ablation_record(tmp_path):
    write_ablation(tmp_path, KNOWN)
    paths = write_report(tmp_path, tmp_path, plots=True)
    text = (tmp_path / "REPORT.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| A-LRN - A"))
    assert [cell.strip() for cell in row.strip("|").split("|")] == [
        "A-LRN - A",
        "dense",
        "no better",
        "1.5",
        "[-0.25, +3.25]",
        "0.1",
        "consistent",
    ]
    assert "138,357,544" in text  # Table 2 is always there
    # one writer for Table 2's files: the same as `vggbench params --write`
    assert "tab:params" in (tmp_path / "tables" / "table2.tex").read_text()
    assert "138,357,544" in (tmp_path / "table2.md").read_text()
    assert (tmp_path / "tables" / "ablation-lrn-a-smoke.tex").exists()
    assert not any(p.suffix == ".png" for p in paths)  # no curves and no evaluations: nothing to plot
