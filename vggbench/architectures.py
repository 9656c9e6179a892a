"""Table 1 of the paper as data: each net is a list of five stages of layers, each stage ending
in a 2x2 max-pool; the classifier (FC-4096, FC-4096, FC-classes) is the same for every net."""

from __future__ import annotations

from dataclasses import dataclass

from vggbench.errors import VggbenchError


@dataclass(frozen=True)
class Conv:
    """A convolution with stride 1 and 'same' padding, followed by ReLU."""

    width: int
    kernel: int = 3

    @property
    def padding(self) -> int:
        return self.kernel // 2


@dataclass(frozen=True)
class LRN:
    """Local response normalisation (Krizhevsky et al. 2012), used only by A-LRN."""


Layer = Conv | LRN


@dataclass(frozen=True)
class Architecture:
    name: str
    stages: tuple[tuple[Layer, ...], ...]
    note: str

    @property
    def convs(self) -> list[Conv]:
        return [layer for stage in self.stages for layer in stage if isinstance(layer, Conv)]

    @property
    def weight_layers(self) -> int:
        """Conv layers plus the three FC layers: the paper's 'weight layers' (Table 1)."""
        return len(self.convs) + 3


def _c(*widths: int, kernel: int = 3) -> tuple[Conv, ...]:
    return tuple(Conv(w, kernel) for w in widths)


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in [
        Architecture("A", (_c(64), _c(128), _c(256, 256), _c(512, 512), _c(512, 512)), "11 weight layers"),
        Architecture(
            "A-LRN",
            (_c(64) + (LRN(),), _c(128), _c(256, 256), _c(512, 512), _c(512, 512)),
            "A with LRN after the first conv",
        ),
        Architecture(
            "B", (_c(64, 64), _c(128, 128), _c(256, 256), _c(512, 512), _c(512, 512)), "13 weight layers"
        ),
        Architecture(
            "C",
            (
                _c(64, 64),
                _c(128, 128),
                _c(256, 256) + (Conv(256, 1),),
                _c(512, 512) + (Conv(512, 1),),
                _c(512, 512) + (Conv(512, 1),),
            ),
            "16 weight layers; the last conv of stages 3-5 is 1x1",
        ),
        Architecture(
            "D", (_c(64, 64), _c(128, 128), _c(256, 256, 256), _c(512, 512, 512), _c(512, 512, 512)), "VGG-16"
        ),
        Architecture(
            "E",
            (
                _c(64, 64),
                _c(128, 128),
                _c(256, 256, 256, 256),
                _c(512, 512, 512, 512),
                _c(512, 512, 512, 512),
            ),
            "VGG-19",
        ),
        Architecture(
            "B-5x5",
            tuple(_c(w, kernel=5) for w in (64, 128, 256, 512, 512)),
            "B with each pair of 3x3 convs replaced by one 5x5 (Section 4.1)",
        ),
    ]
}

#: The nets of Table 1 and 2, in the paper's order (B-5x5 is only in the text).
TABLE1_NETS = ("A", "A-LRN", "B", "C", "D", "E")


def get_architecture(name: str) -> Architecture:
    """Look a net up by its Table 1 name (case-insensitive)."""
    for key, arch in ARCHITECTURES.items():
        if key.lower() == name.lower():
            return arch
    raise VggbenchError(f"unknown config {name!r}; choose one of {', '.join(ARCHITECTURES)}")
