"""The report's tables from typed records: Tables 3-6 beside the paper, the ablation tables, and
the whole report rendered from a store."""

import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from conftest import needs_tool

from vggbench.ablations.spec import Budget
from vggbench.ablations.stats import (
    AblationRecord,
    ArmResult,
    ComparisonResult,
    Cost,
    Difference,
    PaperClaim,
    chain_epochs,
    fine_tune_chain,
    read_ablations,
    seeds_needed,
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
    detectable_difference,
    headline,
    paper_table_frame,
    resolution,
    seeds_advice,
    summary_comparison,
    summary_group,
)
from vggbench.report.write import LATEX_PREAMBLE, latest_ablations, write_report
from vggbench.store import (
    DataSource,
    EpochMetrics,
    EvalLimits,
    EvalRecord,
    InitInfo,
    Recipe,
    RunRecord,
    write_eval,
    write_record,
    write_run,
)


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


def make_run(run_id: str, config: dict, **fields) -> RunRecord:
    """A run record whose config is `config` (what recipe keys read), then `fields`, the rest plausible."""
    recipe = Recipe(0.01, 0.9, 5e-4, 0.5, 64, 1, config.get("epochs", 1), 2, 3, "epochs", 0, 0.01)
    defaults = dict(
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
        input_range="0-255",
        val_scale=256,
        val_scale_pixels=37,
        init=InitInfo("kaiming"),
        init_from=None,
        recipe=recipe,
        epochs=[EpochMetrics(i + 1, 1.0, 0.01, 1.0, 100.0, 0.1, 50.0, 10.0) for i in range(recipe.epochs)],
        stopped_by="epoch cap",
        val_slope=None,
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
    return RunRecord(**{**defaults, **fields})


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


def test_paper_table_averages_repeats_over_seeds_only_newest_recipe_first():
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
    # the longer recipe is a row of its own, after the newest recipe's
    row = paper_table_frame(3, records, runs=runs).iloc[1]
    assert (row["net"], row["our top-1"], row["seeds"], row["record"]) == ("A", 11.0, 1, "e-long")
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


def recipe_run(
    run_id: str, seed: int, init: str = "glorot", input_range: str = "0-255", **fields
) -> RunRecord:
    """A run of net A at S=256 whose recipe is its init scheme and input range."""
    config = {"net": "A", "scale": "256", "epochs": 5, "seed": seed, "init": init, "input_range": input_range}
    info = InitInfo(init, 0.01) if init == "paper" else InitInfo(init)
    return make_run(run_id, config, init=info, input_range=input_range, **fields)


def table3_eval(record_id: str, run_id: str, top1: float, created: str, **fields) -> EvalRecord:
    return make_eval(
        id=record_id, runs=[run_id], dataset="fashion-mnist", top1_err=top1, created=created, **fields
    )


def test_paper_table_keeps_recipes_apart_and_names_them():
    runs = {
        r.id: r
        for r in (
            recipe_run("g0", 0),
            recipe_run("g1", 1),
            recipe_run("p0", 0, init="paper"),
            recipe_run("p1", 1, init="paper"),
            recipe_run("u0", 0, input_range="0-1"),
        )
    }
    records = [
        table3_eval("eg0", "g0", 30.0, "2026-01"),
        table3_eval("ep0", "p0", 80.0, "2026-02"),
        table3_eval("eg1", "g1", 34.0, "2026-03"),
        table3_eval("eu0", "u0", 40.0, "2026-04"),
        table3_eval("ep1", "p1", 84.0, "2026-05"),
    ]
    frame = paper_table_frame(3, records, runs=runs)
    ours = frame[frame["our top-1"].notna()]
    assert list(ours["net"]) == ["A", "A", "A"] and list(frame["net"]).count("A") == 3
    assert list(ours["our top-1"]) == [82.0, 40.0, 32.0]  # newest recipe first: paper, 0-1, glorot
    assert list(ours["seeds"]) == [2, 1, 2] and list(ours["record"]) == ["ep1", "eu0", "eg1"]
    assert list(ours["delta top-1"]) == pytest.approx([82.0 - 29.6, 40.0 - 29.6, 32.0 - 29.6])
    assert list(ours["recipe"]) == [
        "fashion-mnist, width 0.125, crop 32, 5 epochs, init paper std 0.01, input 0-255",
        "fashion-mnist, width 0.125, crop 32, 5 epochs, init glorot, input 0-1",
        "fashion-mnist, width 0.125, crop 32, 5 epochs, init glorot, input 0-255",
    ]
    # 10 classes: our top-5 is no test beside ImageNet's, so its columns go; the paper's stays
    assert "our top-5" not in frame and "delta top-5" not in frame and "paper top-5" in frame
    # the rows of the other nets have none of ours and no recipe
    assert frame[frame["net"] == "B"]["recipe"].isna().all()


def test_paper_table_shows_top5_for_many_classes_and_the_fine_tuning_chain():
    hundred = [str(c) for c in range(100)]
    source = make_run("src", {"scale": "256", "epochs": 4}, classes=hundred, init=InitInfo("kaiming"))
    tuned = make_run(
        "tuned",
        {"net": "A", "scale": "256", "epochs": 3, "init_from": "src"},
        classes=hundred,
        init_from="src",
        init=InitInfo("init-from src"),
    )
    record = table3_eval("e", "tuned", 30.0, "2026-01", top5_err=12.5)
    row = paper_table_frame(3, [record], runs={"src": source, "tuned": tuned}).iloc[0]
    assert (row["our top-5"], row["delta top-5"]) == (12.5, pytest.approx(12.5 - 10.4))
    assert row["recipe"] == (
        "fashion-mnist, width 0.125, crop 32, 3 epochs, init kaiming, input 0-255, "
        "fine-tuned S=256 -> S=256 (7 epochs in all)"
    )


def test_table5_shows_each_methods_cost_per_image():
    def table5_eval(record_id, run_id, method, macs, seconds, images, top1):
        return make_eval(
            id=record_id,
            runs=[run_id],
            nets=["D"],
            train_scales=["256:512"],
            method=method,
            test_scales=[256, 384, 512],
            macs_per_image=macs,
            seconds=seconds,
            images=images,
            top1_err=top1,
        )

    runs = {
        r.id: replace(r, net="D", train_scale="256:512") for r in (recipe_run("d0", 0), recipe_run("d1", 1))
    }
    records = [
        table5_eval("dense0", "d0", "dense", 1_000_000.0, 2.0, 100, 30.0),
        table5_eval("dense1", "d1", "dense", 1_000_000.0, 3.0, 100, 32.0),
        table5_eval("crops0", "d0", "multi-crop", 150_000_001.0, 40.0, 80, 29.0),
    ]
    frame = paper_table_frame(5, records, runs=runs).set_index(["net", "method"])
    assert frame.loc[("D", "dense"), "our MACs/image"] == 1_000_000
    assert frame.loc[("D", "dense"), "our ms/image"] == pytest.approx(1000 * (0.02 + 0.03) / 2)
    assert frame.loc[("D", "multi-crop"), "our MACs/image"] == 150_000_001
    assert frame.loc[("D", "multi-crop"), "our ms/image"] == pytest.approx(1000 * 40.0 / 80)
    assert (frame.loc[("D", "dense"), "images"], frame.loc[("D", "multi-crop"), "images"]) == (100, 80)
    assert pd.isna(frame.loc[("D", "multi-crop+dense"), "our MACs/image"])
    assert "our MACs/image" not in paper_table_frame(3, records, runs=runs)


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
        num_classes=100,
        input_range="0-255",
        init=InitInfo("glorot"),
        chain=["S=256"],
        total_epochs=2,
        curves=[],
        stalled_seeds=[],
        paper_top1=29.6,
        paper_top5=10.4,
        stopped_by=["schedule", "schedule"],
        val_slopes=[0.1, -0.2],
        epochs_run=[2, 2],
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
    seeds_needed=4,
    seeds_target=1.0,  # no_better: the margin
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
            macs_per_image=2,  # twice A's: costs far enough apart for an error-vs-cost figure
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
        "trained as": "S=256",
        "epochs": "2,2",
        "stopped by": "schedule",
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
        "paper's size": "inside",  # 0.1 lies in [-0.25, +3.25]
        "verdict": "consistent",
        "seeds needed": 4,
    }
    line = ablation_budget_line(KNOWN)
    assert "synthetic, width 0.0625, crop 32, 2 epochs" in line and "init glorot" in line
    assert "; input 0-255 (the paper's) minus the mean RGB;" in line


def test_arms_table_counts_how_each_seed_stopped():
    mixed = arm_result(stopped_by=["schedule", "epoch cap", "schedule"], epochs_run=[9, 30, 11])
    row = ablation_arms_frame(replace(KNOWN, arms=[mixed])).iloc[0]
    assert (row["stopped by"], row["epochs"]) == ("schedule 2, epoch cap 1", "9,30,11")
    assert mixed.converged is False and arm_result().converged is True


def test_arms_table_leaves_top5_out_for_ten_classes_and_shows_the_chain():
    tuned = arm_result(name="A S=384", chain=["S=256", "S=384"], total_epochs=4, num_classes=10)
    frame = ablation_arms_frame(replace(KNOWN, arms=[replace(KNOWN.arms[0], num_classes=10), tuned]))
    assert list(frame.columns) == [
        "arm",
        "evaluation",
        "trained as",
        "epochs",
        "stopped by",
        "seeds",
        "stalled",
        "top-1 err (%)",
        "paper top-1",
    ]
    assert (frame.iloc[1]["trained as"], frame.iloc[1]["epochs"]) == ("S=256 -> S=384", "2,2 (chain 4)")
    # a fine-tuned arm's init is its chain's: the budget line names the schemes that drew weights
    record = replace(
        KNOWN, arms=[KNOWN.arms[0], replace(tuned, init=InitInfo("init-from r0"), input_range="0-1")]
    )
    line = ablation_budget_line(record)
    assert "; init glorot; input 0-1, 0-255 (the paper's) minus the mean RGB;" in line


def test_zero_variance_and_stalled_comparisons_say_so_with_seeds_advice():
    zero = replace(
        COMPARISON,
        difference=Difference(1.0, None, None, True, 3, 0.0, zero_variance=True),
        verdict="inconclusive",
        note="zero variance: every seed differs by exactly +1.00",
        seeds_needed=None,
        seeds_note="zero variance between seeds: no spread to size a sample by",
    )
    row = ablation_comparisons_frame(replace(KNOWN, comparisons=[zero])).iloc[0]
    assert (row["95% CI"], row["verdict"]) == ("none (zero variance)", "inconclusive")
    assert pd.isna(row["seeds needed"])
    assert (
        seeds_advice(zero, 3)
        == "seeds needed unknown: zero variance between seeds: no spread to size a sample by"
    )
    gap = replace(COMPARISON, expect="lower", paper_top1=-7.0, seeds_needed=4, seeds_target=7.0)
    assert seeds_advice(gap, 2) == "to resolve the paper's 7.0-point gap at this budget, run --seeds 4"
    assert (
        seeds_advice(gap, 5)
        == "--seeds 5 already has 80% power to detect the paper's 7.0-point gap at this budget"
    )
    assert seeds_advice(COMPARISON, 2) == (
        "to resolve a 1.0-point difference (the claim's margin) at this budget, run --seeds 4"
    )


def test_notes_count_stalled_runs_and_the_dense_windows_of_a_small_crop():
    dense_arm = replace(KNOWN.arms[1], method="dense", stalled_seeds=[1])
    record = replace(KNOWN, arms=[KNOWN.arms[0], dense_arm])
    stalled, geometry = ablation_notes(record)
    assert stalled.startswith("arm 'A-LRN': seed(s) 1 stayed at chance error")
    assert stalled.endswith("and its comparisons get no verdict")
    # crop 32: Q=256 is 37 px; the max-pools round up: ceil(37/32) = 2 cells, 2 - 1 + 1 = 2 positions
    assert (
        "at crop 32, dense evaluation at Q=256 (37 px) has a 2x2 pool5 map and 2x2 window position(s)"
        in geometry
    )
    assert "reach 27 of their 32 px past the image's edge" in geometry  # 32 + 32 - 37
    assert ablation_arms_frame(record).iloc[1]["stalled"] == 1
    at_224 = replace(record, budget=replace(BUDGET, crop=224), arms=[KNOWN.arms[0]])
    assert ablation_notes(at_224) == []
    # crop 64: Q=256 is 73 px, ceil(73/32) = 3 cells, 3 - 2 + 1 = 2 positions
    at_64 = replace(record, budget=replace(BUDGET, crop=64), arms=[dense_arm])
    assert "(73 px) has a 3x3 pool5 map and 2x2 window" in ablation_notes(at_64)[1]
    assert "reach 23 of their 64 px past" in ablation_notes(at_64)[1]  # 32 + 64 - 73


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
        "inside",
        "consistent",
        "4",
    ]
    assert "138,357,544" in text  # Table 2 is always there
    # one writer for Table 2's files: the same as `vggbench params --write`
    assert "tab:params" in (tmp_path / "tables" / "table2.tex").read_text()
    assert "138,357,544" in (tmp_path / "table2.md").read_text()
    assert (tmp_path / "tables" / "ablation-lrn-a-smoke.tex").exists()
    # no curves, two depths: the cost figure alone, PNG and PDF, captioned under it in the report
    figures = sorted(p.name for p in paths if p.parent.name == "plots")
    assert figures == ["error-vs-cost-lrn-A-smoke.pdf", "error-vs-cost-lrn-A-smoke.png"]
    image = "![Error vs cost: lrn (A), synthetic, smoke](plots/error-vs-cost-lrn-A-smoke.png)\n\n*Each point"
    assert image in text and "PDF: [plots/error-vs-cost-lrn-A-smoke.pdf]" in text


def test_report_summary_separates_verdicts_with_evidence_from_the_others(tmp_path):
    stalled = replace(
        COMPARISON,
        evaluation="center",
        verdict="stalled",
        note="stalled: arm 'A-LRN' seeds 0, 1 stayed at chance",
        seeds_needed=None,
        seeds_note="an arm stalled: its spread says nothing",
    )
    budget = replace(
        COMPARISON,
        evaluation="multi",
        verdict="contradicts at this budget",
        converged=False,
        note="not converged: A-LRN stopped by the epoch cap, error still falling 3.1 points/epoch",
    )
    untestable = replace(
        COMPARISON,
        evaluation="jitter dense",
        verdict="not testable",
        note="not testable at this budget: crop 32 px: ...",
        seeds_needed=None,
        seeds_note="not testable at this budget",
    )
    write_ablation(tmp_path, replace(KNOWN, comparisons=[COMPARISON, stalled, budget, untestable]))
    write_report(tmp_path, tmp_path, plots=False)
    text = (tmp_path / "REPORT.md").read_text()
    assert text.index("## Summary of the ablations") < text.index("## Table 2")  # the summary comes first
    summary = text.split("## Summary of the ablations")[1].split("\n## ")[0]
    headlines, summary = summary.split("### Every comparison")
    tested = headlines.split("### What this budget tests")[1].split("### At this budget only")[0]
    assert tested.strip() == f"- {headline(replace(KNOWN, comparisons=[COMPARISON]))}"
    assert "**not testable at this budget**" in headlines and "**at this budget**" in headlines  # vocabulary
    with_evidence, without = summary.split("Without evidence (stalled or inconclusive):")
    without, untested = without.split("Not testable at this budget (measured, no verdict):")
    converged, at_budget = with_evidence.split("Verdicts about this budget only (an arm had not converged):")
    assert (
        "- `lrn` (A, smoke), A-LRN - A, dense: **consistent** (ours +1.50 points, paper +0.1), "
        "consistent with the paper's size"
    ) in converged
    assert at_budget.strip() == (
        "- `lrn` (A, smoke), A-LRN - A, multi: **contradicts at this budget** (ours +1.50 points, paper "
        "+0.1), consistent with the paper's size; not converged: A-LRN stopped by the epoch cap, error "
        "still falling 3.1 points/epoch"
    )
    assert without.strip() == (
        "- `lrn` (A, smoke), A-LRN - A, center: **stalled** (ours +1.50 points, paper +0.1); "
        "stalled: arm 'A-LRN' seeds 0, 1 stayed at chance; "
        "seeds needed unknown: an arm stalled: its spread says nothing"
    )
    assert untested.strip() == (  # no seeds advice, no reading of the paper's size
        "- `lrn` (A, smoke), A-LRN - A, jitter dense: **not testable** (ours +1.50 points, paper +0.1); "
        "not testable at this budget: crop 32 px: ..."
    )
    assert "80% power" in summary and "two one-sided tests" in summary


def test_the_summary_reads_the_first_comparison_the_budget_can_test(tmp_path):
    untestable = replace(
        COMPARISON,
        verdict="not testable",
        note="not testable at this budget: crop 32 px: ...",
        seeds_needed=None,
    )
    center = replace(COMPARISON, evaluation="center", difference=Difference(-1.0, -1.5, -0.5, True, 3, 0.5))
    record = replace(KNOWN, comparisons=[untestable, center])
    assert summary_comparison(record) == center and summary_group(record) == "tested"
    assert headline(record) == (
        "`lrn` (A, smoke): A-LRN - A, center: **consistent**, ours -1.00 points, 95% CI [-1.50, -0.50]; "
        "paper +0.1: excludes the paper's gap: ours has the opposite sign."
    )
    only = replace(KNOWN, comparisons=[untestable])
    assert summary_group(only) == "untestable"
    assert headline(only) == (
        "`lrn` (A, smoke): not testable at this budget: crop 32 px: .... Measured all the same, A-LRN - A, "
        "dense: ours +1.50 points, 95% CI [-0.25, +3.25]; paper +0.1."
    )
    write_ablation(tmp_path, only)
    write_report(tmp_path, tmp_path, plots=False)
    text = (tmp_path / "REPORT.md").read_text()
    part = text.split("### Not testable at this budget")[1].split("###")[0]
    assert part.strip() == f"- {headline(only)}"
    assert "Seeds, for" not in text  # no seeds reading for a comparison the budget cannot test


def test_a_chains_epochs_are_the_epochs_trained_not_the_caps():
    """Under the paper's stopping rule `epochs` is a cap: a chain counts what each run trained."""
    source = make_run("s", {"epochs": 30}, epochs=make_run("x", {"epochs": 12}).epochs)
    tuned = make_run("t", {"epochs": 30}, init_from="s", train_scale="384")
    assert chain_epochs(fine_tune_chain(tuned, {"s": source}.get)) == 12 + 30


def test_headline_gives_the_verdict_the_interval_and_what_the_budget_resolves(tmp_path):
    # a spread of 1 point over 3 paired seeds: (t_0.975,2 + t_0.80,2) / sqrt(3) = (4.3027 + 1.0607) / 1.7321
    assert detectable_difference(1.0, 3) == pytest.approx(3.0965, abs=1e-4)
    spread = replace(
        COMPARISON, difference=Difference(1.5, -0.25, 3.25, True, 3, 1.0), seeds_needed=seeds_needed(1.0, 1.0)
    )
    assert headline(replace(KNOWN, seeds=3, comparisons=[spread])) == (
        "`lrn` (A, smoke): A-LRN - A, dense: **consistent**, ours +1.50 points, 95% CI [-0.25, +3.25]; "
        "paper +0.1: consistent with the paper's size."
    )
    # what the seeds resolve: in the ablation's own section, not in the summary
    assert resolution(spread, 3) == (
        "3 seeds resolve differences of 3.1 points or more; to resolve a 1.0-point "
        "difference (the claim's margin) at this budget, run --seeds 10"
    )
    write_ablation(tmp_path, replace(KNOWN, seeds=3, comparisons=[spread]))
    write_report(tmp_path, tmp_path, plots=False)
    text = (tmp_path / "REPORT.md").read_text()
    assert f"Seeds, for A-LRN - A (dense): {resolution(spread, 3)}." in text.split("## Ablation")[1]
    assert "run --seeds 10" not in text.split("### Every comparison")[0]  # not in the summary's lines
    # one seed: no spread, no interval; a note (convergence) closes the line
    one = replace(
        COMPARISON,
        difference=Difference(1.5, None, None, False, 1),
        verdict="inconclusive",
        paper_top1=None,
        seeds_needed=None,
        seeds_note="one seed: no seed-to-seed spread yet; run --seeds 3 or more",
        note="one seed only",
    )
    assert headline(replace(KNOWN, seeds=1, budget_label="smoke+epochs=1", comparisons=[one])) == (
        "`lrn` (A, smoke+epochs=1): A-LRN - A, dense: **inconclusive**, ours +1.50 points, 95% CI "
        "n/a (one seed); the paper gives no number; one seed only."
    )
    assert resolution(one, 1) == (
        "seeds needed unknown: one seed: no seed-to-seed spread yet; run --seeds 3 or more"
    )
    # the paper measured dense only: a center-crop comparison is placed against its dense gap
    center = replace(
        COMPARISON, evaluation="center", paper_top1=None, paper_gap_top1=-7.0, paper_gap="smaller"
    )
    assert headline(replace(KNOWN, comparisons=[center])).endswith(
        "paper -7.0 (its dense protocol): excludes the paper's gap: ours is smaller."
    )
    assert headline(replace(KNOWN, comparisons=[], runs_found=1)) == (
        "`lrn` (A, smoke): no comparison has both arms in the store yet (1 of 4 runs)"
    )


def test_a_budget_with_overrides_gets_its_own_section_and_files(tmp_path):
    """lrn at quick and at quick with --epochs 10: two sections, two sets of tables and figures."""
    quick = replace(KNOWN, id="quick", preset="quick", budget_label="quick")
    shorter = replace(quick, id="shorter", budget=replace(BUDGET, epochs=10), budget_label="quick+epochs=10")
    write_ablation(tmp_path, quick)
    write_ablation(tmp_path, shorter)
    paths = write_report(tmp_path, tmp_path / "out")
    text = (tmp_path / "out" / "REPORT.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## Ablation")]
    assert headings == ["## Ablation `lrn` (A, quick): LRN", "## Ablation `lrn` (A, quick+epochs=10): LRN"]
    assert "Measured on preset quick+epochs=10: synthetic, width 0.0625, crop 32, 10 epochs" in text
    names = sorted(p.name for p in paths if p.parent.name in ("tables", "plots") and "lrn" in p.name)
    assert names == [
        "ablation-lrn-a-quick-comparisons.tex",
        "ablation-lrn-a-quick-epochs-10-comparisons.tex",
        "ablation-lrn-a-quick-epochs-10.tex",
        "ablation-lrn-a-quick.tex",
        "error-vs-cost-lrn-A-quick+epochs=10.pdf",
        "error-vs-cost-lrn-A-quick+epochs=10.png",
        "error-vs-cost-lrn-A-quick.pdf",
        "error-vs-cost-lrn-A-quick.png",
    ]
    assert (
        "quick+epochs=10" in (tmp_path / "out" / "tables" / "ablation-lrn-a-quick-epochs-10.tex").read_text()
    )


def test_a_record_without_a_budget_label_reads_as_its_preset_and_the_newest_record_wins():
    old = replace(KNOWN, budget_label=None)
    assert old.label == "smoke"
    again = replace(KNOWN, id="five seeds", seeds=5)
    other = replace(KNOWN, id="other", budget_label="smoke+lr=0.1")
    assert latest_ablations([old, other, again, replace(KNOWN, id="empty", arms=[])]) == [again, other]


def _latex_document(tables) -> str:
    inputs = "".join(f"\\input{{{path}}}\n" for path in tables)
    preamble = "\\documentclass{article}\n\\usepackage{booktabs}\n"
    return f"{preamble}\\begin{{document}}\n{inputs}\\end{{document}}\n"


def _compile_alone(table: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[float]]:
    """pdflatex on `table` alone in a plain article with booktabs: the run, and how many points too
    wide each overfull \\hbox of its log is."""
    folder = tmp_path / f"compile-{table.stem}"
    folder.mkdir()
    (folder / "doc.tex").write_text(_latex_document([table.resolve()]))
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    log = (folder / "doc.log").read_text(errors="replace")
    return run, [float(pt) for pt in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]


def _assert_each_fits(tables: list[Path], tmp_path: Path) -> None:
    """Each table compiles alone and runs past \\textwidth by 1pt at most."""
    for table in tables:
        run, overfull = _compile_alone(table, tmp_path)
        assert run.returncode == 0, run.stdout[-2000:]
        assert max(overfull, default=0.0) <= 1.0, f"{table.name} is {max(overfull)}pt too wide"


def test_latex_tables_name_their_needs_have_human_columns_and_no_record_ids(tmp_path):
    write_ablation(tmp_path, KNOWN)
    write_run(tmp_path, recipe_run("r0", 0))
    write_eval(tmp_path, table3_eval("e0", "r0", 20.0, "2026"))
    write_report(tmp_path, tmp_path, plots=False)
    tables = sorted((tmp_path / "tables").glob("*.tex"))
    assert [p.name for p in tables] == [
        "ablation-lrn-a-smoke-comparisons.tex",
        "ablation-lrn-a-smoke.tex",
        "table2.tex",
        "table3.tex",
    ]
    for path in tables:
        text = path.read_text()
        assert text.startswith(LATEX_PREAMBLE) and "\\usepackage{booktabs}" in LATEX_PREAMBLE
        assert "\\toprule" in text and "\\_" not in text  # no snake_case headers, no ids like run\_x
    table3 = (tmp_path / "tables" / "table3.tex").read_text()
    assert "e0" not in table3 and "record" not in table3
    assert "record" in (tmp_path / "REPORT.md").read_text()  # the Markdown keeps the id to find it by
    # Table 2's LaTeX leaves out the FLOPs column for width and says what it would hold
    table2 = (tmp_path / "tables" / "table2.tex").read_text()
    assert "FLOPs are 2 x MACs.}" in table2 and "15,218,180,096" not in table2
    needs_tool("pdflatex")  # the tables were checked above; compiling needs TeX
    _assert_each_fits(tables, tmp_path)


COMMITTED = Path(__file__).parent.parent / "results"


def test_every_latex_table_of_the_committed_report_fits_a_plain_article(tmp_path):
    """The report of the committed store (17 tables: Tables 2-5, six ablations' arms and comparisons,
    throughput), each compiled alone: none runs past \\textwidth (before this layout: 124 to 1,234pt)."""
    needs_tool("pdflatex")
    write_report(COMMITTED, tmp_path, plots=False)
    tables = sorted((tmp_path / "tables").glob("*.tex"))
    assert len(tables) == 17
    _assert_each_fits(tables, tmp_path)


def test_latex_captions_escape_latexs_special_characters():
    from vggbench.render import latex_text, render_latex

    assert latex_text("Simonyan & Zisserman, 50% of x_1 {a} ~^ #$\\") == (
        r"Simonyan \& Zisserman, 50\% of x\_1 \{a\} \textasciitilde{}\textasciicircum{} \#\$\textbackslash{}"
    )
    assert r"\caption{A \& B}" in render_latex(pd.DataFrame({"x": [1]}), caption="A & B")


def test_latex_arrows_and_the_glyphs_of_the_default_font_encoding_are_spelt_out():
    """Under OT1, LaTeX's default, a bare > prints as an inverted question mark ("-¿" for ->)."""
    from vggbench.render import latex_text, render_latex

    assert latex_text("S=256 -> S=384 -> jitter 256:512") == r"S=256 $\to$ S=384 $\to$ jitter 256:512"
    assert latex_text("a < b > c | d ± 1") == r"a \textless{} b \textgreater{} c \textbar{} d $\pm$ 1"
    frame = pd.DataFrame(
        {"arm": ["D", "C"], "trained as -> x": ["S=256 -> S=384", "S=256"], "err": [1.0, 2.0]}
    )
    text = render_latex(frame, caption="A -> B")
    assert r"\caption{A $\to$ B}" in text
    assert r"D & S=256 $\to$ S=384 & 1.00 \\" in text and r"trained as $\to$ x" in text
    assert "->" not in text and ">" not in text.replace(r"\textgreater{}", "")


def test_latex_layout_moves_constant_columns_and_long_text_to_notes_and_stacks_headers():
    from vggbench.render import SETTINGS, latex_layout, render_latex

    recipe = "fashion-mnist, width 0.125, crop 32, to the paper's stopping rule, init glorot, input 0-255"
    frame = pd.DataFrame(
        {
            "net": ["A", "B", "C"],
            "method": ["dense"] * 3,  # one value in every row
            "seeds": pd.array([3, None, 3], dtype="Int64"),  # one value wherever given
            "paper top-1": [29.6, 28.7, 28.1],
            "recipe": [recipe, recipe + ", fine-tuned", None],  # wider than the page: to the notes
            "delta top-1": [1.0, -2.0, None],
        }
    )
    layout = latex_layout(frame)
    assert layout.notes == [
        "In every row: method: dense.",
        "Wherever given: seeds: 3.",
        f"recipe: (a) {recipe}; (b) {recipe}, fine-tuned.",
    ]
    assert layout.columns == {
        "net": ["A", "B", "C"],
        "paper top-1": ["29.60", "28.70", "28.10"],
        "recipe": ["(a)", "(b)", "-"],
        "delta top-1": ["1.00", "-2.00", "-"],
    }
    assert (layout.setting, layout.resized) == (SETTINGS[0], False)
    text = render_latex(frame, caption="T")
    # headers wider than their cells go over two rows, each on its bottom rows
    assert (
        "\\small\n\\setlength{\\tabcolsep}{4pt}\n\\begin{tabular}{@{}lrlr@{}}\n\\toprule\n"
        " & paper &  & delta \\\\\nnet & top-1 & recipe & top-1 \\\\\n\\midrule\n"
        "A & 29.60 & (a) & 1.00 \\\\\nB & 28.70 & (b) & -2.00 \\\\\nC & 28.10 & - & - \\\\\n\\bottomrule\n"
    ) in text
    assert (
        "\\end{tabular}\n\\par\\smallskip\n{\\footnotesize\\raggedright\nIn every row: method: dense.\\par\n"
        in text
    )
    assert text.endswith("fine-tuned.\\par}\n\\end{table}\n")
    # one row: no column is constant, but the recipe still does not fit
    one = latex_layout(frame.head(1))
    assert list(one.columns) == list(frame.columns) and one.notes == [f"recipe: (a) {recipe}."]


def test_latex_layout_scales_down_a_table_nothing_else_fits():
    """Numbers cannot move to notes: 30 columns of them are scaled to \\textwidth, and say they need
    graphicx."""
    from vggbench.render import SETTINGS, latex_layout
    from vggbench.report.write import RESIZED_NOTE, latex_table

    frame = pd.DataFrame({f"c{i}": [123_456_789, 2] for i in range(30)})
    layout = latex_layout(frame)
    assert (layout.setting, layout.resized, layout.notes) == (SETTINGS[-1], True, [])
    text = latex_table(frame, "wide", "tab:wide")
    assert text.startswith(LATEX_PREAMBLE + RESIZED_NOTE) and "\\resizebox{\\textwidth}{!}{%\n" in text
    narrow = latex_table(frame.iloc[:, :3], "narrow", "tab:narrow")
    assert RESIZED_NOTE not in narrow and "\\resizebox" not in narrow
