"""Range checks for numbers the user gives: one definition of "finite and in range", so that inf
and nan never pass a check written as `x > 0` (every comparison with nan is false, but inf > 0)."""

from __future__ import annotations

import math

#: Seeds go to torch.Generator.manual_seed, which takes a signed 64-bit integer.
SEED_LIMIT = 2**63


def in_range(
    value: float,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> bool:
    """Whether value is a finite number in [low, high] (an open end excludes its bound)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    return above and below


def positive(value: float) -> bool:
    """A finite number above 0."""
    return in_range(value, 0, low_open=True)


def valid_seed(seed: int) -> bool:
    """A whole number in [0, 2^63): what torch's generators take."""
    return isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < SEED_LIMIT
