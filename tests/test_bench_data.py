"""`bench --parts data` over image folders: the generated JPEG folders (count, sizes, aspect,
determinism), the rows per source (streamed, cached; GPU-decoded on a GPU), the data-share
formula, bad input. Timings are never asserted here (they live in tests/benchmarks/ and the README)."""

from __future__ import annotations

import hashlib

import pytest
import torch
from conftest import assert_one_line_error
from PIL import Image

from vggbench.bench import measure as bench_measure
from vggbench.bench import run as bench_run
from vggbench.bench import tables as bench_tables
from vggbench.data.synthetic import class_names, write_jpeg_folder

TINY = dict(steps=1, warmup=0, repeats=1, eval_images=1, device="cpu", workers=0)


def _digests(root):
    return {
        p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.jpg"))
    }


def test_a_generated_folder_has_its_count_sides_aspects_and_is_deterministic(tmp_path):
    root = write_jpeg_folder(tmp_path / "a", 40, (20, 30), num_classes=4, seed=3, val=8, max_aspect=4 / 3)
    train = sorted((root / "train").rglob("*.jpg"))
    assert len(train) == 40 and len(list((root / "val").rglob("*.jpg"))) == 8
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(class_names(4))
    assert all(len(list((root / "train" / name).iterdir())) == 10 for name in class_names(4))  # balanced
    for path in train:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            width, height = image.size
        assert 20 <= height <= 30 and height <= width <= height * 4 / 3  # shorter side, photo aspect
    same = dict(num_classes=4, val=8, max_aspect=4 / 3)
    assert _digests(root) == _digests(write_jpeg_folder(tmp_path / "b", 40, (20, 30), seed=3, **same))
    assert _digests(root) != _digests(write_jpeg_folder(tmp_path / "c", 40, (20, 30), seed=4, **same))
    square = write_jpeg_folder(tmp_path / "d", 8, (24, 24), num_classes=2)  # CIFAR's shape
    assert {Image.open(p).size for p in square.rglob("*.jpg")} == {(24, 24)}


def test_data_share_is_data_time_over_data_plus_step_time():
    # 300 img/s of data and 100 img/s of training: 1/300 s + 1/100 s per image, data 1/4 of it
    assert bench_measure.data_share(300.0, 100.0) == pytest.approx(0.25)
    assert bench_measure.data_share(100.0, 100.0) == pytest.approx(0.5)
    assert bench_measure.data_share(100.0, None) is None


@pytest.fixture(scope="module")
def folder_record(tmp_path_factory):
    folder = write_jpeg_folder(tmp_path_factory.mktemp("folder"), 48, (32, 48), num_classes=4, val=4)
    options = bench_measure.BenchOptions(**TINY, folders=(str(folder),))
    return folder, bench_run.run_bench(bench_run.cases(["A"], [1 / 32], [32], [8]), options, ["data"])


def test_a_folder_is_measured_streamed_and_cached(folder_record):
    folder, record = folder_record
    rows = record["data"]
    sources = [row["source"] for row in rows]
    expected = [bench_measure.IN_MEMORY_SOURCE, bench_measure.STREAMED_SOURCE]
    expected += [bench_measure.GPU_DECODED_SOURCE] if torch.cuda.is_available() else []
    assert sources == [*expected, bench_measure.CACHED_SOURCE]
    streamed, cached = rows[1], rows[-1]
    assert streamed["folder"] == cached["folder"] == str(folder)
    assert streamed["images"] == cached["images"] == 48 and streamed["workers"] == 0
    assert streamed["first_decode_s"] is None and cached["first_decode_s"] > 0
    assert not record["train"]  # data alone was asked for: the training rate is measured, not listed
    for row in rows:
        assert row["augment_over_train"] == pytest.approx(
            row["augment_images_per_s"] / row["train_images_per_s"]
        )
        assert row["data_share_of_step"] == pytest.approx(
            bench_measure.data_share(row["augment_images_per_s"], row["train_images_per_s"])
        )


def test_the_data_table_shows_each_source(folder_record):
    _, record = folder_record
    frame = bench_tables.bench_frame([record], "data")
    assert list(frame["source"]) == [row["source"] for row in record["data"]]
    text = bench_tables.render_bench(record, "markdown")
    assert "folder, cached" in text and "data share of step" in text


def test_without_folders_the_generated_ones_are_measured(monkeypatch):
    monkeypatch.setattr(bench_measure, "GENERATED_FOLDERS", ((24, (32, 32), 1.0), (16, (40, 56), 4 / 3)))
    options = bench_measure.BenchOptions(**TINY)
    record = bench_run.run_bench(bench_run.cases(["A"], [1 / 32], [32], [8]), options, ["data"])
    labels = [row["folder"] for row in record["data"][1:]]
    assert labels == ["24 JPEGs at 32 px"] * 2 + ["16 JPEGs at 40-56 px"] * 2
    assert [row["images"] for row in record["data"][1:]] == [24, 24, 16, 16]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--data-folder", "/no/such/folder"], ["--data-folder /no/such/folder is not a folder"]),
        (["--workers", "-1"], ["--workers -1 must be at least 0"]),
    ],
)
def test_bad_data_options_are_one_line(cli, tmp_path, args, fragments):
    result = cli("bench", "--parts", "data", *args, "--no-save", "--results-dir", str(tmp_path))
    assert_one_line_error(result, *fragments)


def test_a_folder_over_the_cache_budget_has_no_cached_row_and_a_note(tmp_path, monkeypatch):
    from vggbench.data import cache

    monkeypatch.setattr(cache, "available_ram", lambda: 1)  # auto: half of 1 byte
    folder = write_jpeg_folder(tmp_path / "f", 16, (32, 32), num_classes=2, val=2)
    options = bench_measure.BenchOptions(**TINY, folders=(str(folder),))
    record = bench_run.run_bench(bench_run.cases(["A"], [1 / 32], [32], [8]), options, ["data"])
    assert [row["source"] for row in record["data"]][-1] == bench_measure.STREAMED_SOURCE
    assert any("exceed the cache budget" in note for note in record["notes"])
