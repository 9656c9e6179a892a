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
