"""Which of the paper's claims a budget can test at all, and why not where it cannot.

Two kinds of claim need conditions that small budgets lack:
- scale claims (training at jittered scales, Section 4.1) need objects whose size in the image
  varies: on a set of centered objects that fill the frame, rescaling only crops into the object,
  so there is no scale variation for jittering to learn;
- dense claims (the dense protocol, and Table 5's dense vs multi-crop) need crops large enough that
  the fully convolutional net's score map is many windows over the image: at crop 32 the map at
  Q=256 is 2x2 near-identical 32-px windows over a 37-px image, geometry rather than the protocol.

A comparison whose arms differ in training scale is a scale claim; one under an evaluation with the
dense method is a dense claim. A preset declares what it cannot test (`untestable`, kind: reason);
the facts of the datasets below and the crop rule apply whatever the preset says. A comparison a
budget cannot test is still measured and shown, with "not testable at this budget: <reason>" for
its verdict. Torch-free: parsing a spec imports this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vggbench.options import data_kind

SCALE = "scale"
DENSE = "dense"
KINDS = (SCALE, DENSE)
NOT_TESTABLE = "not testable at this budget"
#: Below this crop (pixels) the dense score map is a handful of overlapping windows (`module doc`).
DENSE_MIN_CROP = 128

#: Datasets whose objects do not vary in scale, with the reason (by the data spec's kind).
NO_SCALE_VARIATION = {
    "fashion-mnist": "Fashion-MNIST: centered garments that fill the frame, no scale variation to act on",
    "cifar10": "CIFAR-10: centered objects that fill the frame (upsampling does not change that)",
    "cifar100": "CIFAR-100: centered objects that fill the frame (upsampling does not change that)",
}


def claim_kinds(arm_scales: Iterable[str], method: str) -> frozenset[str]:
    """The kinds of claim a comparison makes: scale where its arms train at different scales, dense
    where its evaluation uses the dense method (alone or with multi-crop)."""
    kinds = set()
    if len(set(arm_scales)) > 1:
        kinds.add(SCALE)
    if "dense" in method:
        kinds.add(DENSE)
    return frozenset(kinds)


def untestable_reason(
    kinds: Iterable[str], data: str, crop: int, declared: Mapping[str, str] | None = None
) -> str | None:
    """Why a budget (its data spec and crop, and what its preset declares) cannot test claims of
    these kinds, or None where it can. The preset's own reason comes first, then the dataset's and
    the crop's."""
    declared = declared or {}
    reasons = []
    for kind in sorted(set(kinds)):
        if kind in declared:
            reasons.append(declared[kind])
        elif kind == SCALE and data_kind(data) in NO_SCALE_VARIATION:
            reasons.append(NO_SCALE_VARIATION[data_kind(data)])
        elif kind == DENSE and crop < DENSE_MIN_CROP:
            reasons.append(
                f"crop {crop} px: below {DENSE_MIN_CROP} px dense evaluation's score map is a few windows "
                "reaching past the image into zero padding, not the paper's protocol (read the center crop "
                "or multi-crop instead)"
            )
    return "; ".join(reasons) or None


def not_testable(reason: str) -> str:
    """The verdict a comparison gets instead of one about the claim."""
    return f"{NOT_TESTABLE}: {reason}"
