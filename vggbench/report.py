"""Tables side by side with the paper's numbers, as DataFrames, and their rendered files."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from vggbench import paper
from vggbench.architectures import ARCHITECTURES
from vggbench.counting import layer_breakdown, small_filter_table, summarize
from vggbench.models import ModelSpec
from vggbench.render import render_latex, render_markdown
from vggbench.results import atomic_write_text

#: Display headers for the snake_case columns that JSON and CSV keep.
HEADERS = {
    "config": "net",
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


def params_frame(width: float = 1.0, num_classes: int = paper.NUM_CLASSES, size: int = paper.PAPER_CROP) -> pd.DataFrame:
    """Table 2 and beyond: one row per net with exact parameters, MACs and FLOPs at `size`."""
    rows = [asdict(summarize(ModelSpec(name, num_classes, width, size))) for name in ARCHITECTURES]
    return pd.DataFrame(rows).astype({"paper_params_millions": "Int64", "agrees": "boolean"})


def layers_frame(config: str, width: float = 1.0, num_classes: int = paper.NUM_CLASSES,
                 size: int = paper.PAPER_CROP) -> pd.DataFrame:
    """The per-layer breakdown of one net."""
    rows = [asdict(r) for r in layer_breakdown(ModelSpec(config, num_classes, width, size))]
    frame = pd.DataFrame(rows)
    frame["output_shape"] = frame["output_shape"].map(lambda s: "x".join(map(str, s)))
    return frame.astype({"receptive_field": "Int64", "jump": "Int64"})


def filters_frame(channels: int = 512, max_layers: int = 3) -> pd.DataFrame:
    """Section 2.3's argument: n stacked 3x3 convs against one (2n+1)x(2n+1) conv."""
    rows = []
    for row in small_filter_table(channels, max_layers):
        rows.append({**asdict(row), "saving": row.saving})
    return pd.DataFrame(rows)


def display(frame: pd.DataFrame) -> pd.DataFrame:
    """Human headers for terminal, Markdown and LaTeX."""
    return frame.rename(columns=HEADERS)


def write_table2(out_dir: Path) -> list[Path]:
    """Render Table 2 (our exact counts beside the paper's) as Markdown and LaTeX under `out_dir`."""
    frame = display(params_frame())
    caption = f"Parameters and compute at 224x224, 1000 classes, against Table 2 of {paper.CITATION}."
    md = Path(out_dir) / "table2.md"
    tex = Path(out_dir) / "tables" / "table2.tex"
    atomic_write_text(md, f"# Table 2: parameters\n\n{caption} MACs are multiply-accumulates.\n\n" + render_markdown(frame))
    atomic_write_text(tex, render_latex(frame, caption=caption, label="tab:params"))
    return [md, tex]
