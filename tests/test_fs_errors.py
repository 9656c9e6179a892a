"""File-system faults and file modes: a regular file where a folder should be, a read-only store,
a full disk, and the umask.

Oracles: the one-line message names the exact path, the reason and the fix, with exit 2; after a
failed write the old file's bytes are unchanged and no temporary file is left; the modes are
exactly 0666 or 0777 less the umask.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import pytest
from conftest import assert_one_line_error, train_argv

from vggbench import store
from vggbench.fs import FileSystemError
from vggbench.train import TrainConfig, train

TRAIN = train_argv("--quiet", limit_train=32, limit_val=16, batch=16, epochs=1)
ABLATE = ["ablate", "lrn", "--preset", "smoke", "--seeds", "1", "--epochs", "1", "--quiet"]
ABLATE += ["--limit-train", "64", "--limit-val", "16", "--device", "cpu"]
BENCH = ["bench", "--config", "A", "--width", "0.03125", "--crop", "32", "--batch", "4", "--steps", "1"]
BENCH += ["--warmup", "0", "--repeats", "1", "--eval-images", "1", "--parts", "infer", "--device", "cpu"]
TINY = dict(
    net="A", width=1 / 16, crop=32, data="synthetic", limit_train=32, limit_val=16, batch_size=16, epochs=1
)

# argv (FILE: the regular file, ROOT: a good folder), and the path the message names: the folder
# that could not be made (RUN: a run id, the folder of the run's lock, which train takes first)
IN_THE_WAY = {
    "train --results-dir": ([*TRAIN, "--results-dir", "FILE"], "FILE/checkpoints/RUN"),
    "ablate --results-dir": ([*ABLATE, "--results-dir", "FILE"], "FILE/checkpoints/RUN"),
    "bench --results-dir": ([*BENCH, "--results-dir", "FILE"], "FILE/bench"),
    "report --results-dir": (["report", "--no-plots", "--results-dir", "FILE"], "FILE"),
    "report --out": (["report", "--no-plots", "--results-dir", "ROOT", "--out", "FILE"], "FILE"),
    "report --out below a file": (
        ["report", "--no-plots", "--results-dir", "ROOT", "--out", "FILE/out"],
        "FILE/out",
    ),
    "params --write": (["params", "--write", "FILE"], "FILE"),
    "runs export --out": (["runs", "export", "--results-dir", "ROOT", "--out", "FILE/x.csv"], "FILE"),
}


def _fill(argv: list[str], tmp_path: Path) -> list[str]:
    return [a.replace("FILE", str(tmp_path / "file")).replace("ROOT", str(tmp_path / "root")) for a in argv]


@pytest.mark.parametrize("argv, named", IN_THE_WAY.values(), ids=IN_THE_WAY.keys())
def test_a_regular_file_where_a_folder_goes_is_one_line(cli, tmp_path, argv, named):
    (tmp_path / "file").write_text("keep me\n")
    (tmp_path / "root").mkdir()
    if argv[0] == "report":  # report refuses a store with no records before it writes
        train(TrainConfig(**TINY), results_dir=tmp_path / "root", device="cpu", quiet=True)
    result = cli(*_fill(argv, tmp_path))
    assert_one_line_error(
        result, f"{tmp_path / 'file'} is a file, not a folder", "; choose a writable --results-dir / --out"
    )
    named = re.escape(_fill([named], tmp_path)[0]).replace("RUN", "[0-9a-f]{12}")
    assert re.search(f"cannot write {named}: ", result.err), result.err
    assert (tmp_path / "file").read_text() == "keep me\n"


def test_bench_without_saving_needs_no_writable_store(cli, tmp_path):
    (tmp_path / "file").write_text("keep me\n")
    result = cli(*BENCH, "--no-save", "--format", "json", "--results-dir", str(tmp_path / "file"))
    assert result.code == 0, result.err
    assert (tmp_path / "file").read_text() == "keep me\n"


@pytest.fixture
def read_only_store(tmp_path):
    """A store holding one run, its folders made 0555 (restored afterwards so pytest can clean up)."""
    if os.geteuid() == 0:
        pytest.skip("root ignores file modes")
    root = tmp_path / "store"
    record = train(TrainConfig(**TINY), results_dir=root, device="cpu", quiet=True)
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    yield root, record
    for folder in folders:
        folder.chmod(0o755)


READ_ONLY = {
    "train": ([*TRAIN, "--epochs", "2"], "checkpoints"),
    "report": (["report", "--no-plots"], "table2.md"),
    "ablate": (ABLATE, "checkpoints"),  # the first run's lock
    "eval": (["eval", "RUN", "--device", "cpu"], "evals"),
    "bench": (BENCH, "bench"),
    "params --write": (["params", "--write", "STORE"], "table2.md"),
}


@pytest.mark.parametrize("argv, named", READ_ONLY.values(), ids=READ_ONLY.keys())
def test_a_read_only_store_is_one_line(cli, read_only_store, argv, named):
    root, record = read_only_store
    argv = [a.replace("RUN", record.id).replace("STORE", str(root)) for a in argv]
    if "--write" not in argv:
        argv += ["--results-dir", str(root)]
    assert_one_line_error(
        cli(*argv), f"cannot write {root / named}", "Permission denied", "choose a writable --results-dir"
    )


def test_a_stored_run_is_found_in_a_read_only_store(cli, read_only_store):
    root, record = read_only_store
    result = cli(*TRAIN, "--results-dir", str(root))
    assert result.code == 0 and f"run {record.id} (stored" in result.out


@pytest.fixture
def full_disk(monkeypatch):
    """Every fsync fails as on a full disk, after the bytes went into the temporary file."""

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.os, "fsync", no_space)


def test_a_full_disk_leaves_the_old_record_whole_and_no_temporary_file(tmp_path, full_disk):
    folder = tmp_path / "runs"
    folder.mkdir()
    old = folder / "abc.json"
    old.write_text('{"old": true}\n')
    with pytest.raises(FileSystemError) as caught:
        store.write_record(tmp_path, "runs", "abc", {"new": True})
    assert str(caught.value) == (
        f"cannot write {old}: {os.strerror(errno.ENOSPC)}; choose a writable --results-dir / --out"
    )
    assert old.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in folder.iterdir()) == ["abc.json"]


def test_a_full_disk_under_runs_export_is_one_line(cli, tmp_path, full_disk):
    out = tmp_path / "records.csv"
    out.write_text("old,export\n")
    assert_one_line_error(
        cli("runs", "export", "--results-dir", str(tmp_path), "--out", str(out)),
        f"cannot write {out}: {os.strerror(errno.ENOSPC)}; choose a writable",
    )
    assert out.read_text() == "old,export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.csv"]


def test_an_unreadable_record_is_one_line(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "abc.json").write_text("{}")

    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(
        FileSystemError, match=f"^cannot read {folder / 'abc.json'}: Permission denied; check"
    ):
        store.read_records(tmp_path, "runs")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _stop_after_first_epoch(end) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("umask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_records_checkpoints_and_reports_follow_the_umask(cli, tmp_path, umask, file_mode, folder_mode):
    previous = os.umask(umask)
    try:
        config = TrainConfig(**{**TINY, "epochs": 2})
        with pytest.raises(KeyboardInterrupt):
            train(
                config, results_dir=tmp_path, device="cpu", quiet=True, on_epoch_end=_stop_after_first_epoch
            )
        folder = tmp_path / "checkpoints" / config.run_id
        last = _mode(folder / "last.pt")
        record = train(config, results_dir=tmp_path, device="cpu", quiet=True, resume=True)
        assert cli("report", "--no-plots", "--results-dir", str(tmp_path)).code == 0
    finally:
        os.umask(previous)
    assert last == file_mode
    assert _mode(tmp_path / "runs" / f"{record.id}.json") == file_mode
    assert _mode(tmp_path / record.checkpoint) == file_mode
    assert _mode(tmp_path / "REPORT.md") == file_mode
    assert _mode(tmp_path / "tables" / "table2.tex") == file_mode
    assert _mode(folder) == folder_mode
