"""Bench records as tables: frames of each part and their rendering (torch-free: the report
renders bench records without loading torch)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from vggbench.errors import VggbenchError
from vggbench.render import render, render_sections

KIND = "bench"
BENCH_FORMATS = ("table", "markdown", "latex", "json", "csv")


# --- Frames and rendering --------------------------------------------------------------------

HEADERS = {
    "machine": "machine",
    "device": "device",
    "net": "net",
    "width": "width",
    "crop": "crop",
    "batch": "batch",
    "mode": "mode",
    "images_per_s": "images/s",
    "ms_per_step": "ms/step",
    "macs_per_image": "MACs/image",
    "gflops": "GFLOP/s",
    "mfu": "MFU",
    "options": "options",
    "bare_images_per_s": "bare loop img/s",
    "ours_images_per_s": "our step img/s",
    "ours_data_images_per_s": "our step + fast path img/s",
    "step_ratio": "ours/bare (step)",
    "data_ratio": "ours/bare (with data)",
    "train_scale": "train S",
    "augment_images_per_s": "augment img/s",
    "train_images_per_s": "train img/s",
    "augment_over_train": "augment / train",
    "source": "data from",
    "folder": "images",
    "workers": "workers",
    "first_decode_s": "first decode s",
    "data_share_of_step": "data share of step",
    "method": "method",
    "test_scales_px": "Q (px)",
    "forward_passes_per_image": "passes/image",
    "ms_per_image": "ms/image",
    "time_vs_dense": "time vs dense",
    "macs_vs_dense": "MACs vs dense",
}


def _option_label(options: dict[str, Any]) -> str:
    flags = [name for name in ("channels_last", "bf16", "compile") if options.get(name)]
    return "+".join(flags) if flags else "eager fp32"


#: The columns of each bench table: who and what was measured, then the figures.
_CASE_COLUMNS = ["machine", "device", "options", "net", "width", "crop"]
COLUMNS: dict[str, list[str]] = {
    "throughput": [
        *_CASE_COLUMNS,
        *("batch", "mode", "images_per_s", "ms_per_step", "macs_per_image", "gflops", "mfu"),
    ],
    "overhead": [
        *_CASE_COLUMNS,
        *("batch", "bare_images_per_s", "ours_images_per_s", "ours_data_images_per_s"),
        *("step_ratio", "data_ratio"),
    ],
    "data": [
        *_CASE_COLUMNS,
        *(
            "batch",
            "source",
            "folder",
            "workers",
            "train_scale",
            "augment_images_per_s",
            "train_images_per_s",
        ),
        *("augment_over_train", "data_share_of_step", "first_decode_s"),
    ],
    "eval": [
        *_CASE_COLUMNS,
        *("method", "test_scales_px", "forward_passes_per_image", "macs_per_image", "ms_per_image"),
        *("time_vs_dense", "macs_vs_dense"),
    ],
}


def bench_frame(records: Sequence[dict[str, Any]], part: str = "throughput") -> pd.DataFrame:
    """A DataFrame of bench records: `throughput` (train and infer rows, the report's table),
    or one of overhead, data, eval; each row names its machine, device and options."""
    if part not in COLUMNS:
        raise VggbenchError(f"unknown bench table {part!r}; choose throughput, overhead, data or eval")
    rows = []
    for record in records:
        if record.get("kind") != KIND:
            continue
        context = {
            "machine": record["machine_name"],
            "device": record["options"].get("device"),
            "options": _option_label(record["options"]),
        }
        sections = ("train", "infer") if part == "throughput" else (part,)
        for section in sections:
            for row in record.get(section, []):
                rows.append({**context, "net": row.get("net", row.get("config")), **_without(row, "config")})
    frame = pd.DataFrame(rows, columns=COLUMNS[part])
    if part == "eval" and len(frame):
        frame["test_scales_px"] = frame["test_scales_px"].map(lambda q: ",".join(map(str, q)))
    for column in ("mfu", "augment_over_train", "data_share_of_step", "first_decode_s"):
        if column in frame:
            frame[column] = frame[column].astype("Float64")
    for column in ("batch", "workers"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def _without(row: dict[str, Any], key: str) -> dict[str, Any]:
    """A row without `key`: records written before the rename of their net's column from config to
    net say `config`."""
    return {k: v for k, v in row.items() if k != key}


TITLES = {
    "throughput": "Throughput (train: forward, loss, backward, SGD step; infer: forward)",
    "overhead": "Overhead: our training step vs a bare PyTorch loop (ratio of throughputs, interleaved)",
    "data": "Data: the loader alone (read, decode, augment) vs training throughput, per source",
    "eval": "Evaluation cost per image at the jitter test scales",
}


def _for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """Widths as 0.125 (not 0.12), small rates with three significant digits, MFU as a percentage."""
    frame = frame.copy()
    if "width" in frame:
        frame["width"] = frame["width"].map(lambda w: f"{w:g}")
    if "gflops" in frame:
        frame["gflops"] = frame["gflops"].map(lambda v: f"{v:,.0f}" if v >= 100 else f"{v:.3g}")
    for column in ("step_ratio", "data_ratio", "augment_over_train", "time_vs_dense", "macs_vs_dense"):
        if column in frame:
            frame[column] = frame[column].map(lambda v: "-" if v is None or v != v else f"{v:.3g}")
    if "data_share_of_step" in frame:
        frame["data_share_of_step"] = frame["data_share_of_step"].map(
            lambda v: "-" if v is None or v is pd.NA or v != v else f"{100 * v:.1f}%"
        )
    if "first_decode_s" in frame:
        frame["first_decode_s"] = frame["first_decode_s"].map(
            lambda v: "-" if v is None or v is pd.NA or v != v else f"{v:.1f}"
        )
    if "mfu" in frame:
        frame["mfu"] = frame["mfu"].map(lambda v: "n/a" if v is None or v is pd.NA else f"{100 * v:.1f}%")
    return frame


def render_bench(record: dict[str, Any], fmt: str = "table") -> str:
    """The record as terminal tables, Markdown or LaTeX (a section per part), as JSON (the record),
    or as CSV (one table of every part's rows, a first column `part` naming each row's)."""
    if fmt == "json":
        return json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
    if fmt == "csv":
        sections = [(part, bench_frame([record], part)) for part in COLUMNS]
        return render_sections([(part, frame) for part, frame in sections if len(frame)], "csv", key="part")
    out = []
    load = record["machine"].get("load_average")
    header = f"Machine: {record['machine_name']}; torch {record['torch_version']}; {record['created']}" + (
        f"; load average {load[0]:.2f} at the start" if load else ""
    )
    out.append({"markdown": f"**{header}**\n", "latex": f"% {header}\n"}.get(fmt, header + "\n"))
    for part in COLUMNS:
        frame = bench_frame([record], part)
        if not len(frame):
            continue
        frame = _for_display(frame.drop(columns=["machine"])).rename(columns=HEADERS)
        if fmt == "markdown":
            out.append(f"#### {TITLES[part]}\n\n" + render(frame, "markdown"))
        else:
            out.append(render(frame, fmt, TITLES[part]))
    for note in record.get("notes", []):
        out.append(f"{'% ' if fmt == 'latex' else ''}note: {note}\n")
    return "\n".join(out)
