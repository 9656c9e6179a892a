"""Parameters, MACs and receptive fields.

MACs are multiply-accumulates, counted by fvcore (which names them "flops"); FLOPs = 2 x MACs.
fvcore has no handler for max-pool or for the ops LRN decomposes into, so it would skip them with a
warning. We give each an explicit handler: max-pool does comparisons and no MACs (0); LRN costs one
MAC per element of its window, the sum of squares over `size` channels (out elements x size); its
remaining element-wise ops (scale, add, power, divide, pad) do no multiply-accumulates (0).

fvcore is the one counter. `macs_per_pass` (evaluation costs, any input size) does not count
again: it scales fvcore's per-module counts at the crop by each module's output size.

torch, fvcore and the models load inside the functions that need them: `vggbench params` reads its
rows from an on-disk cache (`cached_summary`, `cached_layer_breakdown`) and then needs neither.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vggbench import paper
from vggbench.fs import FileSystemError
from vggbench.store import atomic_write_text, record_id

if TYPE_CHECKING:
    from fvcore.nn import FlopCountAnalysis
    from torch import nn

    from vggbench.models import VGG, ModelSpec

logging.getLogger("fvcore").setLevel(logging.ERROR)


def _flop_count_analysis() -> type[FlopCountAnalysis]:
    with warnings.catch_warnings():  # fvcore's import touches the deprecated torch.jit.script
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis
    return FlopCountAnalysis


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def paper_millions(params: int) -> int:
    """Parameters in millions, rounded to the nearest million as Table 2 prints them."""
    return int(params / 1e6 + 0.5)


def _output_numel(outputs: list[Any]) -> int:
    shape = outputs[0].type().sizes()
    return math.prod(shape) if shape else 0


def _no_macs(inputs: list[Any], outputs: list[Any]) -> int:
    return 0


def _window_sum_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """LRN's stride-1 avg_pool3d over (size, 1, 1): one MAC per output element per window place.

    The window is read off the shapes (input = output + window - 1 along each pooled dim)."""
    in_shape, out_shape = inputs[0].type().sizes(), outputs[0].type().sizes()
    window = math.prod(i - o + 1 for i, o in zip(in_shape[-3:], out_shape[-3:]))
    return _output_numel(outputs) * window


_EXTRA_HANDLES = {
    "aten::max_pool2d": _no_macs,
    "aten::avg_pool3d": _window_sum_macs,
    "aten::mul": _no_macs,  # LRN: the squares (folded into the window MACs) and the alpha scale
    "aten::add": _no_macs,  # LRN: + k
    "aten::pow": _no_macs,  # LRN: ^ beta
    "aten::div": _no_macs,  # LRN: x / denominator
    "aten::pad": _no_macs,  # LRN: channel padding
    "aten::constant_pad_nd": _no_macs,
}


def mac_analysis(model: nn.Module, size: int | tuple[int, int]) -> FlopCountAnalysis:
    """fvcore's analysis of one image of `size` (square, or (h, w)), with every op handled."""
    import torch

    h, w = (size, size) if isinstance(size, int) else size
    parameter = next(model.parameters())
    image = torch.zeros(1, 3, h, w, dtype=parameter.dtype, device=parameter.device)
    analysis = _flop_count_analysis()(model.eval(), image).set_op_handle(**_EXTRA_HANDLES)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return analysis


def count_macs(model: VGG, size: int | tuple[int, int]) -> tuple[int, int]:
    """(conv-only MACs, total MACs) for one image: conv-only excludes the classifier."""
    by_module = mac_analysis(model, size).by_module()
    return by_module["features"], by_module[""]


@dataclass(frozen=True)
class LayerRow:
    """One row of the per-layer breakdown."""

    layer: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: int | None  # in input pixels; None after FC6, which sees the whole crop
    jump: int | None  # distance in input pixels between neighbouring outputs


def _describe(module: nn.Module) -> str:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0]
        return f"conv{k}x{k}-{module.out_channels}"
    if isinstance(module, nn.Linear):
        return f"FC-{module.out_features}"
    if isinstance(module, nn.MaxPool2d):
        return "maxpool 2x2/2"
    if isinstance(module, nn.LocalResponseNorm):
        return f"LRN (size {module.size})"
    return type(module).__name__


def receptive_fields(model: VGG) -> dict[str, tuple[int, int]]:
    """Receptive field and jump (input pixels) after each layer of `features`.

    A k x k layer of stride s grows the field by (k - 1) x jump and multiplies the jump by s."""
    from torch import nn

    fields, rf, jump = {}, 1, 1
    for index, module in enumerate(model.features):
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
            kernel, stride = (
                nn.modules.utils._pair(module.kernel_size)[0],
                nn.modules.utils._pair(module.stride)[0],
            )
            rf, jump = rf + (kernel - 1) * jump, jump * stride
        fields[f"features.{index}"] = (rf, jump)
    return fields


def receptive_field(spec: ModelSpec) -> int:
    """Receptive field (input pixels) of one unit after the last max-pool."""
    from vggbench.models import uninitialised_model  # lazy: loads torch, which cached counts do not need

    return list(receptive_fields(uninitialised_model(spec)).values())[-1][0]


def layer_breakdown(spec: ModelSpec, size: int | None = None) -> list[LayerRow]:
    """Per-layer output shape, parameters, MACs, receptive field and jump for one image.

    With no `size`, the FC form at the spec's crop; with a larger size, the fully-convolutional form.
    """
    from torch import nn

    from vggbench.models import uninitialised_model  # lazy: loads torch, which cached counts do not need

    size = size or spec.crop
    fully_convolutional = size != spec.crop
    model = uninitialised_model(spec, fully_convolutional).eval()
    by_module = mac_analysis(model, size).by_module()
    fields = receptive_fields(model)
    shapes = output_shapes(spec, fully_convolutional, size, size)
    named = [(f"features.{i}", m) for i, m in enumerate(model.features)]
    named += [(f"classifier.{i}", m) for i, m in enumerate(model.classifier)]
    return [
        LayerRow(
            name,
            _describe(module),
            shapes[name],
            count_parameters(module),
            by_module.get(name, 0),
            *fields.get(name, (None, None)),
        )
        for name, module in named
        if not isinstance(module, (nn.ReLU, nn.Dropout))
    ]


@dataclass(frozen=True)
class NetSummary:
    """One row of `vggbench params`: Table 2 beside our exact counts and MACs."""

    net: str
    weight_layers: int
    params: int
    params_millions: int
    paper_params_millions: int | None
    agrees: bool | None
    conv_macs: int
    macs: int
    flops: int
    receptive_field: int


def summarize(spec: ModelSpec) -> NetSummary:
    from vggbench.models import uninitialised_model  # lazy: loads torch, which cached counts do not need

    model = uninitialised_model(spec).eval()
    params = count_parameters(model)
    conv_macs, macs = count_macs(model, spec.crop)
    paper_value = paper.TABLE2_PARAMS_MILLIONS.get(spec.net)
    comparable = spec.num_classes == paper.NUM_CLASSES and spec.crop == paper.PAPER_CROP and spec.width == 1
    agrees = paper_millions(params) == paper_value if paper_value is not None and comparable else None
    return NetSummary(
        spec.net,
        spec.architecture.weight_layers,
        params,
        paper_millions(params),
        paper_value,
        agrees,
        conv_macs,
        macs,
        2 * macs,
        receptive_field(spec),
    )


@dataclass(frozen=True)
class FilterStack:
    """Section 2.3: a stack of n 3x3 convs against one (2n+1)x(2n+1) conv, C channels in and out."""

    layers: int
    receptive_field: int
    stack_params: int
    single_params: int
    stack_nonlinearities: int
    single_nonlinearities: int

    @property
    def saving(self) -> float:
        """Fraction of the single large conv's weights that the stack saves."""
        return 1 - self.stack_params / self.single_params


def small_filter_table(channels: int = 512, max_layers: int = 3) -> list[FilterStack]:
    """Weights (biases excluded, as the paper counts them: 27C^2 vs 49C^2 for n = 3)."""
    rows = []
    for n in range(1, max_layers + 1):
        field = 2 * n + 1
        rows.append(FilterStack(n, field, n * 9 * channels**2, field**2 * channels**2, n, 1))
    return rows


# --- MACs per pass, for any input size (evaluation costs) ---


@functools.lru_cache(maxsize=32)
def _meta_model(spec: ModelSpec, fully_convolutional: bool) -> VGG:
    import torch

    from vggbench.models import VGG  # lazy: loads torch, which cached counts do not need

    with torch.device("meta"):
        return VGG(spec, fully_convolutional).eval()


def output_shapes(
    spec: ModelSpec, fully_convolutional: bool, height: int, width: int
) -> dict[str, tuple[int, ...]]:
    """Output shape (batch dimension dropped) of each leaf module for one (height x width) input,
    from a pass on the meta device: shapes only, no arithmetic, so it is instant at any size."""
    import torch

    model = _meta_model(spec, fully_convolutional)
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [
        module.register_forward_hook(
            lambda _module, _inputs, output, name=name: shapes.__setitem__(name, tuple(output.shape[1:]))
        )
        for name, module in model.named_modules()
        if not any(module.children())
    ]
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, height, width, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return shapes


@functools.lru_cache(maxsize=32)
def _macs_per_output(spec: ModelSpec, fully_convolutional: bool) -> dict[str, int]:
    """fvcore's MACs per output element of each leaf module that does MACs, counted once at the crop.

    fvcore cannot trace on the meta device, so it runs once per net and form on a real model."""
    from vggbench.models import uninitialised_model  # lazy: loads torch, which cached counts do not need

    by_module = mac_analysis(uninitialised_model(spec, fully_convolutional), spec.crop).by_module()
    shapes = output_shapes(spec, fully_convolutional, spec.crop, spec.crop)
    return {
        name: by_module[name] // math.prod(shape) for name, shape in shapes.items() if by_module.get(name)
    }


@functools.lru_cache(maxsize=4096)
def macs_per_pass(spec: ModelSpec, fully_convolutional: bool, height: int, width: int) -> int:
    """MACs of one net evaluation on one (height x width) input, as fvcore counts them (`count_macs`).

    Each module's fvcore count at the crop, scaled by its output elements at (height, width): exact,
    as conv, LRN and linear layers do a fixed number of MACs per output element (pools do none);
    the FC form takes only the crop. Cheap for thousands of sizes: fvcore runs once per net and form,
    each size costs a shape-only pass."""
    costs = _macs_per_output(spec, fully_convolutional)
    shapes = output_shapes(spec, fully_convolutional, height, width)
    return sum(cost * math.prod(shapes[name]) for name, cost in costs.items())


# --- The on-disk cache of `vggbench params` ------------------------------------------------------

CACHE_ENV = "VGGBENCH_CACHE_DIR"  # where cached counts live; empty: no cache
#: The sources whose change may change a count: a cached row is keyed by their text's hash too.
_COUNTED_FROM = ("counting.py", "architectures.py", "models.py", "paper.py")


def cache_dir() -> Path | None:
    """$VGGBENCH_CACHE_DIR, else $XDG_CACHE_HOME/vggbench, else ~/.cache/vggbench; None when
    VGGBENCH_CACHE_DIR is set empty (no cache)."""
    given = os.environ.get(CACHE_ENV)
    if given is not None:
        return Path(given) if given else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vggbench"


@functools.lru_cache(maxsize=1)
def _cache_versions() -> dict[str, str]:
    """fvcore's and torch's versions (from package metadata: no import) and a hash of the code."""
    from importlib import metadata

    here = Path(__file__).resolve().parent
    code = hashlib.sha256(b"".join((here / name).read_bytes() for name in _COUNTED_FROM)).hexdigest()[:16]
    versions = {"code": code}
    for package in ("fvcore", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def _cache_path(kind: str, net: str, num_classes: int, width: float, size: int) -> tuple[Path, dict] | None:
    folder = cache_dir()
    if folder is None:
        return None
    key = {
        "kind": kind,
        "net": net,
        "classes": num_classes,
        "width": width,
        "size": size,
        **_cache_versions(),
    }
    return folder / "counts" / f"{record_id(key, length=20)}.json", key


#: The counts at the paper's settings (224 px, 1000 classes, width 1) for every net, shipped in the
#: package so that a fresh install answers `vggbench params` without loading torch or fvcore.
#: tests/test_counting.py checks them against fvcore; `make counts` writes them anew.
SHIPPED = Path(__file__).resolve().parent / "counts_shipped.json"


@functools.lru_cache(maxsize=1)
def _shipped_table() -> dict[str, dict[str, Any]]:
    """{kind: {net: value}} from SHIPPED; empty where it is missing or unreadable (then fvcore counts)."""
    try:
        return json.loads(SHIPPED.read_text())
    except (OSError, ValueError):
        return {}


def shipped(kind: str, net: str, num_classes: int, width: float, size: int) -> Any:
    """The shipped value of (kind, net) at the paper's settings, or None for any other setting."""
    if (num_classes, width, size) != (paper.NUM_CLASSES, 1.0, paper.PAPER_CROP):
        return None
    return _shipped_table().get(kind, {}).get(net)


def shipped_counts() -> dict[str, dict[str, Any]]:
    """What SHIPPED holds, counted afresh by fvcore: every net's summary and layer breakdown."""
    from vggbench.architectures import ARCHITECTURES  # lazy: only `make counts` and its test need it

    def spec(net: str) -> ModelSpec:
        return _spec(net, paper.NUM_CLASSES, 1.0, paper.PAPER_CROP)

    return {
        "summary": {net: asdict(summarize(spec(net))) for net in ARCHITECTURES},
        "layers": {net: [asdict(row) for row in layer_breakdown(spec(net))] for net in ARCHITECTURES},
    }


def _cached(kind: str, net: str, num_classes: int, width: float, size: int, compute) -> Any:
    """The shipped value at the paper's settings, else the cached value of (kind, net, classes,
    width, size) under this fvcore, torch and code, or `compute()`'s, then stored. The cache is only
    ever a shortcut: an unreadable or foreign entry is computed again, and a cache that cannot be
    written is skipped."""
    value = shipped(kind, net, num_classes, width, size)
    if value is not None:
        return value
    where = _cache_path(kind, net, num_classes, width, size)
    if where is not None and where[0].exists():
        try:
            entry = json.loads(where[0].read_text())
            if entry.get("key") == where[1]:
                return entry["value"]
        except (OSError, ValueError, AttributeError, KeyError):
            pass
    value = compute()
    if where is not None:
        try:
            atomic_write_text(where[0], json.dumps({"key": where[1], "value": value}) + "\n")
        except FileSystemError:
            pass
    return value


def _spec(net: str, num_classes: int, width: float, size: int) -> ModelSpec:
    from vggbench.models import ModelSpec  # lazy: loads torch; its checks run on a cache miss only

    return ModelSpec(net, num_classes, width, size)


def cached_summary(
    net: str, num_classes: int = paper.NUM_CLASSES, width: float = 1.0, size: int = paper.PAPER_CROP
) -> NetSummary:
    """`summarize` of this net, from the cache when it holds it (no torch, no fvcore trace). Bad
    values are never in the cache, so they reach ModelSpec's checks and their one-line errors."""
    value = _cached(
        "summary",
        net,
        num_classes,
        width,
        size,
        lambda: asdict(summarize(_spec(net, num_classes, width, size))),
    )
    return NetSummary(**value)


def cached_layer_breakdown(
    net: str, num_classes: int = paper.NUM_CLASSES, width: float = 1.0, size: int = paper.PAPER_CROP
) -> list[LayerRow]:
    """`layer_breakdown` of this net at its crop, from the cache when it holds it."""
    value = _cached(
        "layers",
        net,
        num_classes,
        width,
        size,
        lambda: [asdict(row) for row in layer_breakdown(_spec(net, num_classes, width, size))],
    )
    return [LayerRow(**{**row, "output_shape": tuple(row["output_shape"])}) for row in value]


if __name__ == "__main__":  # `make counts`: write the shipped counts from fvcore
    atomic_write_text(SHIPPED, json.dumps(shipped_counts(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SHIPPED}")
