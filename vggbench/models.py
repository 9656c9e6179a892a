"""nn.Module from an architecture spec: one builder loop, the FC and fully-convolutional heads,
initialisation schemes, pre-initialisation from net A, and torchvision state compatibility.

The module layout matches torchvision's VGG (`features.N`, `classifier.0/3/6`), so its state dicts
load into A/B/D/E unchanged. The two heads share state keys; only FC weights change shape.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from vggbench import paper
from vggbench.architectures import LRN, Architecture, Conv, get_architecture
from vggbench.checks import MAX_CLASSES, MAX_FC_WIDTH, MAX_LRN_ALPHA, MAX_WIDTH, in_range, positive
from vggbench.errors import VggbenchError
from vggbench.recipe import INIT_SCHEMES, PREINIT_MAPPINGS
from vggbench.scales import check_crop

CLASSIFIER_LINEAR_INDICES = (0, 3, 6)  # classifier.0 = FC6, classifier.3 = FC7, classifier.6 = FC8


@dataclass(frozen=True)
class ModelSpec:
    """Everything that fixes a model's shapes; stored with runs so a model can be rebuilt."""

    net: str = "D"  # Table 1 name: A, A-LRN, B, C, D, E, B-5x5
    num_classes: int = paper.NUM_CLASSES
    width: float = 1.0
    crop: int = paper.PAPER_CROP
    fc_width: int | None = None  # default: 4096 scaled by width
    dropout: float = paper.DROPOUT
    lrn_alpha: float = (
        paper.LRN_ALPHA
    )  # Krizhevsky's alpha (A-LRN only); nn.LocalResponseNorm takes alpha * n

    def __post_init__(self) -> None:
        get_architecture(self.net)
        if not positive(self.width):
            raise VggbenchError(f"width {self.width} must be a finite positive number; use e.g. 1 or 0.125")
        if self.width > MAX_WIDTH:
            raise VggbenchError(
                f"width {self.width:g} must be at most {MAX_WIDTH:g} ({MAX_WIDTH:g}x the paper's channels); "
                "use e.g. 1 or 0.125"
            )
        if self.num_classes < 1:
            raise VggbenchError(f"classes {self.num_classes} must be at least 1; use e.g. 1000 or 10")
        if self.num_classes > MAX_CLASSES:
            raise VggbenchError(
                f"classes {self.num_classes} must be at most {MAX_CLASSES:,} (FC8 would not fit in memory); "
                "use e.g. 1000 or 10"
            )
        if not in_range(self.dropout, 0, 1, high_open=True):
            raise VggbenchError(f"dropout {self.dropout} must be in [0, 1); the paper's is 0.5")
        if not positive(self.lrn_alpha):
            raise VggbenchError(
                f"LRN alpha {self.lrn_alpha} must be positive; Krizhevsky's (the paper's) is 1e-4"
            )
        if self.lrn_alpha > MAX_LRN_ALPHA:
            raise VggbenchError(
                f"LRN alpha {self.lrn_alpha:g} must be at most {MAX_LRN_ALPHA:g} (larger overflows on the "
                "0-255 input); Krizhevsky's (the paper's) is 1e-4"
            )
        if self.fc_width is not None and self.fc_width < 1:
            raise VggbenchError(f"fc width {self.fc_width} must be at least 1")
        if self.fc_width is not None and self.fc_width > MAX_FC_WIDTH:
            raise VggbenchError(
                f"fc width {self.fc_width} must be at most {MAX_FC_WIDTH:,}; the paper's is 4096"
            )
        check_crop(self.crop)

    @property
    def architecture(self) -> Architecture:
        return get_architecture(self.net)

    @property
    def has_lrn(self) -> bool:
        return any(isinstance(layer, LRN) for stage in self.architecture.stages for layer in stage)

    @property
    def hidden(self) -> int:
        return self.fc_width or scaled(paper.FC_WIDTH, self.width)

    @property
    def final_map(self) -> int:
        """Side of the last feature map for a crop: FC6 as a conv has this kernel size."""
        return self.crop // 2**paper.POOLS

    def to_dict(self) -> dict:
        return asdict(self)


def scaled(channels: int, width: float) -> int:
    """Channels after the width multiplier (at least one)."""
    return max(1, round(channels * width))


def lrn_layer(alpha: float = paper.LRN_ALPHA) -> nn.LocalResponseNorm:
    """Krizhevsky et al.'s LRN, b = a / (k + alpha * sum over n adjacent channels of a^2)^beta.

    torch (like Caffe) divides its alpha by n, so Krizhevsky's alpha is passed as alpha * n."""
    return nn.LocalResponseNorm(
        paper.LRN_SIZE, alpha=alpha * paper.LRN_SIZE, beta=paper.LRN_BETA, k=paper.LRN_K
    )


class VGG(nn.Module):
    """A Table 1 net. With `fully_convolutional`, FC6 is a (crop/32)x(crop/32) conv and FC7/FC8
    are 1x1 convs, so any input of at least the crop size gives a class score map (dense eval).
    Max-pools round up (Caffe's `ceil_mode`): at Q=37 px and crop 32 the score map is 2x2, not a
    1x1 window pinned to the top-left."""

    def __init__(self, spec: ModelSpec, fully_convolutional: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.fully_convolutional = fully_convolutional
        layers: list[nn.Module] = []
        #: (stage, position in stage, index in `features`) of each conv: pre-init matches on it.
        self.conv_positions: list[tuple[int, int, int]] = []
        channels = 3
        for stage_index, stage in enumerate(spec.architecture.stages):
            position = 0
            for layer in stage:
                if isinstance(layer, Conv):
                    out = scaled(layer.width, spec.width)
                    self.conv_positions.append((stage_index, position, len(layers)))
                    layers += [
                        nn.Conv2d(channels, out, layer.kernel, padding=layer.padding),
                        nn.ReLU(inplace=True),
                    ]
                    channels, position = out, position + 1
                elif isinstance(layer, LRN):
                    layers.append(lrn_layer(spec.lrn_alpha))
            # Caffe's pooling (the paper's implementation) rounds the output size up, so a dense score
            # map covers the whole image; at multiples of 32 (every crop) it equals floor rounding.
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.feature_channels = channels
        hidden, side = spec.hidden, spec.final_map
        if fully_convolutional:
            fc6: nn.Module = nn.Conv2d(channels, hidden, side)
            fc7: nn.Module = nn.Conv2d(hidden, hidden, 1)
            fc8: nn.Module = nn.Conv2d(hidden, spec.num_classes, 1)
        else:
            fc6 = nn.Linear(channels * side * side, hidden)
            fc7 = nn.Linear(hidden, hidden)
            fc8 = nn.Linear(hidden, spec.num_classes)
        self.classifier = nn.Sequential(
            fc6,
            nn.ReLU(inplace=True),
            nn.Dropout(spec.dropout),
            fc7,
            nn.ReLU(inplace=True),
            nn.Dropout(spec.dropout),
            fc8,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """FC form: (N, classes) logits for crop-sized input. Conv form: (N, classes, h, w) map."""
        x = self.features(x)
        if self.fully_convolutional:
            return self.classifier(x)
        side = self.spec.final_map
        if x.shape[-2:] != (side, side):
            raise VggbenchError(
                f"the FC form takes {self.spec.crop}x{self.spec.crop} input, got {tuple(x.shape[-2:])} after "
                f"the pools; use the fully-convolutional form (dense evaluation) for other sizes"
            )
        return self.classifier(torch.flatten(x, 1))


def build_model(spec: ModelSpec, fully_convolutional: bool = False) -> VGG:
    """The model for `spec` in the requested form with some fixed weights: the paper's normal init
    (std 0.01), drawn from torch's global generator. Training draws its own (`train.Trainer`, the
    seed's generator; its default is Glorot's, recipe.DEFAULT_INIT); benchmarks and tests use this."""
    model = VGG(spec, fully_convolutional)
    init_weights(model, "paper", std=0.01)
    return model


def uninitialised_model(spec: ModelSpec, fully_convolutional: bool = False, meta: bool = False) -> VGG:
    """A model with memory but no initialisation: cheap, for counting and shape inspection
    (`meta`: not even memory, for shapes alone)."""
    with torch.device("meta"):
        model = VGG(spec, fully_convolutional)
    return model if meta else model.to_empty(device="cpu")


# --- FC <-> fully-convolutional ------------------------------------------------------------------


def convert_state(state: dict[str, torch.Tensor], spec: ModelSpec, to_conv: bool) -> dict[str, torch.Tensor]:
    """The same weights in the other head layout.

    FC6 (h, c*k*k) <-> (h, c, k, k); FC7 and FC8 (o, i) <-> (o, i, 1, 1).
    """
    out = dict(state)
    k = spec.final_map
    for index in CLASSIFIER_LINEAR_INDICES:
        key = f"classifier.{index}.weight"
        weight = state[key]
        if to_conv and weight.dim() == 2:
            side = k if index == 0 else 1
            out[key] = weight.reshape(weight.shape[0], -1, side, side)
        elif not to_conv and weight.dim() == 4:
            out[key] = weight.reshape(weight.shape[0], -1)
    return out


def to_fully_convolutional(model: VGG) -> VGG:
    """A conv-head copy of an FC model (same weights, reshaped): the net of dense evaluation."""
    return _converted(model, to_conv=True)


def to_fully_connected(model: VGG) -> VGG:
    """An FC-head copy of a conv-head model (same weights, reshaped)."""
    return _converted(model, to_conv=False)


def _converted(model: VGG, to_conv: bool) -> VGG:
    target = VGG(model.spec, fully_convolutional=to_conv)
    target.load_state_dict(convert_state(model.state_dict(), model.spec, to_conv))
    parameter = next(model.parameters())
    return target.to(device=parameter.device, dtype=parameter.dtype).train(model.training)


def load_state(model: VGG, state: dict[str, torch.Tensor]) -> None:
    """Load a state of either head layout (ours or torchvision's vgg11/13/16/19) into `model`."""
    state = {k: v for k, v in state.items() if not k.startswith("avgpool")}
    state = convert_state(state, model.spec, to_conv=model.fully_convolutional)
    mine = model.state_dict()
    mismatched = [k for k in mine if k in state and state[k].shape != mine[k].shape]
    missing = [k for k in mine if k not in state]
    if mismatched or missing:
        what = f"shape differs for {mismatched[0]}" if mismatched else f"missing {missing[0]}"
        raise VggbenchError(
            f"weights do not fit net {model.spec.net} (width {model.spec.width}, "
            f"{model.spec.num_classes} classes, crop {model.spec.crop}): {what}; "
            "check --config, --width and --classes"
        )
    model.load_state_dict(state)


# --- Initialisation (Section 3.1) ----------------------------------------------------------------


def weight_layers(model: VGG) -> list[nn.Conv2d | nn.Linear]:
    """Every conv and FC layer, input first."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def paper_layer_stds(spec: ModelSpec, std: float) -> list[float]:
    """The paper's normal init per weight layer at the spec's width: std scaled by
    sqrt(full-width fan-in / fan-in), so each layer's output variance is the full-width net's at the
    same crop. That is std / sqrt(width) for every layer but the first, whose fan-in (3 x 3 x 3) does
    not change with width."""
    full = uninitialised_model(replace(spec, width=1.0, fc_width=None), meta=True)
    ours = uninitialised_model(spec, meta=True)
    return [
        std * math.sqrt(_fan_in(f) / _fan_in(o)) for f, o in zip(weight_layers(full), weight_layers(ours))
    ]


def _fan_in(layer: nn.Module) -> int:
    return layer.weight[0].numel()


def init_weights(
    model: VGG,
    scheme: str = "paper",
    std: float = 0.01,
    generator: torch.Generator | None = None,
    input_std: float = 1.0,
) -> None:
    """Initialise every conv and FC layer; biases zero.

    paper: normal(0, std), `std` being the full-width net's (see `paper_layer_stds`). The paper's
        "10^-2 variance" reads as std 0.1 literally; most reimplementations (and torchvision's
        Linear init) use std 0.01, the default here. It assumes the paper's 0-255 input as is.
    glorot: Glorot & Bengio (2010) uniform, which the paper notes works without pre-training.
    kaiming: He et al. (2015) normal, fan-out, for ReLU nets; not in the paper, a modern baseline.
    Glorot and Kaiming assume unit-variance input: their first layer is divided by `input_std`,
    the measured std of the input (about 80 on 0-255 pixels), so its output variance is as designed.
    """
    if scheme not in INIT_SCHEMES:
        raise VggbenchError(f"unknown init {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    if not (input_std > 0 and math.isfinite(input_std)):
        raise VggbenchError(f"input std {input_std} must be positive")
    layers = weight_layers(model)
    stds = paper_layer_stds(model.spec, std) if scheme == "paper" else []
    for index, module in enumerate(layers):
        with torch.no_grad():
            if scheme == "paper":
                module.weight.normal_(paper.INIT_MEAN, stds[index], generator=generator)
            elif scheme == "glorot":
                fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(module.weight)
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                module.weight.uniform_(-bound, bound, generator=generator)
            else:
                fan_out = module.weight.shape[0] * module.weight[0, 0].numel()
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_out), generator=generator)
            if scheme != "paper" and index == 0:
                module.weight.div_(input_std)
            module.bias.zero_()


def preinit_from(
    target: VGG, source_state: dict[str, torch.Tensor], source_spec: ModelSpec, mapping: str = "stage"
) -> list[str]:
    """Copy net A's first four conv layers and last three FC layers into `target` where shapes
    match (Section 3.1); the rest keeps its random init. Returns 'source -> target' for each copy.

    The paper does not say which of a deeper net's convs receive A's first four, and by index
    some shapes differ (B's conv2 is 64->64, A's is 64->128). mapping='stage' (default) copies
    each of A's convs to the conv at the same stage and position within the stage (for B..E all
    four fit); mapping='order' copies A's i-th conv to the i-th conv, skipping shape mismatches.
    """
    if mapping not in PREINIT_MAPPINGS:
        raise VggbenchError(
            f"unknown pre-init mapping {mapping!r}; choose one of {', '.join(PREINIT_MAPPINGS)}"
        )
    source = VGG(source_spec, fully_convolutional=target.fully_convolutional)
    load_state(source, source_state)
    src_state, dst_state = source.state_dict(), target.state_dict()
    src_convs = source.conv_positions[: paper.PREINIT_CONV_LAYERS]
    if mapping == "stage":
        by_position = {(s, p): i for s, p, i in target.conv_positions}
        pairs = [(i, by_position.get((s, p))) for s, p, i in src_convs]
    else:
        pairs = [(src[2], dst[2]) for src, dst in zip(src_convs, target.conv_positions)]
    prefixes = [(f"features.{a}", f"features.{b}") for a, b in pairs if b is not None]
    prefixes += [(f"classifier.{i}", f"classifier.{i}") for i in CLASSIFIER_LINEAR_INDICES]
    copied = []
    for src, dst in prefixes:
        keys = ("weight", "bias")
        if all(src_state[f"{src}.{k}"].shape == dst_state[f"{dst}.{k}"].shape for k in keys):
            for k in keys:
                dst_state[f"{dst}.{k}"] = src_state[f"{src}.{k}"].clone()
            copied.append(f"{src} -> {dst}")
    target.load_state_dict(dst_state)
    return copied
