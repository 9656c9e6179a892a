"""Range checks for numbers the user gives: one definition of "finite and in range", so that inf
and nan never pass a check written as `x > 0` (every comparison with nan is false, but inf > 0)."""

from __future__ import annotations

import math
import os

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


# --- Upper bounds that the machine imposes ----------------------------------------------------------
# Each is far above what a run of the paper's recipe uses, and below where a size overflows torch's
# allocator, a count spawns processes without end or a float leaves the range training can hold.

#: Width multiplier: 16x the paper's channels are 8,192-channel convs and a 65,536-wide FC.
MAX_WIDTH = 16.0
#: Crop (and params' --size) in pixels: VGG's first conv at 2048 px holds 1 GiB per image.
MAX_CROP = 2048
#: Classes: FC8 of 4,096 x 100,000 is 410 million weights (ImageNet-21k has 21,841 classes).
MAX_CLASSES = 100_000
#: FC6/FC7 width (the paper's is 4,096).
MAX_FC_WIDTH = 65_536
#: Batch sizes (the paper's is 256).
MAX_BATCH = 65_536
#: Scales S and Q in the paper's units (the paper's largest is 512).
MAX_SCALE = 4096
#: Floats of the recipe whose products with weights and pixels must stay finite in training.
MAX_LR = 10.0  # 1000x the paper's 0.01
MAX_WEIGHT_DECAY = 1.0  # 2000x the paper's 5e-4
MAX_LRN_ALPHA = 1.0  # 10,000x Krizhevsky's 1e-4
MAX_INIT_STD = 1.0  # 10x the paper's "10^-2 variance" read literally (std 0.1)
#: DataLoader workers of a run: a stated cap, not this machine's cores, since a stored run's config
#: is checked again wherever it is read.
MAX_WORKERS = 64


def cores() -> int:
    """The cores this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: Devices as the commands name them: auto, cpu, cuda or cuda:N.
DEVICE_HELP = "auto, cpu, cuda or cuda:N"


def device_problem(spec: str) -> str | None:
    """Why a --device is not one of auto, cpu, cuda or cuda:N (None: it is)."""
    name = str(spec).strip().lower()
    if name in ("auto", "cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit()):
        return None
    return f"unknown device {spec!r}; use {DEVICE_HELP}"
