"""The report's figures: the arrays behind each (mean curves and bands, stalled seeds, error vs depth
beside the paper's on axes of one span, labelled cost points), their captions, titles and files."""

from dataclasses import replace

import pytest
from PIL import Image
from test_report import KNOWN, arm_result

from vggbench.report.plots import (
    DPI,
    OKABE_ITO,
    PAPER_DEPTH_LABEL,
    CostPoint,
    CurveBand,
    DepthSeries,
    StalledCurve,
    ablation_figures,
    chain_offset,
    common_span,
    cost_data,
    curve_data,
    depth_data,
    error_vs_cost,
    error_vs_depth,
    lead_in_data,
    panel_limits,
    says_something,
    training_curves,
)
from vggbench.store import EpochMetrics


def curve(*errors: float) -> list[EpochMetrics]:
    return [EpochMetrics(i + 1, 1.0, 0.01, 1.0, 100.0, 0.1, val_top1_err=e) for i, e in enumerate(errors)]


A_CURVES = [curve(50, 30, 20), curve(60, 40), curve(55, 35, 25)]  # seed 1 stopped after 2 epochs
LRN_CURVES = [curve(52, 31, 22), curve(90, 90, 90), curve(58, 36, 26)]  # seed 1 stalled
SEEDS = dict(seeds=[0, 1, 2], runs=["r0", "r1", "r2"])
CURVES = replace(
    KNOWN,
    preset="quick",
    budget_label="quick+epochs=10",
    budget=replace(KNOWN.budget, data="fashion-mnist"),
    seeds=3,
    arms=[
        arm_result(curves=A_CURVES, evaluation="dense", macs_per_image=2e6, top1_std=0.5, **SEEDS),
        arm_result(curves=A_CURVES, evaluation="center", macs_per_image=1e6, top1_mean=19.0, **SEEDS),
        arm_result(
            name="A-LRN",
            net="A-LRN",
            curves=LRN_CURVES,
            evaluation="dense",
            stalled_seeds=[1],
            macs_per_image=2.5e6,
            top1_mean=21.5,
            top1_std=None,
            **SEEDS,
        ),
        # the center crop judged seed 1 not at chance: it stalled in one evaluation, so in the curves
        arm_result(name="A-LRN", net="A-LRN", curves=LRN_CURVES, evaluation="center", **SEEDS),
    ],
)


def test_curves_are_a_mean_and_a_min_max_band_per_arm_with_stalled_seeds_apart():
    bands, stalled = curve_data(CURVES)
    assert bands == [
        CurveBand("A", [1, 2, 3], [55.0, 35.0, 22.5], [50, 30, 20], [60, 40, 25], [3, 3, 2]),
        CurveBand("A-LRN", [1, 2, 3], [55.0, 33.5, 24.0], [52, 31, 22], [58, 36, 26], [2, 2, 2]),
    ]
    assert stalled == [StalledCurve("A-LRN", 1, [1, 2, 3], [90, 90, 90])]


def test_curves_figure_draws_its_data_names_the_budget_and_saves_png_and_pdf(tmp_path):
    figure = training_curves(CURVES, tmp_path)
    assert figure.data == [*curve_data(CURVES)[0], *curve_data(CURVES)[1]]
    assert figure.title == "Training curves: lrn (A), fashion-mnist, quick+epochs=10"
    assert "band: the minimum to maximum over those seeds" in figure.caption
    assert figure.caption.endswith(
        "left out of the mean and band: seeds that stalled at chance (A-LRN seed 1)."
    )
    png, pdf = figure.paths
    assert (png.name, pdf.name) == ("curves-lrn-A-quick+epochs=10.png", "curves-lrn-A-quick+epochs=10.pdf")
    assert Image.open(png).size == (6 * DPI, 4 * DPI)  # figsize 6 x 4 inches at 200 dpi
    assert pdf.read_bytes().startswith(b"%PDF")


DEPTH_MACS = {"A": 1e6, "B": 1.5e6, "D": 2e6, "E": 2.5e6}  # deeper nets cost more: a cost figure
DEPTH = replace(
    KNOWN,
    ablation="depth",
    seeds=3,
    arms=[
        arm_result(
            name=net,
            net=net,
            evaluation="dense",
            top1_mean=m,
            top1_std=s,
            paper_top1=p,
            macs_per_image=DEPTH_MACS[net],
        )
        for net, m, s, p in (("A", 20.0, 1.0, 29.6), ("E", 17.5, 2.0, 27.3), ("B", 18.0, 0.5, 28.7))
    ]
    + [
        arm_result(
            name="D",
            net="D",
            evaluation="dense",
            top1_mean=17.0,
            top1_std=None,
            paper_top1=27.0,
            macs_per_image=2e6,
        )
    ]
    + [
        arm_result(
            name=net,
            net=net,
            evaluation="center",
            top1_mean=m,
            top1_std=None,
            paper_top1=None,
            macs_per_image=DEPTH_MACS[net] / 4,
        )
        for net, m in (("A", 19.0), ("B", 17.0), ("D", 16.0), ("E", 16.0))
    ],
)


def test_error_vs_depth_sorts_by_depth_beside_the_paper_on_axes_of_one_span(tmp_path):
    ours, paper = depth_data(DEPTH)
    assert ours == [
        DepthSeries(
            "ours, dense", ["A", "B", "D", "E"], [11, 13, 16, 19], [20, 18, 17, 17.5], [1, 0.5, None, 2]
        ),
        DepthSeries("ours, center", ["A", "B", "D", "E"], [11, 13, 16, 19], [19, 17, 16, 16], [None] * 4),
    ]
    assert paper == DepthSeries(
        PAPER_DEPTH_LABEL, ["A", "B", "D", "E"], [11, 13, 16, 19], [29.6, 28.7, 27.0, 27.3], [None] * 4
    )
    # the widest panel: ours, dense with its bars from 21 (A + 1) down to 15.5 (E - 2): 5.5 points, x 1.2
    assert common_span([ours, [paper]]) == pytest.approx(6.6)
    assert common_span([[paper]]) == pytest.approx(1.2 * 2.6)
    figure = error_vs_depth(DEPTH, tmp_path)
    assert figure.data == [*ours, paper]
    assert "bars ±1 sample standard deviation over seeds" in figure.caption
    assert "Both y axes span the same 6.6 points" in figure.caption
    assert figure.title == "Error vs depth: depth (A), synthetic, smoke"
    # without the paper's numbers: ours alone
    assert depth_data(replace(DEPTH, arms=DEPTH.arms[4:]))[1] is None


def test_error_vs_cost_labels_every_arm_under_every_evaluation(tmp_path):
    points = cost_data(CURVES)
    assert points == [
        CostPoint("A", "dense", 2e6, 20.0, 0.5),
        CostPoint("A", "center", 1e6, 19.0, 1.0),
        CostPoint("A-LRN", "dense", 2.5e6, 21.5, None),
        CostPoint("A-LRN", "center", 1, 20.0, 1.0),
    ]
    figure = error_vs_cost(CURVES, tmp_path)
    assert figure.data == points and figure.title == "Error vs cost: lrn (A), fashion-mnist, quick+epochs=10"
    assert "bars ±1 sample standard deviation" in figure.caption


def test_a_record_gets_curves_depth_only_over_three_depths_and_cost(tmp_path):
    assert [f.name for f in ablation_figures(CURVES, tmp_path)] == [
        "curves-lrn-A-quick+epochs=10",
        "error-vs-cost-lrn-A-quick+epochs=10",
    ]
    assert [f.name for f in ablation_figures(DEPTH, tmp_path)] == [
        "error-vs-depth-depth-A-smoke",
        "error-vs-cost-depth-A-smoke",
    ]
    assert ablation_figures(replace(KNOWN, arms=[]), tmp_path) == []
    # a data path's slashes and colons never reach the file name
    folder = replace(KNOWN, budget_label="paper+data=imagefolder:data/x")
    assert ablation_figures(folder, tmp_path)[0].name == "error-vs-cost-lrn-A-paper+data=imagefolder-data-x"
    assert len(set(OKABE_ITO)) == 8


# --- Fine-tuning chains, the cost figure's skip rule, the 0% floor ------------------------------

CHAIN_SEEDS = dict(seeds=[0, 1], runs=["r0", "r1"])
CHAIN = replace(
    KNOWN,
    ablation="jitter",
    net="D",
    arms=[
        arm_result(name="D S=256", net="D", curves=[curve(50, 40, 30), curve(60, 45)], **CHAIN_SEEDS),
        # seed 0 fine-tuned from the source's 3 epochs, seed 1 from its 2
        arm_result(
            name="D S=384",
            net="D",
            chain=["S=256", "S=384"],
            curves=[curve(35, 25), curve(41, 33)],
            macs_per_image=2,
            **CHAIN_SEEDS,
        ),
        arm_result(
            name="D jitter",
            net="D",
            chain=["S=256", "S=384", "jitter 256:512"],
            curves=[curve(24), curve(30)],
            macs_per_image=3,
            **CHAIN_SEEDS,
        ),
    ],
)


def test_a_fine_tuned_arm_is_drawn_after_the_epochs_of_its_chain(tmp_path):
    scratch, s384, jitter = CHAIN.arms
    # the epochs before each seed's own run: its source's, and the source's chain before that
    assert [chain_offset(CHAIN, scratch, seed) for seed in (0, 1)] == [0, 0]
    assert [chain_offset(CHAIN, s384, seed) for seed in (0, 1)] == [3, 2]
    assert [chain_offset(CHAIN, jitter, seed) for seed in (0, 1)] == [3 + 2, 2 + 2]
    bands, stalled = curve_data(CHAIN)
    assert stalled == []
    assert bands == [
        CurveBand("D S=256", [1, 2, 3], [55.0, 42.5, 30.0], [50, 40, 30], [60, 45, 30], [2, 2, 1]),
        # x = source epochs + own epochs: seed 0 at 3 + (1, 2), seed 1 at 2 + (1, 2)
        CurveBand("D S=384", [3, 4, 5], [41.0, 34.0, 25.0], [41, 33, 25], [41, 35, 25], [1, 2, 1]),
        CurveBand("D jitter", [5, 6], [30.0, 24.0], [30, 24], [30, 24], [1, 1]),
    ]
    # faded before each fine-tuned arm: the runs it was fine-tuned from, on the same epochs
    assert lead_in_data(CHAIN) == [
        CurveBand("D S=384", [1, 2, 3], [55.0, 42.5, 30.0], [50, 40, 30], [60, 45, 30], [2, 2, 1]),
        CurveBand(
            "D jitter",
            [1, 2, 3, 4, 5],
            [55.0, 42.5, 35.5, 34.0, 25.0],
            [50, 40, 30, 33, 25],
            [60, 45, 41, 35, 25],
            [2, 2, 2, 2, 1],
        ),
    ]
    figure = training_curves(CHAIN, tmp_path)
    assert figure.data == [*bands, *lead_in_data(CHAIN)]
    assert "each seed's epochs follow those of the runs it was fine-tuned from" in figure.caption
    # a source the record lacks: the chain's epochs of the first seed (total_epochs) before each seed
    alone = replace(CHAIN, arms=[replace(s384, total_epochs=40)])
    assert curve_data(alone)[0][0].epochs == [39, 40] and lead_in_data(alone) == []


def test_a_cost_figure_is_drawn_only_when_its_costs_are_ten_percent_apart_or_more(tmp_path):
    def points(*macs: float) -> list[CostPoint]:
        return [CostPoint(f"arm{i}", "center", m, 15.0, None) for i, m in enumerate(macs)]

    # conv5x5 at quick: B and B-5x5 at 4.06 and 3.78 million MACs say nothing the table does not
    assert not says_something(points(4.06e6, 3.782e6))
    assert not says_something(points(1e6, 1e6)) and not says_something([])
    assert says_something(points(1e6, 1.1e6)) and says_something(points(2.9e6, 10.7e6))
    conv5x5 = replace(
        KNOWN,
        ablation="conv5x5",
        arms=[arm_result(name="B", macs_per_image=4.06e6), arm_result(name="B-5x5", macs_per_image=3.782e6)],
    )
    assert ablation_figures(conv5x5, tmp_path) == []
    assert [f.name for f in ablation_figures(CHAIN, tmp_path)] == [
        "curves-jitter-D-smoke",
        "error-vs-cost-jitter-D-smoke",
    ]


def test_no_axis_reaches_below_zero_error(tmp_path):
    # ours spread from 12% (center E) to 61% (dense A + its std): a span of 1.2 x 49 points, which
    # centred on the paper's 27-29.6% would start at 28.3 - 29.4 = -1.1%
    wide = replace(DEPTH, arms=[replace(a, top1_mean=(a.top1_mean - 15) * 12) for a in DEPTH.arms])
    ours, paper = depth_data(wide)
    span = common_span([ours, [paper]])
    assert span == pytest.approx(1.2 * 49)
    assert panel_limits(ours, span) == (pytest.approx(36.5 - span / 2), pytest.approx(36.5 + span / 2))
    assert panel_limits([paper], span) == (0.0, pytest.approx(span))  # moved up, its span kept
    figure = error_vs_depth(wide, tmp_path)
    assert figure.y_limits == [panel_limits(ours, span), panel_limits([paper], span)]
    # a curve reaching 0%: its axis starts at 0, not at matplotlib's margin below
    zero = replace(
        CURVES, arms=[arm_result(curves=[curve(3, 0.0), curve(2, 0.0)], seeds=[0, 1], runs=["r0", "r1"])]
    )
    assert training_curves(zero, tmp_path).y_limits[0][0] == 0.0
    assert all(bottom >= 0 for f in ablation_figures(CHAIN, tmp_path) for bottom, _ in f.y_limits)
