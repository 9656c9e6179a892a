"""`vggbench bench` and vggbench.bench: record shape, out-of-memory halving, MFU arithmetic, machine
info, rendering, bad input. Timings are never asserted here (they live in tests/benchmarks/)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import assert_one_line_error
from test_counting import TOTAL_MACS_224

from vggbench import runtime
from vggbench.bench import measure as bench_measure
from vggbench.bench import run as bench_run
from vggbench.bench import tables as bench_tables
from vggbench.errors import VggbenchError
from vggbench.models import ModelSpec

#: The smallest useful point: A at width 1/32 (2 to 16 channels), crop 32.
TINY = dict(steps=1, warmup=0, repeats=1, eval_images=1, device="cpu", folders=())  # folders: test_bench_data
TINY_ARGS = [
    "--config",
    "A",
    "--width",
    "0.03125",
    "--crop",
    "32",
    "--batch",
    "4",
    "--steps",
    "1",
    "--warmup",
    "0",
    "--repeats",
    "1",
    "--eval-images",
    "1",
    "--device",
    "cpu",
]
ROW_KEYS = {"net", "width", "crop", "batch", "requested_batch", "halved"}


@pytest.fixture(scope="module")
def record():
    """One whole (tiny) bench run, every part, shared by the shape tests."""
    return bench_run.run_bench(
        bench_run.cases(["A"], [1 / 32], [32], [4]), bench_measure.BenchOptions(**TINY)
    )


# --- The record ------------------------------------------------------------------------------


def test_record_has_every_part_with_its_fields(record):
    assert record["kind"] == "bench"
    assert {"id", "created", "machine", "machine_name", "torch_version", "options", "notes"} <= set(record)
    assert record["options"]["device"] == "cpu" and record["options"]["parts"] == list(bench_run.PARTS)
    assert record["torch_version"] == torch.__version__
    (train,), (infer,), (overhead,), (data,) = (record[p] for p in ("train", "infer", "overhead", "data"))
    assert ROW_KEYS | {"mode", "images_per_s", "ms_per_step", "macs_per_image", "gflops", "mfu"} <= set(train)
    assert train["mode"] == "train" and infer["mode"] == "infer"
    assert train["batch"] == train["requested_batch"] == 4 and not train["halved"]
    assert train["macs_per_image"] == bench_measure.macs_per_image(ModelSpec("A", 10, 1 / 32, 32))
    assert train["images_per_s"] > 0 and infer["images_per_s"] > 0
    assert train["mfu"] is None  # CPU: not applicable
    assert any("MFU does not apply" in note for note in record["notes"])
    assert ROW_KEYS | {
        "bare_images_per_s",
        "ours_images_per_s",
        "ours_data_images_per_s",
        "step_ratio",
        "data_ratio",
    } <= set(overhead)
    assert overhead["step_ratio"] > 0 and overhead["data_ratio"] > 0
    assert data["augment_images_per_s"] > 0
    assert data["augment_over_train"] == pytest.approx(data["augment_images_per_s"] / train["images_per_s"])


def test_evaluation_rows_compare_dense_multi_crop_and_both(record):
    rows = {row["method"]: row for row in record["eval"]}
    assert list(rows) == ["dense", "multi-crop", "multi-crop+dense"]
    assert all(
        row["test_scales"] == [256, 384, 512] and row["test_scales_px"] == [37, 55, 73]
        for row in rows.values()
    )
    assert rows["dense"]["forward_passes_per_image"] == 6  # 3 scales x 2 flips
    assert rows["multi-crop"]["forward_passes_per_image"] == 150  # 3 scales x 25 crops x 2 flips
    assert (
        rows["multi-crop+dense"]["macs_per_image"]
        == rows["dense"]["macs_per_image"] + rows["multi-crop"]["macs_per_image"]
    )
    assert rows["dense"]["time_vs_dense"] == 1.0 and rows["dense"]["macs_vs_dense"] == 1.0
    assert rows["multi-crop"]["macs_vs_dense"] > 5


def test_record_is_plain_json(record):
    assert json.loads(bench_tables.render_bench(record, "json")) == json.loads(
        json.dumps(record, default=str)
    )


def test_markdown_renders_a_table_per_part_and_names_the_machine(record):
    text = bench_tables.render_bench(record, "markdown")
    assert record["machine_name"] in text
    for title in bench_tables.TITLES.values():
        assert title in text
    assert "| net" in text and "|:" in text


def test_bench_frame_for_the_report(record):
    frame = bench_tables.bench_frame([record, {"kind": "eval"}])
    assert list(frame["mode"]) == ["train", "infer"]
    assert {"machine", "device", "options", "net", "images_per_s", "mfu"} <= set(frame.columns)
    assert set(frame["options"]) == {"eager fp32"}
    assert len(bench_tables.bench_frame([record], "eval")) == 3
    assert len(bench_tables.bench_frame([], "overhead")) == 0
    with pytest.raises(VggbenchError, match="unknown bench table"):
        bench_tables.bench_frame([record], "nope")


def test_cli_prints_json_and_saves_the_same_record(cli, tmp_path):
    result = cli("bench", *TINY_ARGS, "--parts", "train", "--format", "json", "--results-dir", str(tmp_path))
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    assert printed["train"] and not printed["infer"] and not printed["eval"]
    (saved,) = (tmp_path / "bench").glob("*.json")
    assert json.loads(saved.read_text()) == printed
    assert f"wrote {saved}" in result.err


def test_cli_no_save_writes_nothing(cli, tmp_path):
    result = cli(
        "bench",
        *TINY_ARGS,
        "--parts",
        "infer",
        "--format",
        "markdown",
        "--no-save",
        "--results-dir",
        str(tmp_path),
        "--config",
        "A,B",
    )
    assert result.code == 0, result.err
    assert not (tmp_path / "bench").exists()
    rows = [line for line in result.out.splitlines() if line.startswith("| cpu")]
    assert len(rows) == 2 and all("| infer " in row for row in rows)


# --- Out of memory ---------------------------------------------------------------------------


def fake_oom(limit: int):
    """A measure that runs out of memory above `limit` images, recording the batches it was given."""
    tried = []

    def measure(batch: int) -> str:
        tried.append(batch)
        if batch > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return f"ran {batch}"

    return measure, tried


def test_out_of_memory_halves_the_batch_and_says_so():
    measure, tried = fake_oom(limit=50)
    notes: list[str] = []
    assert bench_measure.with_oom_halving(measure, 256, notes, "train D") == ("ran 32", 32)
    assert tried == [256, 128, 64, 32]
    assert notes == [
        "train D: batch 256 ran out of memory; halved to 128",
        "train D: batch 128 ran out of memory; halved to 64",
        "train D: batch 64 ran out of memory; halved to 32",
    ]


def test_cpu_allocator_failure_counts_as_out_of_memory():
    assert bench_measure.is_out_of_memory(
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1")
    )
    assert bench_measure.is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not bench_measure.is_out_of_memory(RuntimeError("shape mismatch"))


def test_other_errors_propagate_and_batch_one_oom_is_a_clear_error():
    def broken(batch: int) -> None:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        bench_measure.with_oom_halving(broken, 8)
    measure, tried = fake_oom(limit=0)
    with pytest.raises(VggbenchError, match="out of memory even at batch 1"):
        bench_measure.with_oom_halving(measure, 4)
    assert tried == [4, 2, 1]


def test_a_measurement_that_runs_out_of_memory_reports_the_halved_batch(monkeypatch, cli):
    real = bench_measure.synthetic_batch

    def oom_above_8(spec, batch, device, options):
        if batch > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real(spec, batch, device, options)

    monkeypatch.setattr(bench_measure, "synthetic_batch", oom_above_8)
    args = [a if a != "4" else "32" for a in TINY_ARGS]  # --batch 32
    result = cli("bench", *args, "--parts", "train,infer", "--format", "json", "--no-save")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    for row in out["train"] + out["infer"]:
        assert (row["requested_batch"], row["batch"], row["halved"]) == (32, 8, True)
    assert "train A width 0.03125 crop 32: batch 32 ran out of memory; halved to 16" in out["notes"]
    assert "train A width 0.03125 crop 32: batch 16 ran out of memory; halved to 8" in out["notes"]


# --- MFU -------------------------------------------------------------------------------------


def test_mfu_is_images_per_second_times_six_macs_over_the_peak():
    assert bench_measure.mfu(1000, 1e9, 6e12) == pytest.approx(1.0)
    assert bench_measure.mfu(500, 2e9, 12e12) == pytest.approx(0.5)
    assert bench_measure.training_flops_per_image(7) == 42
    assert bench_measure.mfu(1000, 1e9, None) is None


def test_the_issue_goal_d_at_224_on_an_h100():
    """D at 224: 15.47 GMACs; 40% of 989 TFLOP/s is about 4,260 img/s."""
    macs = bench_measure.macs_per_image(ModelSpec("D", 1000, 1.0, 224))
    assert macs == TOTAL_MACS_224["D"]
    peak = bench_measure.peak_bf16_flops("NVIDIA H100 80GB HBM3")
    assert peak == 989e12
    assert bench_measure.mfu(4260, macs, peak) == pytest.approx(4260 * 6 * 15_470_264_320 / 989e12)
    assert bench_measure.mfu(4260, macs, peak) == pytest.approx(0.40, abs=0.001)


@pytest.mark.parametrize(
    "name, peak",
    [
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H200", 989e12),
        ("NVIDIA A100-SXM4-80GB", 312e12),
        ("NVIDIA L40S", 362e12),
        ("NVIDIA L4", 121e12),
        ("Tesla T4", None),
        (None, None),
        ("", None),
    ],
)
def test_peak_table_by_device_name(name, peak):
    assert bench_measure.peak_bf16_flops(name) == peak


def test_no_mfu_without_a_peak_on_a_gpu(monkeypatch):
    monkeypatch.setattr(bench_measure, "peak_bf16_flops", lambda name: None)
    assert bench_measure.mfu(100.0, 1e9, bench_measure.peak_bf16_flops("Mystery GPU")) is None


# --- Machine, timing helpers, options ----------------------------------------------------------


def test_machine_info_names_cpu_cores_gpu_and_torch():
    info = runtime.machine_info(torch.device("cpu"))
    assert {
        "cpu",
        "cores",
        "torch_threads",
        "gpu",
        "gpu_count",
        "device",
        "platform",
        "python",
        "torch",
        "cuda",
        "load_average",
    } <= set(info)
    assert isinstance(info["cpu"], str) and info["cpu"]
    assert info["cores"] >= 1 and info["torch"] == torch.__version__ and info["device"] == "cpu"
    if not torch.cuda.is_available():
        assert info["gpu"] is None and info["gpu_count"] == 0
    assert info["cpu"] in runtime.machine_name(info) and "cores" in runtime.machine_name(info)
    gpu = {**info, "device": "cuda:0", "gpu": "NVIDIA H100 80GB HBM3"}
    assert runtime.machine_name(gpu).startswith("NVIDIA H100 80GB HBM3")


def test_interleaved_alternates_the_order_and_the_ratio_pairs_repeats():
    calls = []
    steps = {"bare": lambda: calls.append("bare"), "ours": lambda: calls.append("ours")}
    seconds = bench_measure.interleaved(steps, n_steps=1, warmup=1, repeats=4, device=torch.device("cpu"))
    assert calls == ["bare", "ours"] + ["bare", "ours", "ours", "bare", "bare", "ours", "ours", "bare"]
    assert all(len(v) == 4 for v in seconds.values())
    # ours twice as slow in every pair except one outlier: the median pair ratio ignores it
    assert bench_measure.paired_ratio([2.0, 2.0, 4.0, 2.0, 0.5], [1.0, 1.0, 1.0, 1.0, 1.0]) == 0.5


def test_parse_lists_and_cases():
    assert bench_run.parse_list(["A,D", " E ", "A"], str, "config") == ["A", "D", "E"]
    assert bench_run.parse_list("0.125,0.25", float, "width") == [0.125, 0.25]
    assert [c.batch for c in bench_run.cases(["A"], [0.125], [32], [64, 128])] == [64, 128]
    assert bench_run.parse_parts(["train,eval"]) == ["train", "eval"]
    assert bench_run.parse_parts(None) == list(bench_run.PARTS)


def test_resolve_device():
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert runtime.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--config", "Z"], ["unknown config 'Z'"]),
        (["--width", "wide"], ["--width", "'wide'"]),
        (["--crop", "30"], ["crop/size 30", "multiple of 32"]),
        (["--batch", "0"], ["batch 0"]),
        (["--batch", "x"], ["--batch", "'x'"]),
        (["--steps", "0"], ["steps 0"]),
        (["--warmup", "-1"], ["warmup -1"]),
        (["--threads", "0"], ["threads 0"]),
        (["--parts", "fast"], ["unknown bench part 'fast'"]),
        (["--format", "xml"], ["unknown format 'xml'", "table, markdown, latex, json, csv"]),
        (["--device", "tpu"], ["unknown device 'tpu'"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, fragments):
    result = cli("bench", *args, "--no-save", "--results-dir", str(tmp_path))
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "bench").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(cli):
    assert_one_line_error(cli("bench", "--device", "cuda", "--no-save"), "no CUDA GPU")
