"""The counting tables of `vggbench params` as DataFrames: Table 2 and beyond, a net's per-layer
breakdown, and Section 2.3's filter stacks, for the CLI and the report. Built from counting's
on-disk cache, so a repeat call loads neither torch nor fvcore."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from vggbench import paper
from vggbench.architectures import ARCHITECTURES
from vggbench.counting import cached_layer_breakdown, cached_summary, small_filter_table
from vggbench.errors import VggbenchError

if TYPE_CHECKING:
    import pandas as pd

#: Display headers for the snake_case columns that JSON and CSV keep.
HEADERS = {
    "net": "net",
    "weight_layers": "weight layers",
    "params": "parameters",
    "params_millions": "params (M)",
    "paper_params_millions": "paper Table 2 (M)",
    "agrees": "agrees",
    "conv_macs": "conv MACs",
    "macs": "MACs",
    "flops": "FLOPs (2 x MACs)",
    "receptive_field": "receptive field",
    "output_shape": "output shape",
    "jump": "jump (stride)",
    "layers": "3x3 layers n",
    "stack_params": "stack weights (n x 9C^2)",
    "single_params": "single conv weights",
    "stack_nonlinearities": "stack ReLUs",
    "single_nonlinearities": "single ReLUs",
    "saving": "weights saved",
}


def params_frame(
    width: float = 1.0, num_classes: int = paper.NUM_CLASSES, size: int = paper.PAPER_CROP
) -> pd.DataFrame:
    """One row per net with exact parameters, MACs and FLOPs at `size`."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    rows = [asdict(cached_summary(name, num_classes, width, size)) for name in ARCHITECTURES]
    return pd.DataFrame(rows).astype({"paper_params_millions": "Int64", "agrees": "boolean"})


def layers_frame(
    config: str, width: float = 1.0, num_classes: int = paper.NUM_CLASSES, size: int = paper.PAPER_CROP
) -> pd.DataFrame:
    """The per-layer breakdown of one net."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    frame = pd.DataFrame([asdict(r) for r in cached_layer_breakdown(config, num_classes, width, size)])
    frame["output_shape"] = frame["output_shape"].map(lambda s: "x".join(map(str, s)))
    return frame.astype({"receptive_field": "Int64", "jump": "Int64"})


def filters_frame(channels: int = 512, max_layers: int = 3) -> pd.DataFrame:
    """Section 2.3's argument: n stacked 3x3 convs against one (2n+1)x(2n+1) conv."""
    import pandas as pd  # lazy: keeps CLI start-up fast

    if channels < 1:
        raise VggbenchError(f"channels {channels} must be at least 1")
    rows = [{**asdict(row), "saving": row.saving} for row in small_filter_table(channels, max_layers)]
    return pd.DataFrame(rows)


def display(frame: pd.DataFrame) -> pd.DataFrame:
    """Human headers for terminal, Markdown and LaTeX."""
    return frame.rename(columns=HEADERS)
