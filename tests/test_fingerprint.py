"""Data fingerprints and run ids: a changed ImageFolder trains a new run, eval of an old run on
changed data says so, the same packaged files elsewhere keep their id; data options that do not
apply, single-class folders and oversized --limit-val.

Oracles: fingerprints compared before and after a known change (equal when nothing changed, different
after one image is replaced, a class added or an mtime moved); the run ids of configs that must agree."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from conftest import assert_one_line_error, write_fashion_mnist
from imagefolders import write_class, write_image_folder

from vggbench import store
from vggbench.data import fingerprint, load_dataset, synthetic
from vggbench.data.sources import SYNTHETIC_COUNT, data_fingerprint, is_image_name
from vggbench.train import TrainConfig

CLASSES = ["a", "b", "c"]
TINY_TRAIN = [
    "train",
    "--width",
    "0.0625",
    "--crop",
    "32",
    "--epochs",
    "1",
    "--batch",
    "4",
    "--device",
    "cpu",
    "--quiet",
    "--format",
    "json",
]


@pytest.fixture
def folder(tmp_path):
    return write_image_folder(tmp_path / "folder", CLASSES, train=4, val=2)


def spec(root) -> str:
    return f"imagefolder:{root}"


def bump_mtime(path, by_ns: int = 10**9) -> None:
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + by_ns))


# --- Folder fingerprints ---------------------------------------------------------------------------


def test_a_folder_fingerprint_changes_with_its_images_only(folder):
    first = data_fingerprint(spec(folder))
    assert data_fingerprint(spec(folder)) == first == data_fingerprint(spec(folder), fresh=True)
    (folder / "train" / "a" / "notes.txt").write_text("not an image")  # not a file the loader reads
    assert data_fingerprint(spec(folder)) == first
    image = folder / "train" / "b" / "0.png"
    image.unlink()  # a class's image replaced by another file: its directory's mtime moves
    write_class(folder / "train" / "b", 1, seed=99)
    replaced = data_fingerprint(spec(folder))
    assert replaced != first
    write_class(folder / "train" / "d", 4)  # a class added
    added = data_fingerprint(spec(folder))
    assert len({first, replaced, added}) == 3


def test_an_image_rewritten_in_place_is_seen_by_a_fresh_scan(folder):
    before = data_fingerprint(spec(folder))
    image = folder / "val" / "c" / "1.png"
    image.write_bytes(image.read_bytes())  # rewritten in place: no directory's mtime moves
    bump_mtime(image)
    bump_mtime(image.parent, 0)  # (as it was)
    assert data_fingerprint(spec(folder), fresh=True) != before
    fingerprint.forget()
    assert data_fingerprint(spec(folder)) == data_fingerprint(spec(folder), fresh=True)


def test_a_folder_copied_with_its_mtimes_keeps_its_fingerprint_and_run_id(folder, tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(folder, copy)  # copy2: sizes and mtimes kept
    assert data_fingerprint(spec(copy)) == data_fingerprint(spec(folder))
    assert TrainConfig(data=spec(copy)).run_id == TrainConfig(data=spec(folder)).run_id
    bump_mtime(copy / "train" / "a" / "0.png")  # in place: seen by a fresh scan (as train() does)
    moved = TrainConfig(data=spec(copy)).resolved(fresh=True)
    assert moved.run_id != TrainConfig(data=spec(folder)).run_id


def test_the_scan_counts_what_the_loader_loads(folder):
    scan = fingerprint.folder_scan(folder, ("train", "val"), is_image_name)
    data = load_dataset(spec(folder))
    assert scan.counts == {"train": len(data.train), "val": len(data.val)} == {"train": 12, "val": 6}


def test_folder_images_fingerprint_follows_files_labels_and_subsets(folder):
    images = load_dataset(spec(folder)).train
    first = images.fingerprint()
    assert load_dataset(spec(folder)).train.fingerprint() == first
    assert images.subset(np.arange(6)).fingerprint() != first
    bump_mtime(images.paths[3])
    assert images.fingerprint() != first


# --- Packaged and synthetic sets ----------------------------------------------------------------------


def test_packaged_files_keep_their_id_in_another_data_root_and_change_it_with_their_bytes(tmp_path):
    raw = write_fashion_mnist(tmp_path / "one")
    other = tmp_path / "two" / "FashionMNIST" / "raw"
    shutil.copytree(raw, other, copy_function=shutil.copyfile)  # other mtimes, same bytes
    bump_mtime(other / "t10k-labels-idx1-ubyte.gz")
    one, two = (TrainConfig(data="fashion-mnist", data_root=str(tmp_path / r)) for r in ("one", "two"))
    fingerprints = [c.to_dict()["data_fingerprint"] for c in (one, two)]
    assert one.run_id == two.run_id and fingerprints[0] == fingerprints[1] is not None
    changed = write_fashion_mnist(tmp_path / "three", seed=1)
    three = TrainConfig(data="fashion-mnist", data_root=str(changed.parent.parent))
    assert three.to_dict()["data_fingerprint"] != fingerprints[0]
    assert three.run_id != one.run_id  # other bytes: another run


def test_the_synthetic_fingerprint_is_its_generators(monkeypatch):
    first = data_fingerprint("synthetic")
    assert first == fingerprint.params_fingerprint(
        generator=synthetic.GENERATOR_VERSION, seed=0, size=64, classes=10, count=SYNTHETIC_COUNT
    )
    before = TrainConfig().run_id
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    assert data_fingerprint("synthetic") != first and TrainConfig().run_id != before


def test_a_generated_set_whose_generator_changed_trains_a_new_run(cli, tmp_path, monkeypatch):
    argv = [*TINY_TRAIN, "--data", "synthetic", "--results-dir", str(tmp_path)]
    first = cli(*argv)
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    again = cli(*argv, "--format", "json")
    assert first.code == again.code == 0, again.err
    assert "(stored" not in again.out and len(list((tmp_path / "runs").glob("*.json"))) == 2


def test_a_stored_config_keeps_the_fingerprint_it_trained_on(folder):
    config = TrainConfig(data=spec(folder))  # unresolved: its id follows the files
    before, stored = config.run_id, TrainConfig.from_dict(config.to_dict())
    write_class(folder / "train" / "d", 4)
    assert stored.run_id == before != config.run_id == TrainConfig(data=spec(folder)).run_id


# --- --limit-val above the set ------------------------------------------------------------------------


def test_a_limit_of_at_least_the_split_is_the_run_without_it():
    n_val = SYNTHETIC_COUNT[1]
    assert TrainConfig(limit_val=10**6).run_id == TrainConfig(limit_val=n_val).run_id == TrainConfig().run_id
    assert TrainConfig(limit_val=n_val - 1).run_id != TrainConfig().run_id
    said = []
    assert TrainConfig(limit_val=10**6).resolved(said.append).limit_val is None
    assert said == [
        f"--limit-val 1000000 is more than the {n_val} val images of synthetic: "
        "using all 128 (the run is the one without --limit-val)"
    ]


def test_train_says_once_that_limit_val_exceeds_the_set(cli, tmp_path):
    argv = [*TINY_TRAIN, "--data", "synthetic", "--limit-train", "8", "--results-dir", str(tmp_path)]
    argv.remove("--quiet")
    result = cli(*argv, "--limit-val", "1000000")
    assert result.code == 0, result.err
    notes = [line for line in result.err.splitlines() if "--limit-val" in line]
    assert notes == [
        "note: --limit-val 1000000 is more than the 128 val images of synthetic: using all 128 "
        "(the run is the one without --limit-val)"
    ]
    record = json.loads(result.out)
    assert record["val_images"] == 128 and record["config"]["limit_val"] is None
    assert json.loads(cli(*argv).out)["id"] == record["id"]


def test_eval_says_once_that_limit_val_exceeds_the_set_and_records_no_limit(cli, tmp_path):
    argv = [*TINY_TRAIN, "--data", "synthetic", "--limit-train", "8", "--results-dir", str(tmp_path)]
    run = json.loads(cli(*argv).out)["id"]
    evaluate = ["eval", run, "--method", "center", "--device", "cpu", "--format", "json"]
    evaluate += ["--results-dir", str(tmp_path)]
    above = cli(*evaluate, "--limit-val", "1000000")
    assert above.code == 0, above.err
    notes = [line for line in above.err.splitlines() if "--limit-val" in line]
    assert notes == [
        "note: --limit-val 1000000 is more than the 128 val images of synthetic: using all 128 "
        "(the evaluation is the one without --limit-val)"
    ]
    (record,) = json.loads(above.out)
    assert record["limits"]["limit_val"] is None and record["images"] == 128
    (without,) = json.loads(cli(*evaluate).out)
    assert without["id"] == record["id"]
    (below,) = json.loads(cli(*evaluate, "--limit-val", "64").out)
    assert below["limits"]["limit_val"] == 64 and below["images"] == 64 and below["id"] != record["id"]


# --- End to end: a changed folder trains a new run; eval of the old run says the data changed --------


def test_a_changed_folder_trains_a_new_run_and_eval_of_the_old_says_so(cli, folder, tmp_path):
    results = tmp_path / "results"
    argv = [*TINY_TRAIN, "--data", spec(folder), "--results-dir", str(results)]
    first = json.loads(cli(*argv).out)
    assert first["data_fingerprint"] == data_fingerprint(spec(folder)) == first["config"]["data_fingerprint"]
    assert json.loads(cli(*argv).out)["created"] == first["created"]  # reused while nothing changed
    for image in (folder / "train" / "c").iterdir():  # class c's images replaced
        image.unlink()
    write_class(folder / "train" / "c", 4, seed=7)
    second = json.loads(cli(*argv).out)
    assert second["id"] != first["id"] and second["data_fingerprint"] != first["data_fingerprint"]
    assert {r.id for r in store.read_runs(results)} == {first["id"], second["id"]}
    evaluated = cli(
        "eval",
        first["id"],
        "--method",
        "center",
        "--results-dir",
        str(results),
        "--quiet",
        "--format",
        "json",
    )
    assert evaluated.code == 0, evaluated.err
    notes = [line for line in evaluated.err.splitlines() if "changed since it trained" in line]
    assert len(notes) == 1 and notes[0].startswith(f"note: the data of run {first['id']} changed")
    quiet = cli("eval", second["id"], "--method", "center", "--results-dir", str(results), "--quiet")
    assert quiet.code == 0 and "changed since" not in quiet.err
    write_class(folder / "train" / "d", 4)  # a class added
    write_class(folder / "val" / "d", 2)
    third = json.loads(cli(*argv).out)
    assert third["id"] not in (first["id"], second["id"]) and third["classes"] == [*CLASSES, "d"]


# --- Bad input ---------------------------------------------------------------------------------------


@pytest.fixture
def one_class(tmp_path):
    return write_image_folder(tmp_path / "one-class", ["only"], train=4, val=2)


@pytest.mark.parametrize(
    "options, fragments",
    [
        (["--data", "{one_class}"], ["has 1 class folder (only)", "at least 2"]),
        (["--data", "{one_class}", "--val-split", "0.5"], ["has 1 class folder"]),
        (["--data", "{folder}", "--data-root", "/data"], ["--data-root does not apply to imagefolder:PATH"]),
        (["--data", "synthetic", "--data-root", "/data"], ["--data-root does not apply to synthetic"]),
        (["--data-root", "/data"], ["--data-root does not apply to synthetic"]),
        (["--data", "synthetic", "--download"], ["--download does not apply to synthetic"]),
        (["--data", "{folder}", "--download"], ["--download does not apply to imagefolder:PATH"]),
        (["--data", "synthetic", "--skip-bad-images"], ["--skip-bad-images does not apply to synthetic"]),
        (["--data", "cifar10", "--skip-bad-images"], ["--skip-bad-images does not apply to cifar10"]),
        (["--data", "imagefolder:"], ["imagefolder: needs a path"]),
        (["--data", "imagenet"], ["unknown dataset 'imagenet'"]),
    ],
)
def test_data_identity_bad_input_is_one_line_and_exit_2(cli, tmp_path, folder, one_class, options, fragments):
    paths = {"{folder}": spec(folder), "{one_class}": spec(one_class)}
    argv = [paths.get(option, option) for option in options]
    result = cli(*TINY_TRAIN, "--results-dir", str(tmp_path / "results"), *argv)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "results" / "runs").exists()


def test_eval_data_root_on_an_image_folder_is_one_line(cli, tmp_path, folder):
    run = json.loads(cli(*TINY_TRAIN, "--data", spec(folder), "--results-dir", str(tmp_path)).out)
    result = cli("eval", run["id"], "--data-root", "/data", "--results-dir", str(tmp_path), "--quiet")
    assert_one_line_error(result, "--data-root does not apply to imagefolder:PATH")
