"""Ablation specs, statistics over seeds, verdicts, shards, and the report's cells."""

import json
import math

import pytest
from conftest import assert_one_line_error

from vggbench import ablations, report
from vggbench.ablations import Difference, difference, load_spec, parse_shard, sweep, verdict
from vggbench.errors import VggbenchError
from vggbench.store import read_records

ALL = ["conv1x1", "conv5x5", "depth", "init", "jitter", "lrn"]


def test_every_paper_ablation_has_a_spec_that_loads():
    assert ablations.available_ablations() == ALL
    for name in ALL:
        spec = load_spec(name)
        assert spec.comparisons and spec.evaluations and len(spec.arms) >= 2


def test_paper_differences_come_from_the_paper_tables():
    assert ablations.paper_difference(load_spec("lrn"), load_spec("lrn").comparisons[0]) == pytest.approx(0.1)
    conv1x1 = load_spec("conv1x1")
    dense = [c for c in conv1x1.comparisons if c.evaluation.endswith("dense")]
    assert [ablations.paper_difference(conv1x1, c) for c in dense] == pytest.approx([-1.1, -1.7])
    # Tables 3 and 4 are dense evaluation: a center-crop comparison has no paper number beside it
    center = [c for c in conv1x1.comparisons if c.evaluation.endswith("center crop")]
    assert len(center) == 2 and [ablations.paper_difference(conv1x1, c) for c in center] == [None, None]
    jitter = load_spec("jitter", "E")
    # single scale: E jitter 25.5 - E S=256 27.3; multi-scale (Table 4): 24.8 - 26.7 (S=384)
    assert [ablations.paper_difference(jitter, c) for c in jitter.comparisons[:2]] == pytest.approx(
        [-1.8, -1.9]
    )
    assert ablations.paper_difference(load_spec("conv5x5"), load_spec("conv5x5").comparisons[0]) == -7.0


def test_config_fills_the_template_and_is_checked():
    spec = load_spec("jitter", "c")
    assert [a.name for a in spec.arms] == ["C S=256", "C S=384", "C jitter"] and spec.config == "C"
    assert load_spec("jitter").config == "D"
    with pytest.raises(VggbenchError, match="cannot use --config A; choose one of C, D, E"):
        load_spec("jitter", "A")


def test_paired_interval_by_hand():
    # deltas -1, -1.5, -1: mean -7/6, sd 0.288675; t(0.975, 2) = 4.302653
    diff = difference({0: 10.0, 1: 11.0, 2: 12.0}, {0: 9.0, 1: 9.5, 2: 11.0})
    half = 4.302652729749462 * 0.28867513459481287 / math.sqrt(3)
    assert diff.paired and diff.n == 3
    assert diff.top1 == pytest.approx(-7 / 6)
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
    text = (ablations.SPEC_DIR / "lrn.toml").read_text().replace("evaluation = ", "evalution = ")
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(VggbenchError, match=r"bad.toml: unknown key 'evalution' in comparisons\[0\]"):
        load_spec(str(tmp_path / "bad.toml"))
    (tmp_path / "missing.toml").write_text(text.replace("claim = ", "claims = "))
    with pytest.raises(VggbenchError, match="unknown key 'claims'"):
        load_spec(str(tmp_path / "missing.toml"))


def test_preset_budget_layers_presets_spec_and_overrides():
    budget = ablations.preset_budget(load_spec("lrn"), "quick", {"epochs": 9, "width": None})
    assert budget["data"] == "fashion-mnist" and budget["epochs"] == 9 and budget["width"] == 0.125
    with pytest.raises(VggbenchError, match="smoke, quick, paper"):
        ablations.preset_budget(load_spec("lrn"), "huge")


KNOWN = {
    "kind": "ablation",
    "ablation": "lrn",
    "title": "LRN",
    "section": "4.1",
    "claim": "LRN does not help.",
    "config": "A",
    "preset": "smoke",
    "seeds": 2,
    "runs_found": 4,
    "runs_expected": 4,
    "budget": {
        "data": "synthetic",
        "width": 0.0625,
        "crop": 32,
        "epochs": 2,
        "batch": 64,
        "lr": 0.01,
        "limit_train": 512,
        "limit_val": 128,
    },
    "arms": [
        {
            "name": "A",
            "config": "A",
            "evaluation": "dense",
            "seeds": [0, 1],
            "top1_mean": 20.0,
            "top1_std": 1.0,
            "top5_mean": 5.0,
            "top5_std": 0.5,
            "paper_top1": 29.6,
            "paper_top5": 10.4,
            "init": {"scheme": "glorot"},
            "curves": [],
            "macs_per_image": 1,
        },
        {
            "name": "A-LRN",
            "config": "A-LRN",
            "evaluation": "dense",
            "seeds": [0, 1],
            "top1_mean": 21.5,
            "top1_std": None,
            "top5_mean": 6.0,
            "top5_std": 0.0,
            "paper_top1": 29.7,
            "paper_top5": 10.5,
            "init": {"scheme": "glorot"},
            "curves": [],
            "macs_per_image": 1,
        },
    ],
    "comparisons": [
        {
            "baseline": "A",
            "treatment": "A-LRN",
            "evaluation": "dense",
            "expect": "no_better",
            "top1": 1.5,
            "ci95_low": -0.25,
            "ci95_high": 3.25,
            "paper_top1": 0.1,
            "verdict": "consistent",
        }
    ],
}


def test_known_record_gives_known_cells():
    arms = report.ablation_arms_frame(KNOWN)
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
    row = report.ablation_comparisons_frame(KNOWN).iloc[0].to_dict()
    assert row == {
        "comparison": "A-LRN - A",
        "evaluation": "dense",
        "paper expects": "no better",
        "ours (points)": 1.5,
        "95% CI": "[-0.25, +3.25]",
        "paper (points)": 0.1,
        "verdict": "consistent",
    }
    line = report.ablation_budget_line(KNOWN)
    assert "synthetic, width 0.0625, crop 32, 2 epochs" in line and "init glorot" in line


def test_notes_count_stalled_runs_and_the_dense_windows_of_a_small_crop():
    dense_arm = {**KNOWN["arms"][1], "method": "dense", "stalled_seeds": [1]}
    record = {**KNOWN, "arms": [KNOWN["arms"][0], dense_arm]}
    stalled, geometry = report.ablation_notes(record)
    assert stalled.startswith("arm 'A-LRN': seed(s) 1 stayed at chance error")
    # crop 32: Q=256 is 37 px, floor(37/32) = 1 cell, 1 - 1 + 1 = 1 window position
    assert (
        "at crop 32, dense evaluation at Q=256 (37 px) has a 1x1 score map, 1x1 window position(s)"
        in geometry
    )
    assert report.ablation_arms_frame(record).iloc[1]["stalled"] == 1
    at_224 = {**record, "budget": {**KNOWN["budget"], "crop": 224}, "arms": [KNOWN["arms"][0]]}
    assert report.ablation_notes(at_224) == []
    # crop 64: Q=256 is 73 px, 2 cells, 2 - 2 + 1 = 1 position
    at_64 = {**record, "budget": {**KNOWN["budget"], "crop": 64}, "arms": [dense_arm]}
    assert "(73 px) has a 2x2 score map, 1x1 window" in report.ablation_notes(at_64)[1]


def test_budget_line_names_the_preinit_layers_the_machine_and_the_time():
    preinit = {
        "scheme": "preinit (rest kaiming)",
        "std": None,
        "preinit_from": "0123abcd",
        "preinit_mapping": "stage",
        "copied_layers": ["features.0", "classifier.6"],
    }
    record = {
        **KNOWN,
        "arms": [KNOWN["arms"][0], {**KNOWN["arms"][1], "init": preinit}],
        "cost": {"train_s": 90.0, "eval_s": 30.0, "machines": ["AMD EPYC 7B13, 2 cores, 2 torch threads"]},
    }
    line = report.ablation_budget_line(record)
    assert "init glorot, preinit (rest kaiming)" in line
    assert "pre-init (mapping stage) copied 2 layers: features.0, classifier.6" in line
    assert line.endswith(
        "trained for 1.5 min and evaluated in 0.5 min on AMD EPYC 7B13, 2 cores, 2 torch threads"
    )


def test_report_renders_known_ablation_record(tmp_path):
    from vggbench.store import write_record

    write_record(tmp_path, "ablations", "known", KNOWN)
    paths = report.write_report(tmp_path, tmp_path, plots=True)
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


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["nope"], ["unknown ablation 'nope'", "lrn"]),
        (["lrn", "--config", "D"], ["cannot use --config D", "A"]),
        (["lrn", "--seeds", "0"], ["--seeds 0"]),
        (["lrn", "--shard", "3/2"], ["bad shard '3/2'"]),
        (["lrn", "--preset", "huge"], ["unknown preset 'huge'"]),
    ],
)
def test_ablate_bad_input(cli, argv, fragments, tmp_path):
    assert_one_line_error(cli("ablate", *argv, "--results-dir", str(tmp_path)), *fragments)


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
    evals = {(r["runs"][0], r["method"]): r for r in read_records(tmp_path, "evals")}
    expected = difference(
        {s: evals[base[s], "dense"]["top1_err"] for s in base},
        {s: evals[treat[s], "dense"]["top1_err"] for s in treat},
    )
    assert result["difference"]["top1"] == pytest.approx(expected.top1)
    assert [c["evaluation"] for c in result["comparisons"]] == [dense, center]
    assert result["comparisons"][1]["paper_top1"] is None  # the paper's Table 3 is dense evaluation
    assert result["paper"]["top1_difference"] == pytest.approx(0.1)
    # a second call finds every run and evaluation in the store: the same numbers, no new records
    count = len(list((tmp_path / "evals").glob("*.json")))
    again = json.loads(cli(*argv).out)
    assert again["arms"] == result["arms"] and len(list((tmp_path / "evals").glob("*.json"))) == count
    runs = read_records(tmp_path, "runs")
    assert result["cost"]["train_s"] == pytest.approx(sum(run["train_time_s"] for run in runs))
    assert result["cost"]["eval_s"] == pytest.approx(sum(e["seconds"] for e in evals.values()))
    assert result["cost"]["machines"] == [runs[0]["machine"]] and "cores" in runs[0]["machine"]
    assert cli("report", "--results-dir", str(tmp_path)).code == 0
    text = (tmp_path / "REPORT.md").read_text()
    assert "Ablation `lrn` (A, smoke)" in text and "A-LRN - A" in text
    assert (tmp_path / "plots" / "curves-lrn-A-smoke.png").exists()
