"""Ablation specs, statistics over seeds, verdicts, shards, and a sweep end to end."""

import json
import math
import statistics

import pytest
from conftest import assert_one_line_error
from test_report import make_eval, make_run

from vggbench.ablations.spec import SPEC_DIR, Budget, available_ablations, load_spec, preset_budget
from vggbench.ablations.stats import (
    PAPER_GAP,
    Difference,
    difference,
    equivalence_power,
    equivalence_seeds_needed,
    paper_difference,
    paper_gap,
    power_target,
    read_ablations,
    seeds_for,
    seeds_needed,
    slope_text,
    verdict,
    zero_variance_note,
)
from vggbench.ablations.sweep import analyse, budget_label, parse_shard, sweep, train_config
from vggbench.ablations.testability import claim_kinds, untestable_reason
from vggbench.errors import VggbenchError
from vggbench.evaluate.records import run_identity
from vggbench.recipe import at_chance
from vggbench.store import read_evals, read_run, read_runs, record_id, write_eval, write_run
from vggbench.train import NOT_LEARNING

ALL = ["conv1x1", "conv5x5", "depth", "init", "jitter", "lrn"]


def test_every_paper_ablation_has_a_spec_that_loads():
    assert available_ablations() == ALL
    for name in ALL:
        spec = load_spec(name)
        assert spec.comparisons and spec.evaluations and len(spec.arms) >= 2


def test_paper_differences_come_from_the_paper_tables():
    assert paper_difference(load_spec("lrn"), load_spec("lrn").comparisons[0]) == pytest.approx(0.1)
    conv1x1 = load_spec("conv1x1")
    dense = [c for c in conv1x1.comparisons if c.evaluation.endswith("dense")]
    assert [paper_difference(conv1x1, c) for c in dense] == pytest.approx([-1.1, -1.7])
    # Tables 3 and 4 are dense evaluation: a center-crop comparison has no paper number beside it
    center = [c for c in conv1x1.comparisons if c.evaluation.endswith("center crop")]
    assert len(center) == 2 and [paper_difference(conv1x1, c) for c in center] == [None, None]
    jitter = load_spec("jitter", "E")
    # single scale: E jitter 25.5 - E S=256 27.3; multi-scale (Table 4): 24.8 - 26.7 (S=384)
    assert [paper_difference(jitter, c) for c in jitter.comparisons[:2]] == pytest.approx([-1.8, -1.9])
    assert paper_difference(load_spec("conv5x5"), load_spec("conv5x5").comparisons[0]) == -7.0


def test_config_fills_the_template_and_is_checked():
    spec = load_spec("jitter", "c")
    assert [a.name for a in spec.arms] == ["C S=256", "C S=384", "C jitter"] and spec.net == "C"
    assert load_spec("jitter").net == "D"
    with pytest.raises(VggbenchError, match="cannot use --config A; choose one of C, D, E"):
        load_spec("jitter", "A")


def test_paired_interval_by_hand():
    # deltas -1, -1.5, -1: mean -7/6, sd 0.288675; t(0.975, 2) = 4.302653
    diff = difference({0: 10.0, 1: 11.0, 2: 12.0}, {0: 9.0, 1: 9.5, 2: 11.0})
    half = 4.302652729749462 * 0.28867513459481287 / math.sqrt(3)
    assert diff.paired and diff.n == 3 and not diff.zero_variance
    assert diff.top1 == pytest.approx(-7 / 6) and diff.std == pytest.approx(0.28867513459481287)
    assert (diff.ci95_low, diff.ci95_high) == pytest.approx((-7 / 6 - half, -7 / 6 + half))


def test_welch_interval_when_seeds_do_not_pair():
    diff = difference({0: 10.0, 1: 12.0}, {5: 8.0, 6: 9.0, 7: 10.0})
    assert not diff.paired and diff.top1 == pytest.approx(-2.0)
    va, vb = 2.0 / 2, 1.0 / 3
    dof = (va + vb) ** 2 / (va**2 / 1 + vb**2 / 2)
    from scipy import stats

    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    assert (diff.ci95_low, diff.ci95_high) == pytest.approx((-2 - half, -2 + half))


def test_one_seed_gives_no_interval_and_an_inconclusive_verdict():
    diff = difference({0: 10.0}, {0: 9.0})
    assert diff.ci95_low is None and verdict(diff, "lower") == "inconclusive"


@pytest.mark.parametrize(
    "low, high, expect, outcome",
    [
        (-2, -1, "lower", "consistent"),
        (1, 2, "lower", "contradicts"),
        (-1, 1, "lower", "inconclusive"),
        (-2, -1.5, "no_better", "contradicts"),
        (-0.5, 2, "no_better", "consistent"),
        (-3, 0.5, "no_better", "inconclusive"),
        (-0.5, 0.5, "similar", "consistent"),
        (1.5, 3, "similar", "contradicts"),
        (-2, 0.5, "similar", "inconclusive"),
    ],
)
def test_verdicts(low, high, expect, outcome):
    assert verdict(Difference((low + high) / 2, low, high, True, 3), expect, margin=1.0) == outcome


@pytest.mark.parametrize(
    "low, high, outcome",
    [
        (-3.0, -1.0, "inconclusive"),  # the interval reaches -margin: not lower by more than it
        (-3.0, -1.01, "contradicts"),  # wholly below -margin
        (-1.0, 2.0, "inconclusive"),  # its lower end is -margin, not above it
        (-0.99, 2.0, "consistent"),
        (-1.5, -0.5, "inconclusive"),  # lower, but maybe by less than the margin
    ],
)
def test_no_better_contradicts_only_beyond_the_margin(low, high, outcome):
    assert verdict(Difference((low + high) / 2, low, high, True, 3), "no_better", margin=1.0) == outcome


def test_zero_variance_has_no_interval_and_no_verdict():
    diff = difference({0: 10.0, 1: 11.0, 2: 12.0}, {0: 11.0, 1: 12.0, 2: 13.0})
    assert (diff.top1, diff.ci95_low, diff.ci95_high, diff.std) == (1.0, None, None, 0.0)
    assert diff.zero_variance and diff.paired and diff.n == 3
    assert verdict(diff, "similar", 2.0) == "inconclusive"
    assert zero_variance_note(diff) == "zero variance: every seed differs by exactly +1.00"
    # errors of 100 images differ by float rounding only: still zero variance
    rounded = difference({0: 100 * 7 / 100, 1: 100 * 3 / 100}, {0: 100 * 9 / 100, 1: 100 * 5 / 100})
    assert rounded.zero_variance and rounded.top1 == pytest.approx(2.0)
    welch = difference({0: 10.0, 1: 10.0}, {5: 12.0, 6: 12.0, 7: 12.0})
    assert welch.zero_variance and not welch.paired and welch.ci95_low is None
    assert (
        zero_variance_note(welch)
        == "zero variance: every seed of each arm has the same error (difference +2.00)"
    )
    # the flag alone decides: an interval that would be consistent is not read
    assert verdict(Difference(-2.0, -2.0, -2.0, True, 3, 0.0, zero_variance=True), "lower") == "inconclusive"


def test_seeds_needed_by_hand():
    # s = delta: n = 9 gives ((t_.975,8 + t_.80,8) * 1)^2 = (2.306004 + 0.888890)^2 = 10.21 > 9;
    # n = 10 gives (2.262157 + 0.883404)^2 = 9.89 <= 10
    assert seeds_needed(1.0, 1.0) == 10 and seeds_needed(1.0, -1.0) == 10
    # s 2, delta 7: n = 2: ((12.706205 + 1.376382) * 2 / 7)^2 = 16.2 > 2;
    # n = 3: ((4.302653 + 1.060660) * 2 / 7)^2 = 2.35 <= 3
    assert seeds_needed(2.0, 7.0) == 3
    # s 0.288675, delta 0.4: n = 6: ((2.570582 + 0.919544) * 0.721688)^2 = 6.34 > 6; n = 7: 5.85
    assert seeds_needed(0.28867513459481287, 0.4) == 7


def _interval_rates(std: float, n: int, margin: float, draws: int = 100_000) -> tuple[float, float]:
    """Simulated: over `draws` samples of n paired differences ~ N(0, std^2) (the arms truly equal),
    how often the 95% t-interval lies inside (-margin, margin) ("similar" consistent) and how often
    its lower end is above -margin ("no_better" consistent)."""
    import numpy as np
    from scipy import stats as scipy_stats

    x = np.random.default_rng(n).normal(0.0, std, (draws, n))
    mean, half = x.mean(1), scipy_stats.t.ppf(0.975, n - 1) * x.std(1, ddof=1) / math.sqrt(n)
    return float(np.mean((mean - half > -margin) & (mean + half < margin))), float(
        np.mean(mean - half > -margin)
    )


@pytest.mark.parametrize("std, margin, n", [(0.5, 0.5, 13), (1.0, 2.0, 5), (2.0, 1.5, 21)])
def test_seeds_for_similar_give_two_one_sided_tests_80_percent_power(std, margin, n):
    assert equivalence_seeds_needed(std, margin) == n
    assert _interval_rates(std, n, margin)[0] >= 0.80 > _interval_rates(std, n - 1, margin)[0]
    # the exact power agrees with the simulation
    assert equivalence_power(std, margin, n) == pytest.approx(_interval_rates(std, n, margin)[0], abs=0.005)


@pytest.mark.parametrize("std, margin, n", [(0.5, 0.5, 10), (1.0, 2.0, 5), (0.8, 1.0, 8)])
def test_seeds_for_no_better_give_its_one_sided_test_80_percent_power(std, margin, n):
    assert seeds_needed(std, margin) == n
    assert _interval_rates(std, n, margin)[1] >= 0.80 > _interval_rates(std, n - 1, margin)[1]


def test_seeds_for_similar_is_sized_by_its_own_test():
    # the init ablation's spread and margin (issue 23): the shift formula said 15 seeds, at which
    # the interval lies inside +-1 point 66% of the time; two one-sided tests need 19
    assert seeds_needed(1.235, 1.0) == 15 and equivalence_power(1.235, 1.0, 15) == pytest.approx(
        0.661, abs=1e-3
    )
    assert equivalence_seeds_needed(1.235, 1.0) == 19
    assert equivalence_power(1.235, 1.0, 18) < 0.80 <= equivalence_power(1.235, 1.0, 19)
    measured = difference({0: 10.0, 1: 11.0, 2: 12.0}, {0: 9.0, 1: 9.5, 2: 11.0})  # std 0.2887
    assert seeds_for(measured, 0.4, "similar") == (equivalence_seeds_needed(measured.std, 0.4), None)
    assert seeds_for(measured, 0.4, "similar")[0] > seeds_for(measured, 0.4, "no_better")[0] == 7


@pytest.mark.parametrize(
    "low, high, paper, where",
    [
        (-1.92, 1.72, -7.0, "smaller"),  # conv5x5 at quick: B - B-5x5 straddles 0, the paper's -7 is out
        (9.1, 12.5, -1.5, "opposite"),  # the whole interval on the other side of 0
        (-0.5, 0.5, 1.0, "smaller"),
        (-3.0, -2.0, -1.5, "larger"),
        (2.0, 3.0, 1.5, "larger"),
        (-8.0, -6.0, -7.0, "inside"),
        (-7.0, -6.0, -7.0, "inside"),  # an end of the interval counts as inside
        (-1.0, 1.0, None, None),
    ],
)
def test_paper_gap_places_the_papers_difference_against_our_interval(low, high, paper, where):
    diff = Difference((low + high) / 2, low, high, True, 3, 1.0)
    assert paper_gap(diff, paper) == where
    assert where is None or PAPER_GAP[where].startswith(("consistent", "excludes"))


def test_paper_gap_needs_an_interval():
    assert paper_gap(Difference(1.0, None, None, True, 1), -7.0) is None
    assert paper_gap(Difference(-7.0, None, None, True, 3, 0.0, zero_variance=True), -7.0) is None


def test_records_without_paper_gap_still_read():
    from pathlib import Path

    records = read_ablations(Path(__file__).resolve().parent.parent / "results")
    assert records and all(c.paper_gap in (None, *PAPER_GAP) for r in records for c in r.comparisons)


def test_slopes_keep_their_sign_when_small():
    assert [slope_text(x) for x in (3.14, 0.05, 0.025, 0.0012, 0.0)] == ["3.1", "0.1", "0.025", "0.0012", "0"]


def test_seeds_for_says_why_when_it_cannot_size_a_sample():
    measured = difference({0: 10.0, 1: 11.0, 2: 12.0}, {0: 9.0, 1: 9.5, 2: 11.0})
    assert seeds_for(measured, 0.4) == (7, None)
    assert seeds_for(measured, None) == (
        None,
        "the paper gives no difference for this comparison to size a sample by",
    )
    zero = difference({0: 10.0, 1: 11.0}, {0: 11.0, 1: 12.0})
    assert seeds_for(zero, 1.0) == (None, "zero variance between seeds: no spread to size a sample by")
    assert seeds_for(difference({0: 10.0}, {0: 9.0}), 1.0)[1].startswith("one seed")
    assert power_target("lower", -7.0, 1.0) == 7.0 and power_target("lower", None, 1.0) is None
    assert power_target("similar", 0.1, 1.5) == 1.5 and power_target("no_better", -0.1, 1.0) == 1.0


def test_chance_is_within_one_point_of_guessing():
    assert at_chance(89.0, 10) and not at_chance(88.99, 10)  # chance 90%
    assert at_chance(99.0, 1000) and not at_chance(98.8, 1000)  # chance 99.9%


CHAIN_SPEC = """
title = "S=384 fine-tuned from S=256, and a Glorot arm"
claim = "S=384 is lower; Glorot is the same"
choices = ["E"]

[[arms]]
name = "E S=256"
net = "E"
scale = "256"
init = "kaiming"
paper = { table = 3, net = "E", scale = "256" }

[[arms]]
name = "E S=384"
net = "E"
scale = "384"
init_from = "E S=256"
paper = { table = 3, net = "E", scale = "384" }

[[arms]]
name = "E glorot"
net = "E"
scale = "256"
init = "glorot"

[[evaluations]]
name = "dense"
method = "dense"
scales = "single"

[[comparisons]]
baseline = "E S=256"
treatment = "E S=384"
evaluation = "dense"
expect = "lower"
test_scale_in_treatment = true  # Q = S, as Table 3

[[comparisons]]
baseline = "E S=256"
treatment = "E glorot"
evaluation = "dense"
expect = "similar"
"""


def _store_sweep(root, spec, budget: Budget, top1_of, net: str = "E") -> dict[tuple[str, int], str]:
    """A sweep's runs and, for every evaluation of the spec that covers an arm, its evaluation record
    with the top-1 error `top1_of(arm name, seed, paper-unit Q set, method)` (None: no record),
    written straight to the store; E glorot's seed 2 warned that it was not learning. The run ids
    by (arm, seed)."""
    run_ids: dict[tuple[str, int], str] = {}
    for seed in range(3):
        for arm in spec.arms:
            config = train_config(arm, seed, budget, run_ids)
            warnings = [f"{NOT_LEARNING}: ..."] if (arm.name, seed) == ("E glorot", 2) else []
            run = make_run(
                config.run_id,
                config.to_dict(),
                net=net,
                train_scale=arm.scale,
                init_from=config.init_from,
                warnings=warnings,
                seed=seed,
                stopped_by="schedule",
            )
            write_run(root, run)
            run_ids[(arm.name, seed)] = run.id
            for protocol in spec.evaluations:
                identity = run_identity(run, protocol.method, protocol.scales, protocol.max_images)
                top1 = top1_of(arm.name, seed, tuple(identity["test_scales"]), protocol.method)
                if protocol.applies_to(arm.name) and top1 is not None:
                    record = make_eval(id=record_id(identity), runs=[run.id], top1_err=top1, seconds=1.5)
                    write_eval(root, record)
    return run_ids


def _chain_errors(arm: str, seed: int, qs: tuple, method: str) -> float:
    return CHAIN_ERRORS[arm][seed]


CHAIN_ERRORS = {"E S=256": [50.0, 52.0, 54.0], "E S=384": [48.0, 49.5, 52.0], "E glorot": [55.0, 89.5, 60.0]}


def test_analysis_of_a_stored_sweep_judges_only_from_evidence(tmp_path):
    """A sweep's runs and evaluations written straight to the store (no training): a fine-tuned arm's
    chain and epochs, a stalled arm without a verdict, and the seeds the other comparison needs."""
    (tmp_path / "chain.toml").write_text(CHAIN_SPEC)
    spec = load_spec(str(tmp_path / "chain.toml"))
    budget = Budget(data="synthetic", width=0.125, crop=128, epochs=2, batch=8, lr=0.01)  # dense is testable
    run_ids = _store_sweep(tmp_path, spec, budget, _chain_errors)
    record = analyse(spec, seeds=3, preset="smoke", budget=budget, results_dir=tmp_path)
    base, tuned, glorot = record.arms
    assert (base.chain, base.total_epochs) == (["S=256"], 2)
    assert (tuned.chain, tuned.total_epochs) == (["S=256", "S=384"], 4)
    assert (tuned.num_classes, tuned.input_range, tuned.stalled_seeds) == (10, "0-255", [])
    assert glorot.stalled_seeds == [1, 2]  # 89.5% is within a point of chance (90%); seed 2 warned
    lower, similar = record.comparisons
    # deltas -2, -2.5, -2: mean -13/6, sd 0.288675, half 4.302653 * 0.288675 / sqrt(3) = 0.717
    assert lower.difference.top1 == pytest.approx(-13 / 6)
    assert (lower.difference.ci95_low, lower.difference.ci95_high) == pytest.approx(
        (-2.8838, -1.4496), abs=1e-4
    )
    assert (lower.verdict, lower.note, lower.paper_top1) == ("consistent", None, pytest.approx(-0.4))
    assert (lower.seeds_needed, lower.seeds_note) == (7, None)  # see test_seeds_needed_by_hand
    assert lower.seeds_target == pytest.approx(0.4)  # sized for the paper's gap
    # ours -2.17 [-2.88, -1.45] against the paper's -0.4: the same sign, larger than the paper's
    assert (lower.paper_gap, lower.paper_gap_top1) == ("larger", pytest.approx(-0.4))
    assert similar.paper_gap is None  # stalled: no reading of its size
    assert (similar.verdict, similar.note) == (
        "stalled",
        "stalled: arm 'E glorot' seeds 1, 2 stayed at chance",
    )
    assert similar.seeds_needed is None
    assert (record.verdict, record.runs_found, record.runs_expected) == ("consistent", 9, 9)
    # a budget of the test's own against the (packaged) smoke preset: its label names the changes
    assert record.budget_label == "smoke+width=0.125+crop=128+batch=8+lr=0.01+limit-train=none+limit-val=none"
    assert record.cost.eval_s == pytest.approx(9 * 1.5)
    assert read_ablations(tmp_path) == [record]
    # one seed of the base arm at chance: the lower comparison is stalled too, naming that arm
    first = read_run(tmp_path, run_ids[("E S=256", 0)])
    at_chance_eval = make_eval(
        id=record_id(run_identity(first, "dense", "single")), runs=[first.id], top1_err=90.0
    )
    write_eval(tmp_path, at_chance_eval)
    again = analyse(spec, seeds=3, preset="smoke", budget=budget, results_dir=tmp_path)
    assert again.comparisons[0].verdict == "stalled"
    assert again.comparisons[0].note == "stalled: arm 'E S=256' seed 0 stayed at chance"
    assert (
        again.comparisons[1].note
        == "stalled: arm 'E S=256' seed 0 and arm 'E glorot' seeds 1, 2 stayed at chance"
    )


def test_a_claim_the_budget_cannot_test_is_measured_but_gets_no_verdict(tmp_path):
    """At crop 32 the dense protocol is geometry (testability.py): the same errors as above are still
    measured, with the same interval, but neither comparison gets a verdict, only the reason."""
    (tmp_path / "chain.toml").write_text(CHAIN_SPEC)
    spec = load_spec(str(tmp_path / "chain.toml"))
    budget = Budget(data="synthetic", width=0.125, crop=32, epochs=2, batch=8, lr=0.01)
    _store_sweep(tmp_path, spec, budget, _chain_errors)
    record = analyse(spec, seeds=3, preset="smoke", budget=budget, results_dir=tmp_path)
    lower, similar = record.comparisons
    assert lower.difference.top1 == pytest.approx(-13 / 6)  # measured as before
    assert (lower.difference.ci95_low, lower.difference.ci95_high) == pytest.approx(
        (-2.8838, -1.4496), abs=1e-4
    )
    reason = (
        "not testable at this budget: crop 32 px: below 128 px dense evaluation's score map is a few "
        "windows reaching past the image into zero padding, not the paper's protocol (read the center "
        "crop or multi-crop instead)"
    )
    for comparison in (lower, similar):  # similar's stalled arm does not hide why it is untestable
        assert (comparison.verdict, comparison.note) == ("not testable", reason)
        assert (comparison.seeds_needed, comparison.seeds_note) == (None, "not testable at this budget")
        assert comparison.paper_gap is None
    assert record.verdict == "not testable"
    # on Fashion-MNIST the scale claim is untestable for its data too, at any crop
    fashion = Budget(data="fashion-mnist", width=0.125, crop=128, epochs=2, batch=8, lr=0.01)
    assert untestable_reason(claim_kinds(["256", "384"], "dense"), fashion.data, fashion.crop) == (
        "Fashion-MNIST: centered garments that fill the frame, no scale variation to act on"
    )


def test_a_verdict_on_arms_that_did_not_converge_is_about_the_budget(tmp_path):
    """One seed of the fine-tuned arm hit the epoch cap with its error still falling: the same
    interval now reads 'consistent at this budget' and says what had not converged."""
    test_analysis_of_a_stored_sweep_judges_only_from_evidence(tmp_path)
    spec = load_spec(str(tmp_path / "chain.toml"))
    budget = Budget(data="synthetic", width=0.125, crop=128, epochs=2, batch=8, lr=0.01)  # dense is testable
    base = read_run(
        tmp_path, analyse(spec, seeds=3, preset="smoke", budget=budget, results_dir=tmp_path).arms[0].runs[0]
    )
    write_eval(  # undo the at-chance seed of the previous test
        tmp_path,
        make_eval(id=record_id(run_identity(base, "dense", "single")), runs=[base.id], top1_err=50.0),
    )
    tuned_id = analyse(spec, seeds=3, preset="smoke", budget=budget, results_dir=tmp_path).arms[1].runs[2]
    tuned = read_run(tmp_path, tuned_id)
    tuned.stopped_by, tuned.val_slope = "epoch cap", -3.14
    write_run(tmp_path, tuned)
    record = analyse(spec, seeds=3, preset="smoke", budget=budget, results_dir=tmp_path)
    lower = record.comparisons[0]
    assert record.arms[1].converged is False and record.arms[0].converged is True
    assert (lower.verdict, lower.converged) == ("consistent at this budget", False)
    assert (
        lower.note == "not converged: E S=384 stopped by the epoch cap (1 of 3 seeds), "
        "error still falling 3.1 points/epoch"
    )
    assert record.comparisons[1].verdict == "stalled"  # a stalled arm stays stalled


def test_shards_split_seeds_and_keep_chains_together():
    spec = load_spec("init")
    jobs = [sweep(spec, 3, (i, 2)) for i in (1, 2)]
    assert {s for _, s in jobs[0]} == {0, 2} and {s for _, s in jobs[1]} == {1}
    assert sorted((a.name, s) for part in jobs for a, s in part) == sorted(
        (a.name, s) for a in spec.arms for s in range(3)
    )
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) == (1, 1)


@pytest.mark.parametrize("text", ["3/2", "0/2", "a/b", "1"])
def test_bad_shards(text):
    with pytest.raises(VggbenchError, match="shard"):
        parse_shard(text)


def test_spec_with_a_misspelled_key_names_the_key_and_the_file(tmp_path):
    (tmp_path / "presets.toml").write_text("[smoke]\ndata = 'synthetic'\n")
    text = (SPEC_DIR / "lrn.toml").read_text().replace("evaluation = ", "evalution = ")
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(VggbenchError, match=r"bad.toml: \[\[comparisons\]\] 1: unknown key 'evalution'"):
        load_spec(str(tmp_path / "bad.toml"))
    (tmp_path / "missing.toml").write_text(text.replace("claim = ", "claims = "))
    with pytest.raises(VggbenchError, match="unknown key 'claims'"):
        load_spec(str(tmp_path / "missing.toml"))


def test_a_paper_number_named_by_a_spec_must_be_one_of_paper_py(tmp_path):
    text = (SPEC_DIR / "conv5x5.toml").read_text()
    assert "7" not in text.split("paper_top1_gap = ")[1].splitlines()[0]  # the number lives in paper.py
    (tmp_path / "bad.toml").write_text(text.replace('"B5X5_TOP1_GAP"', '"B5X5_GAP"'))
    with pytest.raises(VggbenchError, match="bad.toml: paper_top1_gap 'B5X5_GAP' is not a number"):
        load_spec(str(tmp_path / "bad.toml"))


def test_preset_budget_layers_presets_spec_and_overrides(tmp_path):
    budget = preset_budget(load_spec("lrn"), "quick", {"epochs": 9, "width": None})
    assert budget.data == "fashion-mnist" and budget.epochs == 9 and budget.width == 0.125
    with pytest.raises(VggbenchError, match="smoke, quick, gpu, paper"):
        preset_budget(load_spec("lrn"), "huge")
    (tmp_path / "presets.toml").write_text("[smoke]\ndata = 'synthetic'\n")
    (tmp_path / "lrn.toml").write_text((SPEC_DIR / "lrn.toml").read_text())
    with pytest.raises(VggbenchError, match="preset 'smoke' sets no 'width'"):
        preset_budget(load_spec("lrn", spec_dir=tmp_path), "smoke")


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["nope"], ["unknown ablation 'nope'", "lrn"]),
        (["lrn", "--config", "D"], ["cannot use --config D", "A"]),
        (["lrn", "--seeds", "0"], ["--seeds 0"]),
        (["lrn", "--shard", "3/2"], ["bad shard '3/2'"]),
        (["lrn", "--preset", "huge"], ["unknown preset 'huge'"]),
        (["jitter", "--finetune-lr", "0"], ["--finetune-lr 0.0 must be a finite positive number"]),
        (["jitter", "--finetune-epochs", "0"], ["--finetune-epochs 0 must be a whole number of at least 1"]),
    ],
)
def test_ablate_bad_input(cli, argv, fragments, tmp_path):
    assert_one_line_error(cli("ablate", *argv, "--results-dir", str(tmp_path)), *fragments)


def test_a_budget_is_labelled_by_what_it_changes_in_its_preset():
    lrn = load_spec("lrn")
    assert budget_label(lrn, "quick", preset_budget(lrn, "quick")) == "quick"
    assert budget_label(lrn, "quick", preset_budget(lrn, "quick", {"epochs": 40})) == "quick"
    assert budget_label(lrn, "quick", preset_budget(lrn, "quick", {"epochs": 10})) == "quick+epochs=10"
    # --lr moves finetune_lr (lr / 10) too: only what was changed is named
    assert budget_label(lrn, "quick", preset_budget(lrn, "quick", {"lr": 0.01})) == "quick+lr=0.01"
    both = preset_budget(lrn, "quick", {"lr": 0.01, "finetune_lr": 0.005, "limit_train": 5000})
    assert budget_label(lrn, "quick", both) == "quick+lr=0.01+limit-train=5000+finetune-lr=0.005"
    # --from-scratch is a budget of its own where it drops a chain, and changes nothing where none is
    jitter = load_spec("jitter", chain=False)
    assert budget_label(jitter, "smoke", preset_budget(jitter, "smoke")) == "smoke+from-scratch"
    lrn_scratch = load_spec("lrn", chain=False)
    assert budget_label(lrn_scratch, "smoke", preset_budget(lrn_scratch, "smoke")) == "smoke"


def test_a_key_the_preset_leaves_to_the_command_line_is_in_the_label(tmp_path):
    (tmp_path / "presets.toml").write_text(
        "[smoke]\nwidth = 0.0625\ncrop = 32\nepochs = 2\nbatch = 64\nlr = 0.005\n"
    )
    (tmp_path / "lrn.toml").write_text((SPEC_DIR / "lrn.toml").read_text())
    spec = load_spec("lrn", spec_dir=tmp_path)
    assert (
        budget_label(spec, "smoke", preset_budget(spec, "smoke", {"data": "synthetic"}))
        == "smoke+data=synthetic"
    )


def test_a_spec_file_anywhere_runs_at_the_packaged_presets(tmp_path):
    (tmp_path / "mine.toml").write_text((SPEC_DIR / "lrn.toml").read_text())
    assert not (tmp_path / "presets.toml").exists()
    spec = load_spec(str(tmp_path / "mine.toml"))
    assert (spec.name, preset_budget(spec, "quick")) == ("mine", preset_budget(load_spec("lrn"), "quick"))


def test_a_spec_file_that_is_missing_or_a_directory_is_one_line(cli, tmp_path):
    results = ["--results-dir", str(tmp_path / "results")]
    missing = tmp_path / "nope.toml"
    assert_one_line_error(
        cli("ablate", str(missing), *results), f"no spec file {missing}", "conv1x1, conv5x5, depth"
    )
    (tmp_path / "folder.toml").mkdir()
    for folder in (tmp_path, tmp_path / "folder.toml"):
        assert_one_line_error(cli("ablate", str(folder), *results), f"spec file {folder} is a directory")


@pytest.mark.slow
def test_smoke_ablation_end_to_end_then_report(cli, tmp_path):
    """CI's smoke sweep: 2 arms x 2 seeds on synthetic images, stored, analysed, rendered."""
    argv = [
        "ablate",
        "lrn",
        "--preset",
        "smoke",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--limit-train",
        "256",
        "--limit-val",
        "64",
        "--results-dir",
        str(tmp_path),
        "--quiet",
        "--format",
        "json",
    ]
    first = cli(*argv)
    assert first.code == 0, first.err
    result = json.loads(first.out)
    assert {"ablation", "arms", "difference", "verdict", "paper"} <= set(result)
    dense, center = "single scale, dense", "single scale, center crop"
    assert [(arm["name"], arm["evaluation"]) for arm in result["arms"]] == [
        ("A", dense),
        ("A", center),
        ("A-LRN", dense),
        ("A-LRN", center),
    ]
    for arm in result["arms"]:
        assert {"name", "runs", "top1_mean", "top1_std", "top5_mean", "top5_std"} <= set(arm) and len(
            arm["runs"]
        ) == 2
    base, treat = (
        {s: r for s, r in zip(a["seeds"], a["runs"])} for a in result["arms"] if a["evaluation"] == dense
    )
    evals = {(r.runs[0], r.method): r for r in read_evals(tmp_path)}
    expected = difference(
        {s: evals[base[s], "dense"].top1_err for s in base},
        {s: evals[treat[s], "dense"].top1_err for s in treat},
    )
    assert result["difference"]["top1"] == pytest.approx(expected.top1)
    assert [c["evaluation"] for c in result["comparisons"]] == [dense, center]
    assert result["comparisons"][1]["paper_top1"] is None  # the paper's Table 3 is dense evaluation
    assert result["paper"]["top1_difference"] == pytest.approx(0.1)
    # a second call finds every run and evaluation in the store: the same numbers, no new records
    count = len(list((tmp_path / "evals").glob("*.json")))
    again = json.loads(cli(*argv).out)
    assert again["arms"] == result["arms"] and len(list((tmp_path / "evals").glob("*.json"))) == count
    runs = read_runs(tmp_path)
    assert result["cost"]["train_s"] == pytest.approx(sum(run.train_time_s for run in runs))
    assert result["cost"]["eval_s"] == pytest.approx(sum(e.seconds for e in evals.values()))
    assert result["cost"]["machines"] == [runs[0].machine] and "cores" in runs[0].machine
    assert cli("report", "--results-dir", str(tmp_path)).code == 0
    text = (tmp_path / "REPORT.md").read_text()
    # the overrides name the budget: its own section and files, never the smoke preset's
    label = "smoke+epochs=1+limit-train=256+limit-val=64"
    assert result["budget_label"] == label
    assert f"Ablation `lrn` (A, {label})" in text and "A-LRN - A" in text
    assert (tmp_path / "plots" / f"curves-lrn-A-{label}.png").exists()
    assert (tmp_path / "tables" / "ablation-lrn-a-smoke-epochs-1-limit-train-256-limit-val-64.tex").exists()


def test_a_center_crop_comparison_is_sized_for_the_papers_dense_gap():
    """The paper measured Tables 3-4 dense: a center-crop comparison of the same arms needs the
    seeds that would detect that gap (D - A: 27.0 - 29.6 = -2.6 points)."""
    from vggbench.ablations.sweep import _paper_gap

    spec = load_spec("depth")
    dense, _, center, _ = spec.comparisons
    assert (center.evaluation, center.treatment, center.baseline) == ("single scale, center crop", "D", "A")
    assert paper_difference(spec, center) is None
    assert _paper_gap(spec, center) == pytest.approx(-2.6) == _paper_gap(spec, dense)


def test_the_jitter_split_from_stored_evaluations_equals_the_hand_computation(tmp_path):
    """Stored runs of the jitter ablation and their evaluations (an error for each arm and test-scale
    set, paper units): the report's split of jitter - S=256 at each arm's own Q into the test scale's
    part (S=384 - S=256) and jittering's (jitter - S=384 at Q=384) is computed from those records."""
    from vggbench.report.tables import ablation_notes, scale_splits

    spec = load_spec("jitter")
    budget = Budget(data="synthetic", width=0.125, crop=32, epochs=2, batch=8, lr=0.01)
    # center-crop errors by arm and Q set, per seed: S=256 at 256, S=384 at 384, jitter at 384
    center = {
        ("D S=256", (256,)): [30.0, 31.0, 32.5],
        ("D S=384", (384,)): [20.0, 21.5, 21.0],
        ("D jitter", (384,)): [19.0, 20.0, 20.5],
        ("D S=256", (256, 384)): [26.0, 27.0, 28.0],
        ("D jitter", (256, 384)): [22.0, 23.0, 23.5],
    }

    def top1_of(arm: str, seed: int, qs: tuple, method: str) -> float:
        errors = center.get((arm, qs)) if method == "center" else None
        return errors[seed] if errors else 40.0 + seed

    _store_sweep(tmp_path, spec, budget, top1_of, net="D")
    record = analyse(spec, seeds=3, preset="smoke", budget=budget, results_dir=tmp_path)
    by_evaluation = {(c.baseline, c.treatment, c.evaluation): c for c in record.comparisons}
    scale_part = by_evaluation[("D S=256", "D S=384", "single scale, center crop")]
    training_part = by_evaluation[("D S=384", "D jitter", "center crop, Q=384")]
    like_for_like = by_evaluation[("D S=256", "D jitter", "multi-scale center crop, Q=256,384")]
    mean = statistics.fmean
    by_hand = {key: mean(values) for key, values in center.items()}
    assert scale_part.difference.top1 == pytest.approx(
        by_hand[("D S=384", (384,))] - by_hand[("D S=256", (256,))]
    )
    assert training_part.difference.top1 == pytest.approx(
        by_hand[("D jitter", (384,))] - by_hand[("D S=384", (384,))]
    )
    assert like_for_like.difference.top1 == pytest.approx(
        by_hand[("D jitter", (256, 384))] - by_hand[("D S=256", (256, 384))]
    )
    assert (scale_part.test_scales, training_part.test_scales) == ([[256], [384]], [[384], [384]])
    total = by_hand[("D jitter", (384,))] - by_hand[("D S=256", (256,))]  # -11.33: each arm at its own Q
    x, y = scale_part.difference.top1, training_part.difference.top1
    assert x + y == pytest.approx(total)
    assert scale_splits(record) == [
        f"D jitter - D S=256 at each arm's own Q splits into D S=384 - D S=256 (single scale, center crop, "
        f"Q 256 vs 384) {x:+.2f} and D jitter - D S=384 (center crop, Q=384, Q 384) {y:+.2f}: "
        f"{total:+.2f} points in all; the test scale's part is {x / total:.0%} of it"
    ]
    assert scale_splits(record)[0] in ablation_notes(record)
