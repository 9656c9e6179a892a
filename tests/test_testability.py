"""What a budget can test (ablations/testability.py): the kinds of claim, and the reasons."""

from __future__ import annotations

import pytest

from vggbench.ablations.testability import (
    DENSE,
    NO_SCALE_VARIATION,
    SCALE,
    claim_kinds,
    not_testable,
    untestable_reason,
)

DENSE_REASON = (
    "crop 32 px: below 128 px dense evaluation's score map is a few windows reaching past the "
    "image into zero padding, not the paper's protocol (read the center crop or multi-crop instead)"
)


@pytest.mark.parametrize(
    "scales, method, kinds",
    [
        (["256", "256"], "center", set()),
        (["256", "256"], "multi-crop", set()),
        (["256", "256"], "dense", {DENSE}),
        (["256", "256"], "multi-crop+dense", {DENSE}),
        (["256", "384"], "center", {SCALE}),
        (["256", "256:512"], "dense", {SCALE, DENSE}),
    ],
)
def test_the_kinds_of_claim_a_comparison_makes(scales, method, kinds):
    assert claim_kinds(scales, method) == kinds


@pytest.mark.parametrize(
    "kinds, data, crop, reason",
    [
        (set(), "fashion-mnist", 32, None),
        ({DENSE}, "imagefolder:/data/imagenette", 128, None),  # the paper's geometry at 1/1.75 scale
        ({DENSE}, "synthetic", 127, DENSE_REASON.replace("crop 32", "crop 127")),
        ({DENSE}, "synthetic", 32, DENSE_REASON),
        ({SCALE}, "synthetic", 32, None),  # its shapes vary in size (12% to 40% of the side)
        ({SCALE}, "fashion-mnist", 224, NO_SCALE_VARIATION["fashion-mnist"]),
        ({SCALE}, "CIFAR10", 128, NO_SCALE_VARIATION["cifar10"]),
        ({SCALE, DENSE}, "fashion_mnist", 32, f"{DENSE_REASON}; {NO_SCALE_VARIATION['fashion-mnist']}"),
    ],
)
def test_why_a_budget_cannot_test_a_claim(kinds, data, crop, reason):
    assert untestable_reason(kinds, data, crop) == reason


def test_a_presets_declaration_comes_before_the_facts():
    declared = {SCALE: "my preset: objects pre-cropped to one size"}
    assert (
        untestable_reason({SCALE}, "synthetic", 224, declared) == "my preset: objects pre-cropped to one size"
    )
    assert untestable_reason({SCALE}, "fashion-mnist", 224, declared) == declared[SCALE]
    assert untestable_reason({DENSE}, "synthetic", 224, declared) is None


def test_the_verdict_text():
    assert not_testable("x") == "not testable at this budget: x"


def test_presets_declare_what_they_cannot_test_outside_the_budget():
    from vggbench.ablations.spec import load_spec, preset_budget, preset_untestable

    spec = load_spec("lrn")
    quick = preset_untestable(spec, "quick")
    assert set(quick) == {SCALE, DENSE}
    assert quick[SCALE].startswith("Fashion-MNIST: centered garments") and quick[DENSE].startswith("crop 32")
    assert set(preset_untestable(spec, "gpu")) == {SCALE} and preset_untestable(spec, "smoke") == {}
    assert not hasattr(preset_budget(spec, "quick"), "untestable")  # a reading, not part of the budget


@pytest.mark.parametrize(
    "value, found",
    [
        ('{ size = "x" }', 'found { size = "x" }'),
        ('{ scale = "" }', 'found { scale = "" }'),
        ("{ scale = 3 }", "found { scale = 3 }"),
        ('"scale"', 'found "scale" (a string)'),
    ],
)
def test_a_bad_untestable_declaration_is_a_spec_error(tmp_path, value, found):
    import shutil

    from vggbench.ablations.spec import SPEC_DIR, load_spec, preset_budget
    from vggbench.errors import VggbenchError

    text = (SPEC_DIR / "presets.toml").read_text().replace("[smoke]\n", f"[smoke]\nuntestable = {value}\n")
    (tmp_path / "presets.toml").write_text(text)
    shutil.copy(SPEC_DIR / "lrn.toml", tmp_path / "lrn.toml")
    with pytest.raises(VggbenchError) as error:
        preset_budget(load_spec(str(tmp_path / "lrn.toml")), "quick")
    message = str(error.value)
    assert "[smoke] untestable: expected a table of scale and dense claims, each a reason" in message
    assert found in message and "e.g. untestable = {" in message


def test_the_torch_free_data_kinds_name_the_cifar_sets_the_loader_reads():
    from vggbench.data.sources import CIFAR
    from vggbench.options import CIFAR_SETS, data_kind

    assert set(CIFAR) == set(CIFAR_SETS)
    assert [data_kind(s) for s in ("FashionMNIST", " cifar100 ", "imagefolder:/x")] == [
        "fashion-mnist",
        "cifar100",
        "imagefolder",
    ]
