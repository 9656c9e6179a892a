"""The paper's published numbers and protocol constants, as data: the one place they live.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
arXiv:1409.1556 (ICLR 2015). Errors are in percent on ILSVRC-2012 val unless a column says test.
Scales are in the paper's pixel units for a 224 crop; `scales.py` maps them to other crop sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

CITATION = "Simonyan & Zisserman 2014, arXiv:1409.1556"

# --- Architecture constants (Section 2.1) -------------------------------------------------------
PAPER_CROP = 224
NUM_CLASSES = 1000
FC_WIDTH = 4096
POOLS = 5  # five 2x2 max-pools: the crop must be a multiple of 2**5
LRN_SIZE = 5  # Krizhevsky et al. 2012's LRN parameters
LRN_ALPHA = 1e-4
LRN_BETA = 0.75
LRN_K = 2.0
#: Caffe's input: pixel values on 0-255 minus the training set's mean RGB (no division by 255 or a std).
INPUT_RANGE = "0-255"

# --- Training recipe (Section 3.1) --------------------------------------------------------------
BATCH_SIZE = 256
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
DROPOUT = 0.5
LEARNING_RATE = 1e-2
LR_DECAY_FACTOR = 0.1
MAX_LR_DECREASES = 3
FINETUNE_LEARNING_RATE = 1e-3  # S=384 initialised from the S=256 net
INIT_MEAN = 0.0
PREINIT_CONV_LAYERS = 4  # deeper nets copy A's first four conv layers (and its three FC layers)
PCA_LIGHTING_STD = 0.1  # AlexNet colour shift: alpha ~ N(0, 0.1)
JITTER_RANGE = (256, 512)  # [Smin, Smax]

# --- Testing (Section 3.2) ----------------------------------------------------------------------
MULTI_SCALE_OFFSET = 32  # Q = {S-32, S, S+32} for a fixed-S net
CROP_GRID = 5  # multi-crop: a 5x5 regular grid ...
CROP_FLIPS = 2  # ... times 2 flips = 50 crops per scale
CROPS_PER_SCALE = CROP_GRID * CROP_GRID * CROP_FLIPS

# --- Table 2: parameters, millions ---------------------------------------------------------------
TABLE2_PARAMS_MILLIONS: dict[str, int] = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}

#: Section 4.1: B-5x5's top-1 error was 7% higher than B's (center crop).
B5X5_TOP1_GAP = 7.0


@dataclass(frozen=True)
class PaperResult:
    """One row of Tables 3-6: a net (or fusion), its train scale, test scales, method and errors."""

    table: int
    net: str
    train_scale: str  # "256", "384" or "256:512"
    test_scales: tuple[int, ...]
    method: str  # "dense", "multi-crop", "multi-crop+dense", "center"
    top1: float | None
    top5: float | None
    top5_test: float | None = None


def _rows(table: int, method: str, rows: list[tuple]) -> tuple[PaperResult, ...]:
    return tuple(PaperResult(table, net, s, tuple(q), method, t1, t5) for net, s, q, t1, t5 in rows)


# Table 3: single test scale (dense evaluation).
TABLE3 = _rows(
    3,
    "dense",
    [
        ("A", "256", (256,), 29.6, 10.4),
        ("A-LRN", "256", (256,), 29.7, 10.5),
        ("B", "256", (256,), 28.7, 9.9),
        ("C", "256", (256,), 28.1, 9.4),
        ("C", "384", (384,), 28.1, 9.3),
        ("C", "256:512", (384,), 27.3, 8.8),
        ("D", "256", (256,), 27.0, 8.8),
        ("D", "384", (384,), 26.8, 8.7),
        ("D", "256:512", (384,), 25.6, 8.1),
        ("E", "256", (256,), 27.3, 9.0),
        ("E", "384", (384,), 26.9, 8.7),
        ("E", "256:512", (384,), 25.5, 8.0),
    ],
)

# Table 4: multi-scale test (dense evaluation).
TABLE4 = _rows(
    4,
    "dense",
    [
        ("B", "256", (224, 256, 288), 28.2, 9.6),
        ("C", "256", (224, 256, 288), 27.7, 9.2),
        ("C", "384", (352, 384, 416), 27.8, 9.2),
        ("C", "256:512", (256, 384, 512), 26.3, 8.2),
        ("D", "256", (224, 256, 288), 26.6, 8.6),
        ("D", "384", (352, 384, 416), 26.5, 8.6),
        ("D", "256:512", (256, 384, 512), 24.8, 7.5),
        ("E", "256", (224, 256, 288), 26.9, 8.7),
        ("E", "384", (352, 384, 416), 26.7, 8.6),
        ("E", "256:512", (256, 384, 512), 24.8, 7.5),
    ],
)

# Table 5: evaluation method, S in [256;512], Q = {256, 384, 512}.
TABLE5 = tuple(
    PaperResult(5, net, "256:512", (256, 384, 512), method, t1, t5)
    for net, method, t1, t5 in [
        ("D", "dense", 24.8, 7.5),
        ("D", "multi-crop", 24.6, 7.5),
        ("D", "multi-crop+dense", 24.4, 7.2),
        ("E", "dense", 24.8, 7.5),
        ("E", "multi-crop", 24.6, 7.4),
        ("E", "multi-crop+dense", 24.4, 7.1),
    ]
)

# Table 6: fusion of nets; `net` lists the fused nets as NET/S, each at its multi-scale Q set.
SUBMISSION_7_NETS = "D/256+D/384+D/256:512+C/256+C/384+E/256+E/384"
TABLE6 = (
    PaperResult(6, SUBMISSION_7_NETS, "mixed", (), "dense", 24.7, 7.5, 7.3),
    PaperResult(6, "D/256:512+E/256:512", "256:512", (256, 384, 512), "dense", 24.0, 7.1, 7.0),
    PaperResult(6, "D/256:512+E/256:512", "256:512", (256, 384, 512), "multi-crop", 23.9, 7.2, None),
    PaperResult(6, "D/256:512+E/256:512", "256:512", (256, 384, 512), "multi-crop+dense", 23.7, 6.8, 6.8),
)


#: torchvision's VGG weights and the paper configs they implement.
TORCHVISION_CONFIG = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}


def paper_results(net: str | None = None, table: int | None = None) -> list[PaperResult]:
    """Rows of Tables 3-6, filtered by net and/or table number."""
    rows = TABLE3 + TABLE4 + TABLE5 + TABLE6
    return [r for r in rows if (net is None or r.net == net) and (table is None or r.table == table)]
