"""Ablation spec keys: the paper's fine-tuning chains and their budget, arms' LRN alpha and input
range, evaluations on a stratified subset and for some arms only (Table 5), and the bad values."""

import dataclasses
import json
import shutil

import pytest
import torch
from conftest import assert_one_line_error

from vggbench import paper, scales
from vggbench.ablations.spec import CHAIN, FROM_SCRATCH, SPEC_DIR, load_spec, preset_budget
from vggbench.ablations.stats import read_ablations
from vggbench.ablations.sweep import analyse, train_config
from vggbench.data import stratified_subset
from vggbench.errors import VggbenchError
from vggbench.evaluate.records import EVAL_SUBSET_SEED
from vggbench.evaluate.sources import load_data
from vggbench.store import read_evals, read_run, read_runs


def _configs(spec, budget, seed=0):
    """Each arm's TrainConfig, chained as run_ablation chains them, with one data fingerprint given
    (the presets' cifar10 and ImageNet files are not here to fingerprint)."""
    run_ids, configs = {}, {}
    for arm in spec.arms:
        config = dataclasses.replace(train_config(arm, seed, budget, run_ids), data_fingerprint="the files")
        run_ids[(arm.name, seed)], configs[arm.name] = config.run_id, config
    return configs


def _spec_dir(tmp_path):
    """A spec folder holding the shipped presets (a spec file's presets come from its folder)."""
    shutil.copy(SPEC_DIR / "presets.toml", tmp_path / "presets.toml")
    return tmp_path


def test_jitter_chains_as_the_paper_by_default():
    spec = load_spec("jitter")
    assert [(a.name, a.init_from) for a in spec.arms] == [
        ("D S=256", None),
        ("D S=384", "D S=256"),
        ("D jitter", "D S=384"),
    ]
    assert spec.chain and spec.design == CHAIN


def test_conv1x1_has_s384_arms_and_chains_its_jitter_arms_through_them():
    spec = load_spec("conv1x1")
    assert [(a.name, a.scale, a.init_from) for a in spec.arms] == [
        ("C S=256", "256", None),
        ("D S=256", "256", None),
        ("C S=384", "384", "C S=256"),
        ("D S=384", "384", "D S=256"),
        ("C jitter", "256:512", "C S=384"),
        ("D jitter", "256:512", "D S=384"),
    ]
    dense = spec.evaluation("single scale, dense")
    # Table 3's C/384 and D/384 rows
    assert [
        (r.table, r.top1, r.top5) for r in (spec.arm(n).paper_result(dense) for n in ("C S=384", "D S=384"))
    ] == [
        (3, 28.1, 9.3),
        (3, 26.8, 8.7),
    ]


@pytest.mark.parametrize("preset", ["smoke", "quick", "gpu", "paper"])
def test_conv1x1_and_jitter_share_ds_runs(preset):
    jitter, conv1x1 = load_spec("jitter", "D"), load_spec("conv1x1")
    a = _configs(jitter, preset_budget(jitter, preset))
    b = _configs(conv1x1, preset_budget(conv1x1, preset))
    for name in ("D S=256", "D S=384", "D jitter"):
        assert a[name] == b[name] and a[name].run_id == b[name].run_id


def test_budget_fine_tuning_defaults_are_lr_over_10_and_the_epochs():
    quick = preset_budget(load_spec("jitter"), "quick")  # lr 0.005, a cap of 40 epochs
    assert (quick.finetune_lr, quick.finetune_epochs, quick.design) == (0.0005, 40, CHAIN)
    full = preset_budget(load_spec("jitter"), "paper")
    assert (full.lr, full.finetune_lr, full.finetune_epochs) == (0.01, 0.001, 74)
    assert full.finetune_lr == paper.FINETUNE_LEARNING_RATE
    # the default follows an overridden lr and epochs; explicit values win
    moved = preset_budget(load_spec("jitter"), "quick", {"lr": 0.02, "epochs": 3})
    assert (moved.finetune_lr, moved.finetune_epochs) == (0.002, 3)
    own = preset_budget(load_spec("jitter"), "quick", {"finetune_lr": 0.0001, "finetune_epochs": 2})
    assert (own.lr, own.epochs, own.finetune_lr, own.finetune_epochs) == (0.005, 40, 0.0001, 2)
    # an ablation without a chain is from scratch
    assert preset_budget(load_spec("lrn"), "quick").design == FROM_SCRATCH


def test_a_fine_tuned_arm_trains_at_the_finetune_lr_and_epochs_from_its_source():
    spec = load_spec("jitter")
    budget = preset_budget(spec, "quick", {"finetune_epochs": 2})
    configs = _configs(spec, budget)
    s256, s384, jit = configs["D S=256"], configs["D S=384"], configs["D jitter"]
    assert (s256.lr, s256.epochs, s256.init_from) == (0.005, 40, None)
    assert (s384.lr, s384.epochs, s384.init_from, s384.scale) == (0.0005, 2, s256.run_id, "384")
    assert (jit.lr, jit.epochs, jit.init_from, jit.scale) == (0.0005, 2, s384.run_id, "256:512")
    # seed 1 chains to seed 1's runs
    seed1 = _configs(spec, budget, seed=1)
    assert seed1["D S=384"].init_from == seed1["D S=256"].run_id != s256.run_id


def test_an_arms_own_lr_beats_the_finetune_lr(tmp_path):
    text = (SPEC_DIR / "jitter.toml").read_text()
    text = text.replace('init_from = "{net} S=256"\n', 'init_from = "{net} S=256"\nlr = 0.0025\n')
    (_spec_dir(tmp_path) / "own.toml").write_text(text)
    spec = load_spec(str(tmp_path / "own.toml"))
    configs = _configs(spec, preset_budget(spec, "quick"))
    assert (configs["D S=384"].lr, configs["D jitter"].lr) == (0.0025, 0.0005)


def test_from_scratch_drops_the_chain_and_gets_other_runs(tmp_path, generated_fashion_mnist):
    # the quick preset's runs are on Fashion-MNIST: its ids need the files, not the real images
    chained, scratch = load_spec("jitter"), load_spec("jitter", chain=False)
    assert [a.init_from for a in scratch.arms] == [None, None, None]
    assert not scratch.chain and scratch.design == FROM_SCRATCH
    budget = preset_budget(scratch, "quick", {"finetune_epochs": 2, "finetune_lr": 0.0001})
    assert budget.design == FROM_SCRATCH
    a, b = _configs(chained, preset_budget(chained, "quick")), _configs(scratch, budget)
    # every arm from scratch at the budget's lr and epochs: S=256 is the same run, the others are not
    assert [(c.lr, c.epochs, c.init_from) for c in b.values()] == [(0.005, 40, None)] * 3
    assert a["D S=256"].run_id == b["D S=256"].run_id
    assert a["D S=384"].run_id != b["D S=384"].run_id and a["D jitter"].run_id != b["D jitter"].run_id
    # the spec's own key does the same, and an explicit chain=True overrides it
    text = "chain = false\n" + (SPEC_DIR / "jitter.toml").read_text()
    (_spec_dir(tmp_path) / "scratch.toml").write_text(text)
    assert [a.init_from for a in load_spec(str(tmp_path / "scratch.toml")).arms] == [None, None, None]
    assert load_spec(str(tmp_path / "scratch.toml"), chain=True).design == CHAIN
    # the ablation records of the two designs differ and say which they are
    one = analyse(
        chained, seeds=1, preset="quick", budget=preset_budget(chained, "quick"), results_dir=tmp_path
    )
    two = analyse(
        scratch, seeds=1, preset="quick", budget=preset_budget(scratch, "quick"), results_dir=tmp_path
    )
    assert one.id != two.id and (one.budget.design, two.budget.design) == (CHAIN, FROM_SCRATCH)
    assert sorted(r.budget.design for r in read_ablations(tmp_path)) == [CHAIN, FROM_SCRATCH]


def test_arms_and_presets_set_lrn_alpha_and_input_range(tmp_path):
    text = (SPEC_DIR / "lrn.toml").read_text()
    text = text.replace('name = "A-LRN"\n', 'name = "A-LRN"\nlrn_alpha = 0.002\ninput_range = "0-1"\n')
    (_spec_dir(tmp_path) / "alpha.toml").write_text(text)
    spec = load_spec(str(tmp_path / "alpha.toml"))
    configs = _configs(spec, preset_budget(spec, "smoke"))
    assert (configs["A-LRN"].lrn_alpha, configs["A-LRN"].input_range) == (0.002, "0-1")
    assert (configs["A"].lrn_alpha, configs["A"].input_range) == (paper.LRN_ALPHA, paper.INPUT_RANGE)
    assert (
        configs["A-LRN"].run_id
        != _configs(load_spec("lrn"), preset_budget(load_spec("lrn"), "smoke"))["A-LRN"].run_id
    )
    # a preset's input range is every arm's that sets none
    text += '\n[presets.smoke]\ninput_range = "0-1"\n'
    (tmp_path / "range.toml").write_text(text.replace('input_range = "0-1"\nlrn_alpha', "lrn_alpha"))
    spec = load_spec(str(tmp_path / "range.toml"))
    assert preset_budget(spec, "smoke").input_range == "0-1"
    assert {c.input_range for c in _configs(spec, preset_budget(spec, "smoke")).values()} == {"0-1"}


@pytest.mark.parametrize("net, top5", [("D", (7.5, 7.5, 7.2)), ("E", (7.5, 7.4, 7.1))])
def test_jitter_fills_table5_for_the_jitter_arm_on_2000_images(net, top5):
    spec = load_spec("jitter", net)
    table5 = [e for e in spec.evaluations if e.scales == "jitter"]
    assert [(e.method, e.max_images, e.arms) for e in table5] == [
        ("dense", 2000, (f"{net} jitter",)),
        ("multi-crop", 2000, (f"{net} jitter",)),
        ("multi-crop+dense", 2000, (f"{net} jitter",)),
    ]
    assert scales.test_scales("jitter", scales.TrainScale(256, 512)) == (
        256,
        384,
        512,
    )  # 3 scales x 50 crops = 150
    assert paper.CROPS_PER_SCALE * 3 == 150
    for e in table5:
        assert [a.name for a in spec.arms if e.applies_to(a.name)] == [f"{net} jitter"]
    rows = [spec.arm(f"{net} jitter").paper_result(e) for e in table5]
    assert [(r.table, r.test_scales, r.top1, r.top5) for r in rows] == [
        (5, (256, 384, 512), t1, t5) for t1, t5 in zip((24.8, 24.6, 24.4), top5)
    ]
    # every other evaluation covers every arm
    assert all(e.arms is None for e in spec.evaluations if e.scales != "jitter")


def _bad(tmp_path, name, old, new, count=1):
    text = (SPEC_DIR / f"{name}.toml").read_text()
    assert old in text, old
    path = _spec_dir(tmp_path) / "bad.toml"
    path.write_text(text.replace(old, new, count))
    return str(path)


def _append(tmp_path, name, extra):
    path = _spec_dir(tmp_path) / "bad.toml"
    path.write_text((SPEC_DIR / f"{name}.toml").read_text() + extra)
    return str(path)


BAD_SPECS = [
    (
        lambda t: _bad(t, "lrn", 'name = "A-LRN"\n', 'name = "A-LRN"\nlrn_alpha = 0\n'),
        [
            "bad.toml: [[arms]] 2 lrn_alpha: expected a finite positive number, found 0 (a whole number)",
            "0.0001",
        ],
    ),
    (
        lambda t: _bad(t, "lrn", 'name = "A-LRN"\n', 'name = "A-LRN"\nlrn_alpha = -1e-4\n'),
        ["[[arms]] 2 lrn_alpha: expected a finite positive number, found -0.0001 (a float)"],
    ),
    (
        lambda t: _bad(t, "lrn", 'name = "A"\n', 'name = "A"\ninit = "paper"\ninit_std = 0.0\n'),
        [
            "bad.toml: [[arms]] 1 init_std: expected a finite positive number, found 0.0 (a float)",
            "; the paper's is 0.01",
        ],
    ),
    (
        lambda t: _append(t, "lrn", "\n[presets.smoke]\ninit_std = -0.01\n"),
        ["bad.toml: [presets.smoke] init_std: expected a finite positive number, found -0.01 (a float)"],
    ),
    (
        lambda t: _bad(t, "jitter", 'init_from = "{net} S=256"', 'init_from = "{net} S=128"'),
        ["bad.toml: arm 'D S=384' starts from 'D S=128', which is not an arm of this spec", "'D S=256'"],
    ),
    (
        lambda t: _bad(t, "jitter", 'scale = "256"\n', 'scale = "256"\ninit_from = "{net} jitter"\n'),
        [
            "arm 'D S=256' starts from 'D jitter', which is not an earlier arm",
            "move 'D jitter' above 'D S=256'",
        ],
    ),
    (
        lambda t: _append(t, "jitter", "\n[presets.quick]\nfinetune_lr = 0\n"),
        [
            "bad.toml: [presets.quick] finetune_lr: expected a finite positive number, found 0 (a whole",
            "1e-3",
        ],
    ),
    (
        lambda t: _append(t, "jitter", "\n[presets.quick]\nfinetune_lr = -0.001\n"),
        ["[presets.quick] finetune_lr: expected a finite positive number, found -0.001 (a float)"],
    ),
    (
        lambda t: _append(t, "jitter", "\n[presets.quick]\nfinetune_epochs = 0\n"),
        [
            "bad.toml: [presets.quick] finetune_epochs: expected a whole number of at least 1, found 0 (a",
        ],
    ),
    (
        lambda t: _bad(t, "lrn", 'name = "A"\n', 'name = "A"\ninput_range = "0-256"\n'),
        ['bad.toml: [[arms]] 1 input_range: expected one of 0-255, 0-1, found "0-256" (a string)'],
    ),
    (
        lambda t: _append(t, "lrn", '\n[presets.smoke]\ninput_range = "255"\n'),
        ['[presets.smoke] input_range: expected one of 0-255, 0-1, found "255" (a string)'],
    ),
    (
        lambda t: _bad(t, "jitter", "max_images = 2000", "max_images = 0"),
        [
            "bad.toml: [[evaluations]] 4 max_images: expected a whole number of at least 1, found 0 (a",
        ],
    ),
    (
        lambda t: _bad(t, "jitter", 'arms = ["{net} jitter"]', 'arms = ["{net} S=512"]'),
        ["bad.toml: [[evaluations]] 4 evaluates arm 'D S=512', which the spec does not define"],
    ),
    (
        lambda t: _bad(
            t, "jitter", 'evaluation = "single scale, dense"', 'evaluation = "Table 5: dense, jitter scales"'
        ),
        [
            "[[comparisons]] 1 compares arm 'D S=256' under evaluation 'Table 5: dense, jitter scales'",
            "add 'D S=256'",
        ],
    ),
    (
        lambda t: str(_write(t, 'chain = "no"\n' + (SPEC_DIR / "jitter.toml").read_text())),
        ['bad.toml: chain: expected true or false, found "no" (a string)'],
    ),
    (
        lambda t: _append(t, "lrn", "\n[presets.quick]\nmax_lr_decreases = 0\n"),
        ["preset 'quick'", "bad.toml's [presets.quick]) asks for stop = 'schedule' with a fixed lr"],
    ),
    (
        lambda t: _append(t, "lrn", "\n[presets.quick]\nepochs = 1\n"),
        ["epoch cap 1 is below the patience 2", "raise epochs"],
    ),
    (
        lambda t: _append(t, "lrn", "\n[presets.quick]\npatience = 0\n"),
        ["bad.toml: [presets.quick] patience: expected a whole number of epochs of at least 1, found 0"],
    ),
    (
        lambda t: _append(t, "lrn", '\n[presets.quick]\nstop = "plateau"\n'),
        ['[presets.quick] stop: expected one of epochs, schedule, found "plateau" (a string)'],
    ),
]


def _write(tmp_path, text, name="bad"):
    path = _spec_dir(tmp_path) / f"{name}.toml"
    path.write_text(text)
    return path


BAD_SPEC_IDS = [
    "lrn-alpha-0",
    "lrn-alpha-negative",
    "arm-init-std-0",
    "preset-init-std-negative",
    "chain-source-not-an-arm",
    "chain-source-below",
    "finetune-lr-0",
    "finetune-lr-negative",
    "finetune-epochs-0",
    "arm-input-range",
    "preset-input-range",
    "max-images-0",
    "evaluation-arms-unknown",
    "comparison-outside-evaluation-arms",
    "chain-not-bool",
    "preset-schedule-with-fixed-lr",
    "preset-cap-below-patience",
    "preset-patience-0",
    "preset-stop-unknown",
]


@pytest.mark.parametrize("make, fragments", BAD_SPECS, ids=BAD_SPEC_IDS)
def test_bad_spec_values_are_one_line_errors_exit_2(cli, tmp_path, make, fragments):
    path = make(tmp_path)
    assert_one_line_error(cli("ablate", path, "--results-dir", str(tmp_path)), *fragments)


@pytest.mark.slow
def test_a_chained_sweep_prints_its_chain_and_evaluates_a_subset_for_one_arm(cli, tmp_path):
    """A tiny chain (A at S=256, then fine-tuned at S=384) with a subset evaluation of one arm."""
    spec = """
title = "chain"
claim = "a chain"
choices = ["A"]

[[arms]]
name = "A S=256"
net = "A"
scale = "256"

[[arms]]
name = "A S=384"
net = "A"
scale = "384"
init_from = "A S=256"

[[evaluations]]
name = "center"
method = "center"
scales = "single"

[[evaluations]]
name = "center, 10 images"
method = "center"
scales = "single"
max_images = 10
arms = ["A S=384"]

[[comparisons]]
baseline = "A S=256"
treatment = "A S=384"
evaluation = "center"
expect = "lower"
test_scale_in_treatment = true  # each at its own Q
"""
    path = _write(tmp_path, spec, "chain")
    results = tmp_path / "results"
    argv = ["ablate", str(path), "--preset", "smoke", "--seeds", "1", "--epochs", "1"]
    argv += ["--limit-train", "64", "--limit-val", "32", "--results-dir", str(results), "--format", "json"]
    result = cli(*argv)
    assert result.code == 0, result.err
    record = json.loads(result.out)
    runs = {run.train_scale: run for run in read_runs(results)}
    source, tuned = runs["256"], runs["384"]
    assert (
        f"chain: arm 'A S=384', seed 0: fine-tunes run {source.id} (A S=256) at lr 0.0005 for 1 epochs"
        in (result.err.splitlines())
    )
    assert (tuned.init_from, tuned.config["lr"], source.config["lr"]) == (source.id, 0.0005, 0.005)
    assert record["budget"]["design"] == CHAIN and record["budget"]["finetune_lr"] == 0.0005
    assert [(a["name"], a["evaluation"]) for a in record["arms"]] == [
        ("A S=256", "center"),
        ("A S=384", "center"),
        ("A S=384", "center, 10 images"),
    ]
    evals = read_evals(results)
    subset = [e for e in evals if e.limits.max_images is not None]
    assert [(e.runs, e.images, e.limits.max_images) for e in subset] == [([tuned.id], 10, 10)]
    labels = load_data(read_run(results, tuned.id).data, 32).val.labels
    chosen = labels[stratified_subset(labels, 10, EVAL_SUBSET_SEED)]
    assert subset[0].class_counts == torch.bincount(chosen, minlength=len(tuned.classes)).tolist()
    assert sum(subset[0].class_counts) == 10 and len(evals) == 3
    # from scratch: the S=384 arm is another run, at the budget's lr, and the record says so
    scratch = cli(*argv[:-2], "--from-scratch", "--format", "table", "--quiet")
    assert scratch.code == 0, scratch.err
    assert "design: from scratch" in scratch.out
    again = {run.id: run for run in read_runs(results) if run.train_scale == "384" and run.id != tuned.id}
    assert len(again) == 1 and next(iter(again.values())).init_from is None
    assert sorted(r.budget.design for r in read_ablations(results)) == [CHAIN, FROM_SCRATCH]


# --- Like for like: the same test images in pixels, unless the spec says otherwise ----------------


def test_the_jitter_spec_compares_like_for_like_and_says_where_q_is_the_treatment():
    spec = load_spec("jitter")
    by_evaluation = {c.evaluation: c for c in spec.comparisons if c.treatment == "D jitter"}
    # Table 3's and 4's rule, as the paper uses it with dense: Q differs by design
    assert by_evaluation["single scale, dense"].test_scale_in_treatment
    assert by_evaluation["multi-scale, dense"].test_scale_in_treatment
    # at a center crop jittering is measured at one Q (or one Q set) for both arms
    assert not by_evaluation["center crop, Q=384"].test_scale_in_treatment
    assert not by_evaluation["multi-scale center crop, Q=256,384"].test_scale_in_treatment
    arms = {a.name: a for a in spec.arms}
    from vggbench.ablations.spec import comparison_scales

    scales_of = {
        c.evaluation: comparison_scales(c, spec.evaluation(c.evaluation), arms) for c in spec.comparisons
    }
    assert scales_of["center crop, Q=384"] == [(384,), (384,)]
    assert scales_of["multi-scale center crop, Q=256,384"] == [(256, 384), (256, 384)]
    assert scales_of["single scale, center crop"] == [(256,), (384,)]  # S=256 vs S=384, flagged
    assert scales_of["single scale, dense"] == [(256,), (384,)]  # S=256 vs jitter's 0.5(256 + 512)
    for c in spec.comparisons:
        assert (scales_of[c.evaluation][0] != scales_of[c.evaluation][1]) == c.test_scale_in_treatment


def _with_comparison(tmp_path, comparison: str) -> str:
    text = (SPEC_DIR / "jitter.toml").read_text() + "\n[[comparisons]]\n" + comparison
    path = _spec_dir(tmp_path) / "mine.toml"
    path.write_text(text)
    return str(path)


def test_a_comparison_at_different_test_scales_without_the_flag_is_a_spec_error(tmp_path, cli):
    path = _with_comparison(
        tmp_path,
        'baseline = "{net} S=256"\ntreatment = "{net} jitter"\nevaluation = "single scale, center crop"\n'
        'expect = "lower"\n',
    )
    with pytest.raises(VggbenchError) as error:
        load_spec(path)
    assert str(error.value) == (
        f"{path}: [[comparisons]] 6 tests 'D S=256' and 'D jitter' at different scales Q under "
        "'single scale, center crop' (256 vs 384): compare them at the same Q (an evaluation with scales "
        'such as "384"), or set test_scale_in_treatment = true where the test scale is part of the '
        "treatment (as Table 3's Q rule with dense evaluation)"
    )
    result = cli("ablate", path, "--preset", "smoke", "--results-dir", str(tmp_path / "store"))
    assert_one_line_error(result, "at different scales Q", "test_scale_in_treatment = true")
    assert not (tmp_path / "store").exists()
    (tmp_path / "ok").mkdir()
    flagged = _with_comparison(
        tmp_path / "ok",
        'baseline = "{net} S=256"\ntreatment = "{net} jitter"\nevaluation = "single scale, center crop"\n'
        'expect = "lower"\ntest_scale_in_treatment = true\n',
    )
    assert load_spec(flagged).comparisons[-1].test_scale_in_treatment


@pytest.mark.parametrize(
    "comparison, fragment",
    [
        (
            'baseline = "{net} S=256"\ntreatment = "{net} S=256"\nevaluation = "single scale, dense"\n'
            'expect = "lower"\n',
            "[[comparisons]] 6 compares arm 'D S=256' with itself; name two arms",
        ),
        (
            'baseline = "{net} S=256"\ntreatment = "{net} jitter"\nevaluation = "single scale, dense"\n'
            'expect = "lower"\ntest_scale_in_treatment = "yes"\n',
            'test_scale_in_treatment: expected true or false, found "yes"',
        ),
    ],
)
def test_bad_comparisons_are_spec_errors(tmp_path, comparison, fragment):
    path = _with_comparison(tmp_path, comparison)
    with pytest.raises(VggbenchError, match=None) as error:
        load_spec(path)
    assert fragment in str(error.value) and "\n" not in str(error.value)
