"""Training scale S and test scales Q, in the paper's units and in pixels for a crop size.

The paper's scales are pixels for a 224 crop. This toolkit scales a paper scale X to a crop of
c pixels as round(X * c / 224), so c = 224 keeps the paper's numbers and c = 32 maps S=256 to 37.
"""

from __future__ import annotations

from dataclasses import dataclass

from vggbench import paper
from vggbench.checks import MAX_CROP, MAX_SCALE
from vggbench.errors import VggbenchError

SCALE_HELP = "a paper-unit scale such as 256 or 384, or a jitter range such as 256:512"
QSET_HELP = "single, multi, jitter, or a list of paper-unit scales such as 224,256,288"


def to_pixels(paper_scale: float, crop: int) -> int:
    """Map a paper scale (pixels for a 224 crop) to pixels for a crop of `crop` pixels."""
    return int(paper_scale * crop / paper.PAPER_CROP + 0.5)  # round half up, not to even


def check_crop(crop: int) -> int:
    """The five max-pools need a crop that is a positive multiple of 32."""
    step = 2**paper.POOLS
    if crop < step or crop % step:
        raise VggbenchError(
            f"crop/size {crop} is not a multiple of {step} of at least {step}; use e.g. 32, 64 or 224"
        )
    if crop > MAX_CROP:
        raise VggbenchError(f"crop/size {crop} must be at most {MAX_CROP} pixels; use e.g. 32, 64 or 224")
    return crop


@dataclass(frozen=True)
class TrainScale:
    """The training scale S: fixed (smin == smax) or jittered per image in [smin, smax]."""

    smin: int
    smax: int

    @property
    def jittered(self) -> bool:
        return self.smax > self.smin

    @property
    def mid(self) -> float:
        return 0.5 * (self.smin + self.smax)

    def __str__(self) -> str:
        return f"{self.smin}:{self.smax}" if self.jittered else str(self.smin)

    def pixels(self, crop: int) -> tuple[int, int]:
        """(smin, smax) in pixels for this crop; smin is at least the crop."""
        return max(crop, to_pixels(self.smin, crop)), max(crop, to_pixels(self.smax, crop))


def parse_train_scale(spec: str) -> TrainScale:
    """'256' -> fixed S=256; '256:512' -> S jittered in [256, 512] (paper units)."""
    parts = str(spec).strip().split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise VggbenchError(f"bad scale {spec!r}: expected {SCALE_HELP}") from None
    if len(values) not in (1, 2) or any(v < paper.PAPER_CROP for v in values):
        raise VggbenchError(f"bad scale {spec!r}: expected {SCALE_HELP}, each at least {paper.PAPER_CROP}")
    smin, smax = values[0], values[-1]
    if max(values) > MAX_SCALE:
        raise VggbenchError(
            f"bad scale {spec!r}: at most {MAX_SCALE} in the paper's units (its largest is 512)"
        )
    if smax < smin:
        raise VggbenchError(f"bad scale {spec!r}: the range is reversed; write it as {smax}:{smin}")
    return TrainScale(smin, smax)


def test_scales(spec: str, train: TrainScale) -> tuple[int, ...]:
    """The test scales Q (paper units) for a Q-set spec and the run's training scale S.

    single: Q = S (fixed) or 0.5(Smin+Smax) (jittered), as Table 3.
    multi: Q = {S-32, S, S+32} (fixed) or {Smin, mid, Smax} (jittered), as Table 4.
    jitter: Q = {256, 384, 512}, the jitter range's three scales (Table 5).
    """
    name = spec.strip().lower()
    if name == "single":
        return (round(train.mid),)
    if name == "multi":
        if train.jittered:
            return (train.smin, round(train.mid), train.smax)
        offset = paper.MULTI_SCALE_OFFSET
        return (train.smin - offset, train.smin, train.smin + offset)
    if name == "jitter":
        lo, hi = paper.JITTER_RANGE
        return (lo, (lo + hi) // 2, hi)
    try:
        values = tuple(int(v) for v in name.split(","))
    except ValueError:
        raise VggbenchError(f"bad test scales {spec!r}: expected {QSET_HELP}") from None
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise VggbenchError(
            f"bad test scales {spec!r}: {repeated[0]} is given twice; give each scale once (the "
            "posteriors are averaged over distinct scales), e.g. 224,256,288"
        )
    if any(v < paper.PAPER_CROP for v in values):
        raise VggbenchError(
            f"bad test scales {spec!r}: a test scale below the crop ({paper.PAPER_CROP} in paper units) "
            "cannot be cropped; use scales of at least 224"
        )
    if any(v > MAX_SCALE for v in values):
        raise VggbenchError(
            f"bad test scales {spec!r}: at most {MAX_SCALE} in the paper's units (its largest is 512); "
            "e.g. 224,256,288"
        )
    return values
