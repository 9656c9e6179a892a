"""Typed specs: every key of an ablation spec is checked against its declared type and range
(spec.py's schema) when the spec is read, before anything trains; each error names the file, the
table, the key, the type expected and the value found (as TOML writes it, with its type)."""

# ruff: noqa: E501 -- each message is an exact oracle, kept whole on one line

from __future__ import annotations

import shutil

import pytest
from conftest import assert_one_line_error

from vggbench.ablations.spec import SPEC_DIR, load_spec
from vggbench.errors import VggbenchError

LRN = (SPEC_DIR / "lrn.toml").read_text()

# name -> (the lrn spec's text -> a bad spec, the whole error after "<folder>/")
BAD = {
    "margin-string": (
        lambda t: t.replace('expect = "no_better"\n', 'expect = "no_better"\nmargin = "big"\n', 1),
        'bad.toml: [[comparisons]] 1 margin: expected a number of at least 0, found "big" (a string); percentage points, e.g. 1.0',
    ),
    "choices-number": (
        lambda t: t.replace('choices = ["A"]', "choices = 5"),
        'bad.toml: choices: expected a list of strings, not empty, found 5 (a whole number); e.g. choices = ["D", "E"]',
    ),
    "choices-mixed": (
        lambda t: t.replace('choices = ["A"]', 'choices = ["A", 5]'),
        'bad.toml: choices: expected a list of strings, not empty, found ["A", 5] (a list whose item 2 is a whole number); e.g. choices = ["D", "E"]',
    ),
    "lr-string": (
        lambda t: t.replace('name = "A"\n', 'name = "A"\nlr = "fast"\n', 1),
        'bad.toml: [[arms]] 1 lr: expected a finite positive number, found "fast" (a string); the paper\'s is 0.01',
    ),
    "lr-inf": (
        lambda t: t.replace('name = "A"\n', 'name = "A"\nlr = inf\n', 1),
        "bad.toml: [[arms]] 1 lr: expected a finite positive number, found inf (not a finite number); the paper's is 0.01",
    ),
    "preset-epochs-string": (
        lambda t: t + '\n[presets.smoke]\nepochs = "2"\n',
        'bad.toml: [presets.smoke] epochs: expected a whole number of at least 1, found "2" (a string)',
    ),
    "title-empty": (
        lambda t: t.replace('title = "Does local response normalisation help? A vs A-LRN"', 'title = ""'),
        'bad.toml: title: expected a string, not empty, found "" (a string)',
    ),
    "net-unknown": (
        lambda t: t.replace('net = "A-LRN"\n', 'net = "Z"\n', 1),
        'bad.toml: [[arms]] 2 net: expected a net: A, A-LRN, B, C, D, E, B-5x5, found "Z" (a string)',
    ),
    "scale-bad": (
        lambda t: t.replace('scale = "256"\n', 'scale = "big"\n', 1),
        'bad.toml: [[arms]] 1 scale: expected a train scale such as "256" or "256:512", found "big" (a string)',
    ),
    "paper-table-5": (
        lambda t: t.replace(
            'paper = { table = 3, net = "A", scale = "256" }',
            'paper = { table = 5, net = "A", scale = "256" }',
        ),
        "bad.toml: [[arms]] 1 paper.table: expected 3 or 4 (Table 3 or 4), found 5 (a whole number)",
    ),
    "paper-missing-key": (
        lambda t: t.replace(
            'paper = { table = 3, net = "A", scale = "256" }', 'paper = { table = 3, net = "A" }'
        ),
        "bad.toml: [[arms]] 1: missing key 'paper.scale' (a string); add it",
    ),
    "method-unknown": (
        lambda t: t.replace('method = "dense"', 'method = "sparse"'),
        'bad.toml: [[evaluations]] 1 method: expected one of center, dense, multi-crop, multi-crop+dense, found "sparse" (a string)',
    ),
    "scales-number": (
        lambda t: t.replace('scales = "single"', "scales = 7", 1),
        "bad.toml: [[evaluations]] 1 scales: expected single, multi, jitter, or a list of paper-unit scales such as 224,256,288, found 7 (a whole number)",
    ),
    "expect-unknown": (
        lambda t: t.replace('expect = "no_better"', 'expect = "higher"', 1),
        'bad.toml: [[comparisons]] 1 expect: expected one of lower, no_better, similar, found "higher" (a string)',
    ),
    "margin-negative": (
        lambda t: t.replace('expect = "no_better"\n', 'expect = "no_better"\nmargin = -1.0\n', 1),
        "bad.toml: [[comparisons]] 1 margin: expected a number of at least 0, found -1.0 (a float); percentage points, e.g. 1.0",
    ),
    "preset-unknown": (
        lambda t: t + "\n[presets.fast]\nepochs = 2\n",
        "bad.toml: [presets.fast]: unknown preset 'fast'; name one of smoke, quick, gpu, paper",
    ),
    "presets-number": (
        lambda t: "presets = 5\n" + t,
        "bad.toml: presets: expected a table of tables, found 5 (a whole number); write each as a [presets.NAME] table, e.g. [presets.smoke]",
    ),
    "arm-duplicate": (
        lambda t: t.replace('name = "A-LRN"', 'name = "A"'),
        "bad.toml: [[arms]] 2 name: 'A' is also [[arms]] 1's; give each its own name",
    ),
    "default-not-choice": (
        lambda t: t.replace('choices = ["A"]', 'choices = ["A"]\ndefault = "B"'),
        'bad.toml: default: expected one of the choices (A), found "B" (a string)',
    ),
    "preinit-alone": (
        lambda t: t.replace('name = "A"\n', 'name = "A"\ninit = "preinit"\n', 1),
        'bad.toml: [[arms]] 1: init = "preinit" and preinit_from go together; set both or neither',
    ),
    "chain-string": (
        lambda t: 'chain = "yes"\n' + t,
        'bad.toml: chain: expected true or false, found "yes" (a string)',
    ),
    "eval-arms-empty": (
        lambda t: t.replace('method = "dense"', 'method = "dense"\narms = []'),
        "bad.toml: [[evaluations]] 1 arms: expected a list of strings, not empty, found [] (a list); name arms of the spec, or leave it out for every arm",
    ),
    "max-images-float": (
        lambda t: t.replace('method = "dense"', 'method = "dense"\nmax_images = 2.5'),
        "bad.toml: [[evaluations]] 1 max_images: expected a whole number of at least 1, found 2.5 (a float); e.g. 2000, or leave it out for the whole validation split",
    ),
    "preset-width-bool": (
        lambda t: t + "\n[presets.smoke]\nwidth = true\n",
        "bad.toml: [presets.smoke] width: expected a finite positive number, found true (a boolean); 1.0 is the paper's nets, 0.125 an eighth of their channels",
    ),
    "preset-crop-33": (
        lambda t: t + "\n[presets.smoke]\ncrop = 33\n",
        "bad.toml: [presets.smoke] crop: expected a multiple of 32 of at least 32, found 33 (a whole number); e.g. 32 or 224",
    ),
    "section-number": (
        lambda t: t.replace('section = "Section 4.1, Table 3"', "section = 4.1"),
        "bad.toml: section: expected a string, found 4.1 (a float)",
    ),
    "unknown-top-key": (
        lambda t: "seeds = 3\n" + t,
        "bad.toml: unknown key 'seeds'; allowed keys: arms, chain, choices, claim, comparisons, default, evaluations, paper_top1_gap, presets, section, title",
    ),
    "missing-claim": (
        lambda t: t.replace(
            'claim = "LRN does not improve the performance of A (A-LRN 29.7 vs A 29.6 top-1 error)."\n', ""
        ),
        "bad.toml: missing key 'claim' (a string, not empty); add it",
    ),
    "arm-missing-net": (
        lambda t: t.replace('net = "A-LRN"\n', "", 1),
        "bad.toml: [[arms]] 2: missing key 'net' (a net: A, A-LRN, B, C, D, E, B-5x5); add it",
    ),
    "arms-empty-table": (
        lambda t: "arms = {}\n" + t.split("[[arms]]")[0],
        "bad.toml: arms: expected an array of tables, not empty, found {} (a table); write each arm as an [[arms]] table",
    ),
}


def _spec(tmp_path, text):
    shutil.copy(SPEC_DIR / "presets.toml", tmp_path / "presets.toml")
    (tmp_path / "bad.toml").write_text(text)
    return tmp_path / "bad.toml"


@pytest.mark.parametrize("make, message", BAD.values(), ids=BAD.keys())
def test_each_spec_error_names_file_key_type_and_value(tmp_path, make, message):
    path = _spec(tmp_path, make(LRN))
    with pytest.raises(VggbenchError) as error:
        load_spec(str(path))
    assert str(error.value) == f"{tmp_path}/{message}"


def test_the_packaged_specs_pass_their_schema():
    for path in sorted(SPEC_DIR.glob("*.toml")):
        if path.name != "presets.toml":
            assert load_spec(str(path)).title


def test_a_mistyped_spec_stops_ablate_before_any_run(cli, tmp_path):
    path = _spec(tmp_path, BAD["margin-string"][0](LRN))
    store = tmp_path / "store"
    result = cli("ablate", str(path), "--preset", "smoke", "--seeds", "1", "--results-dir", str(store))
    assert_one_line_error(result, BAD["margin-string"][1])
    assert not (store / "runs").exists() and not (store / "checkpoints").exists()
