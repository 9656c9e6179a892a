"""Hostile input (issue 26), the library's part: data folders that would run code, special files as
outputs, locks that cannot be taken, corrupt stored state, a symlink loop as the store, a full disk
under torch.save.

Oracles: a bad case exits 2 with one line naming the file and the fix, no traceback, and writes
nothing (no payload's file, no store, no record; what was stored keeps its bytes). A special file
written to keeps its kind (a device stays a device, a FIFO a FIFO, a link a link). A corrupt cache
is said once ("corrupt: PATH (what), rebuilding") and rebuilt to exactly what a fresh build gives.
"""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, train_argv
from test_data import write_cifar
from test_runs_command import make_run

from vggbench import fs, locks, store
from vggbench.data import TensorImages, rgb_statistics
from vggbench.data.cache import CacheOptions, cache_files, cached_train_set
from vggbench.data.sources import load_dataset
from vggbench.errors import VggbenchError
from vggbench.locks import FileLock, LockError
from vggbench.models import VGG, ModelSpec
from vggbench.train import TrainConfig, checkpoint_dir, train

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
R1, R2 = "0123456789ab", "0123456789cd"
#: The tiny run of the checkpoint cases: as `train_argv(**TINY_CLI)` trains it.
TINY = dict(net="A", width=1 / 16, crop=32, data="synthetic", limit_train=32, limit_val=16, batch_size=16)
TINY_CLI = dict(limit_train=32, limit_val=16, batch=16)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- 1. CIFAR batches cannot run code ----------------------------------------------------------------


class _Payload:
    """Unpickles as `func(*args)`: what a crafted batch runs under plain pickle.load."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(mark: Path) -> dict[str, object]:
    """Payloads that each create the file `mark` when unpickled by plain pickle.load."""
    import builtins
    import functools

    return {
        "os.system": _Payload(os.system, f"touch {mark}"),
        "builtins.open": _Payload(builtins.open, str(mark), "w"),
        "builtins.exec": _Payload(builtins.exec, f"open({str(mark)!r}, 'w')"),
        "builtins.eval": _Payload(builtins.eval, f"open({str(mark)!r}, 'w')"),
        "subprocess.call": _Payload(subprocess.call, ["touch", str(mark)]),
        "functools.partial": _Payload(functools.partial(builtins.open, str(mark), "w")),
        "numpy object array": np.array([_Payload(builtins.open, str(mark), "w")], dtype=object),
    }


PAYLOADS = list(_payloads(Path("/nonexistent")))
CIFAR_TRAIN = ["--data", "cifar10", "--data-root", "{root}", "--results-dir", "{fresh}"]


def _cifar_with(tmp_path: Path, file: str, content: object) -> Path:
    """A CIFAR-10 folder under tmp_path/data whose `file` is the pickle of `content`."""
    root = tmp_path / "data"
    write_cifar(root)
    with open(root / "cifar-10-batches-py" / file, "wb") as handle:
        pickle.dump(content, handle)
    return root


def _weights(tmp_path: Path) -> Path:
    """A state dict of A at width 1/16 with 10 classes, for eval --checkpoint."""
    path = tmp_path / "weights.pt"
    torch.save(VGG(ModelSpec(net="A", width=1 / 16, num_classes=10, crop=32)).state_dict(), path)
    return path


def _cifar_commands(root: Path, fresh: Path, weights: Path) -> dict[str, list[str]]:
    return {
        "train": [
            *train_argv(**TINY_CLI, data="cifar10"),
            "--data-root",
            str(root),
            "--results-dir",
            str(fresh),
        ],
        "eval --checkpoint": [
            "eval",
            "--checkpoint",
            str(weights),
            "--config",
            "A",
            "--width",
            "0.0625",
            "--crop",
            "32",
            "--data",
            "cifar10",
            "--data-root",
            str(root),
            "--device",
            "cpu",
            "--results-dir",
            str(fresh),
        ],
    }


@pytest.mark.parametrize("command", ["train", "eval --checkpoint"])
@pytest.mark.parametrize("file", ["data_batch_1", "test_batch", "batches.meta"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_crafted_cifar_file_runs_nothing(cli, tmp_path, command, file, payload):
    mark = tmp_path / "pwned"
    root = _cifar_with(tmp_path, file, {"data": _payloads(mark)[payload], "labels": [0], "label_names": []})
    fresh = tmp_path / "fresh"
    argv = _cifar_commands(root, fresh, _weights(tmp_path))[command]
    path = root / "cifar-10-batches-py" / file
    assert_one_line_error(
        cli(*argv), f"cannot read CIFAR file {path}: it holds ", "refused", "download it again"
    )
    assert not mark.exists()  # the payload did not run
    assert not fresh.exists()  # and nothing was written


def _batch(**fields) -> dict:
    batch = {"data": np.zeros((4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
    return {**batch, **fields}


CIFAR_DAMAGE = {
    "a list": ("data_batch_1", [1, 2], "it holds a list, not a dict"),
    "no data": ("data_batch_1", {"labels": [0]}, "it has no 'data' entry"),
    "no labels": ("data_batch_1", {"data": np.zeros((1, 3072), np.uint8)}, "it has no 'labels' entry"),
    "float data": ("data_batch_1", _batch(data=np.zeros((4, 3072))), "not uint8 rows of 3072 pixels"),
    "3071 columns": ("data_batch_1", _batch(data=np.zeros((4, 3071), np.uint8)), "not uint8 rows of 3072"),
    "data a list": ("data_batch_1", _batch(data=[[0] * 3072] * 4), "not uint8 rows of 3072 pixels"),
    "1-d data": ("data_batch_1", _batch(data=np.zeros(3072 * 4, np.uint8)), "not uint8 rows of 3072"),
    "label 10": (
        "data_batch_1",
        _batch(labels=[0, 1, 2, 10]),
        "4 labels do not match its 4 images in [0, 10)",
    ),
    "label -1": ("test_batch", _batch(labels=[0, 1, -1, 3]), "labels do not match its 4 images in [0, 10)"),
    "3 labels": ("data_batch_2", _batch(labels=[0, 1, 2]), "its 3 labels do not match its 4 images"),
    "string labels": ("data_batch_1", _batch(labels="0123"), "its 'labels' is not a list of whole numbers"),
    "bool labels": ("data_batch_1", _batch(labels=[True] * 4), "its 'labels' is not a list of whole numbers"),
    "float labels": ("data_batch_1", _batch(labels=[0.0] * 4), "its 'labels' is not a list of whole numbers"),
    "names a string": (
        "batches.meta",
        {"label_names": "cat"},
        "its 'label_names' is not a list of class names",
    ),
    "no names": ("batches.meta", {"names": ["cat"]}, "it has no 'label_names' entry"),
    "numeric names": ("batches.meta", {"label_names": [1, 2]}, "is not a list of class names"),
}


@pytest.mark.parametrize("file, content, fragment", CIFAR_DAMAGE.values(), ids=CIFAR_DAMAGE.keys())
def test_a_cifar_file_of_another_shape_is_one_line(cli, tmp_path, file, content, fragment):
    root = _cifar_with(tmp_path, file, content)
    fresh = tmp_path / "fresh"
    result = cli(*_cifar_commands(root, fresh, _weights(tmp_path))["train"])
    assert_one_line_error(result, f"cannot read CIFAR file {root / 'cifar-10-batches-py' / file}: ", fragment)
    assert not fresh.exists()


CIFAR_BYTES = {
    "empty": b"",
    "truncated": pickle.dumps(_batch())[:100],
    "not a pickle": b"GIF89a not a pickle",
    "pickle protocol 99": b"\x80\x63",
}


@pytest.mark.parametrize("content", CIFAR_BYTES.values(), ids=CIFAR_BYTES.keys())
def test_a_cifar_file_that_is_no_pickle_is_one_line(cli, tmp_path, content):
    root = tmp_path / "data"
    write_cifar(root)
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(content)
    fresh = tmp_path / "fresh"
    result = cli(*_cifar_commands(root, fresh, _weights(tmp_path))["train"])
    assert_one_line_error(result, f"cannot read CIFAR file {root / 'cifar-10-batches-py' / 'data_batch_3'}: ")
    assert not fresh.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_pickles_of_every_protocol_load(tmp_path, protocol):
    """What the restricted unpickler admits covers numpy's pickles (protocol 2 is the original files')."""
    root = tmp_path / "data"
    first = write_cifar(root)
    folder = root / "cifar-10-batches-py"
    for file in ["data_batch_1", "batches.meta"]:
        content = pickle.loads((folder / file).read_bytes())
        (folder / file).write_bytes(pickle.dumps(content, protocol=protocol))
    data = load_dataset("cifar10", root=root)
    assert torch.equal(data.train.images[0], torch.from_numpy(first[0].reshape(3, 32, 32)))
    assert data.classes == [f"class{i}" for i in range(10)]


TORCH_PAYLOADS = {
    "os.system": (lambda mark: _Payload(os.system, f"touch {mark}"), "posix.system"),
    "builtins.open": (lambda mark: _Payload(open, str(mark), "w"), "io.open"),
    # pickle's protocol 2 (torch.save's) names subprocess.call by its Python 2 module
    "subprocess.call": (lambda mark: _Payload(subprocess.call, ["touch", str(mark)]), "commands.call"),
}


@pytest.mark.parametrize("command", ["eval --checkpoint", "train --resume"])
@pytest.mark.parametrize("payload, name", TORCH_PAYLOADS.values(), ids=TORCH_PAYLOADS.keys())
def test_a_torch_file_with_code_is_refused_naming_what_it_holds(cli, tmp_path, command, payload, name):
    """Checkpoints load weights only: a file holding a global is refused, and the message says so."""
    mark = tmp_path / "pwned"
    config = _tiny_config(epochs=2)
    root = tmp_path / "store"
    if command == "eval --checkpoint":
        path = tmp_path / "weights.pt"
        argv = ["eval", "--checkpoint", str(path), "--config", "A", "--width", "0.0625", "--crop", "32"]
        argv += ["--data", "synthetic", "--device", "cpu"]
    else:
        path = checkpoint_dir(root, config.run_id) / "last.pt"
        argv = train_argv("--quiet", "--resume", **TINY_CLI, epochs=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": payload(mark), "format": 2}, path)
    before = path.read_bytes()
    assert_one_line_error(
        cli(*argv, "--results-dir", str(root)),
        f"cannot read checkpoint {path}: it holds more than weights ({name}, refused: loading it could run",
    )
    assert not mark.exists() and path.read_bytes() == before
    assert not (root / "runs").exists() and not (root / "evals").exists()


# --- 2. Outputs of every file kind ---------------------------------------------------------------------


@pytest.fixture
def export_store(tmp_path) -> tuple[Path, str]:
    """A store holding one run, and the CSV `runs export` writes of it."""
    root = tmp_path / "store"
    store.write_run(root, make_run(R1))
    from vggbench import runs

    return root, runs.render_export(runs.export_rows(root), "csv")


def _export(cli, root: Path, out: Path | str):
    return cli("runs", "export", "--results-dir", str(root), "--format", "csv", "--out", str(out))


def test_export_to_a_regular_file_or_a_missing_path_replaces_it(cli, tmp_path, export_store):
    root, text = export_store
    old = tmp_path / "old.csv"
    old.write_text("old\n")
    for out in (old, tmp_path / "new.csv"):
        assert _export(cli, root, out).code == 0
        assert out.read_text() == text and stat.S_ISREG(out.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv", "old.csv", "store"]  # no temporary file


@pytest.mark.parametrize("hops", [1, 2])
def test_export_through_a_symlink_writes_its_target_and_keeps_the_link(cli, tmp_path, export_store, hops):
    root, text = export_store
    target = tmp_path / "target.csv"
    target.write_text("old\n")
    link = target
    for hop in range(hops):
        (tmp_path / f"link{hop}").symlink_to(link)
        link = tmp_path / f"link{hop}"
    result = _export(cli, root, link)
    assert result.code == 0, result.err
    assert link.is_symlink() and target.read_text() == text and not target.is_symlink()


def test_export_through_a_dangling_symlink_creates_its_target(cli, tmp_path, export_store):
    root, text = export_store
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "later.csv")
    assert _export(cli, root, link).code == 0
    assert link.is_symlink() and (tmp_path / "later.csv").read_text() == text


def test_export_to_a_fifo_writes_through_it(cli, tmp_path, export_store):
    root, text = export_store
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    heard: list[str] = []
    reader = threading.Thread(target=lambda: heard.append(fifo.read_text()))
    reader.start()
    result = _export(cli, root, fifo)
    reader.join(timeout=30)
    assert result.code == 0, result.err
    assert heard == [text] and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "store"]


def test_export_to_dev_null_keeps_the_device(cli, export_store):
    root, _ = export_store
    assert _export(cli, root, "/dev/null").code == 0
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_export_to_dev_stdout_writes_the_process_stdout(export_store):
    root, text = export_store
    argv = ["runs", "export", "--results-dir", str(root), "--format", "csv", "--out", "/dev/stdout"]
    done = subprocess.run([sys.executable, "-m", "vggbench", *argv], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == text and done.stderr == "wrote /dev/stdout\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this machine")
@pytest.mark.parametrize("via_link", [False, True], ids=["device", "link to it"])
def test_export_to_dev_full_is_one_line_and_keeps_the_device(cli, tmp_path, export_store, via_link):
    root, _ = export_store
    out = Path("/dev/full")
    if via_link:
        out = tmp_path / "full"
        out.symlink_to("/dev/full")
    assert_one_line_error(
        _export(cli, root, out), f"cannot write {out}: {os.strerror(errno.ENOSPC)}", "choose a writable"
    )
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode) and (not via_link or out.is_symlink())


def _write(path: Path) -> None:
    store.atomic_write_text(path, "new\n")


def test_atomic_write_of_each_file_kind(tmp_path):
    """The library's rule (fs.replaceable) on each kind: replaced, followed, or written through."""
    regular, link, fifo = tmp_path / "regular", tmp_path / "link", tmp_path / "fifo"
    regular.write_text("old\n")
    link.symlink_to(regular)
    os.mkfifo(fifo)
    assert fs.replaceable(regular) == regular and fs.replaceable(tmp_path / "missing") == tmp_path / "missing"
    assert fs.replaceable(link) == regular and fs.replaceable(tmp_path) == tmp_path  # a folder: refused later
    for special in (fifo, Path("/dev/null"), Path("/dev/stdout"), Path("/proc/self/fd/1"), Path("/dev/fd/1")):
        assert fs.replaceable(special) is None, special
    _write(link)
    assert link.is_symlink() and regular.read_text() == "new\n"


def test_atomic_write_to_a_process_open_file_writes_through_it(tmp_path):
    """/proc/self/fd/N of a pipe: the bytes come out of the pipe (a rename would put a file there)."""
    read_end, write_end = os.pipe()
    try:
        _write(Path(f"/proc/self/fd/{write_end}"))
        assert os.read(read_end, 100) == b"new\n"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_atomic_write_through_a_loop_of_links_is_one_line(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(fs.FileSystemError) as caught:
        _write(tmp_path / "a")
    assert str(caught.value) == (
        f"cannot write {tmp_path / 'a'}: {os.strerror(errno.ELOOP)}; choose a writable --results-dir / --out"
    )


def test_a_runtime_error_without_a_failed_write_is_not_hidden(tmp_path):
    def broken(handle) -> None:
        raise RuntimeError("not a file-system error")

    with pytest.raises(RuntimeError, match="not a file-system error"):
        store.atomic_write(tmp_path / "x", broken)
    assert list(tmp_path.iterdir()) == []


# --- 3. Locks -------------------------------------------------------------------------------------------


def _tiny_config(**overrides) -> TrainConfig:
    return TrainConfig(**{**TINY, "epochs": 1, **overrides})


def test_a_lock_that_is_a_folder_or_below_a_file_is_one_line(cli, tmp_path):
    config = _tiny_config()
    lock = checkpoint_dir(tmp_path / "a", config.run_id) / "lock"
    lock.mkdir(parents=True)
    argv = train_argv("--quiet", **TINY_CLI, epochs=1)
    assert_one_line_error(cli(*argv, "--results-dir", str(tmp_path / "a")), f"cannot write {lock}: ")
    folder = checkpoint_dir(tmp_path / "b", config.run_id)
    folder.parent.mkdir(parents=True)
    folder.write_text("in the way\n")
    assert_one_line_error(
        cli(*argv, "--results-dir", str(tmp_path / "b")),
        f"cannot write {folder}: {folder} is a file, not a folder",
    )
    assert not (tmp_path / "a" / "runs").exists() and not (tmp_path / "b" / "runs").exists()


def test_a_file_system_without_flock_is_one_line(cli, tmp_path, monkeypatch):
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(locks.fcntl, "flock", no_locks)
    config = _tiny_config()
    lock = checkpoint_dir(tmp_path, config.run_id) / "lock"
    assert_one_line_error(
        cli(*train_argv("--quiet", **TINY_CLI, epochs=1), "--results-dir", str(tmp_path)),
        f"cannot take the lock {lock}: {os.strerror(errno.ENOLCK)}",
        "file system with file locks",
    )
    assert not (tmp_path / "runs").exists()


def _as_nobody_or_skip() -> list[str]:
    """The command prefix that runs as uid/gid 65534 (file modes bind it), or a skip saying why not."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a process as another user (setpriv)")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is missing")
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import vggbench.cli, torch"], env=ENV, cwd="/", capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"the venv is not readable by uid 65534: {probe.stderr.decode().strip()[-200:]}")
    return prefix


@pytest.fixture
def shared_folder():
    """A folder every user may write in (pytest's own tmp folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="vggbench-hostile-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder)


def test_a_lock_file_nobody_can_open_is_an_error_not_a_grant(shared_folder):
    prefix = _as_nobody_or_skip()
    config = _tiny_config()
    root = shared_folder / "store"
    lock = checkpoint_dir(root, config.run_id) / "lock"
    lock.parent.mkdir(parents=True)
    lock.touch(mode=0o000)
    lock.chmod(0o000)
    for folder in (root, root / "checkpoints", lock.parent):
        folder.chmod(0o777)  # everything writable but the lock file
    argv = [*train_argv("--quiet", **TINY_CLI, epochs=1), "--results-dir", str(root)]
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "vggbench", *argv], env=ENV, cwd="/", capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: cannot open the lock file {lock}: Permission denied; every process that shares the store "
        f"must be able to open it: chmod a+rw {lock}, or delete it when no vggbench process uses the store, "
        "or choose another --results-dir\n"
    )
    assert not (root / "runs").exists() and stat.S_IMODE(lock.stat().st_mode) == 0


HOLD = (
    "import sys; from vggbench.locks import FileLock; lock = FileLock(sys.argv[1]); "
    "print('held' if lock.try_acquire() else 'busy', flush=True); sys.stdin.read()"
)


def test_a_lock_file_a_user_can_only_read_still_locks(shared_folder):
    """Another user's lock file (0644) in a shared store: flock on a read-only descriptor excludes."""
    prefix = _as_nobody_or_skip()
    lock = shared_folder / "lock"
    lock.write_text("")
    lock.chmod(0o644)  # root's: uid 65534 may read it, not write it
    holders: list[subprocess.Popen] = []
    try:
        for heard in ("held\n", "busy\n"):  # the second starts once the first holds the lock
            holders.append(
                subprocess.Popen(
                    [*prefix, sys.executable, "-c", HOLD, str(lock)],
                    env=ENV,
                    cwd="/",
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            assert holders[-1].stdout.readline() == heard
    finally:
        for holder in holders:
            holder.stdin.close()
            holder.wait(timeout=30)


def test_the_lock_errors_are_vggbench_errors(tmp_path):
    (tmp_path / "lock").mkdir()
    with pytest.raises(fs.FileSystemError, match="Is a directory"):
        FileLock(tmp_path / "lock").try_acquire()
    assert issubclass(LockError, VggbenchError)


# --- 4. Corrupt stored state: records ---------------------------------------------------------------------


def _outside(checkpoint: str) -> str:
    return f"its checkpoint {checkpoint!r} is not a path inside the store"


RECORD_DEFECTS = {
    "checkpoint ../..": (
        "bad000000001",
        {"checkpoint": "../../elsewhere.pt"},
        _outside("../../elsewhere.pt"),
    ),
    "checkpoint absolute": ("bad000000002", {"checkpoint": "/etc/passwd"}, _outside("/etc/passwd")),
    "checkpoint via ..": (
        "bad000000003",
        {"checkpoint": "checkpoints/../../x.pt"},
        _outside("checkpoints/../../x.pt"),
    ),
    "checkpoint ..": ("bad000000004", {"checkpoint": ".."}, _outside("..")),
    "id not the file name": ("bad000000005", {"id": R2}, f"its id {R2!r} is not its file name's"),
    "no epochs": ("bad000000006", {"epochs": []}, "it has no epochs (a run trains at least one)"),
    "epochs 1, -4, -3": (
        "bad000000007",
        {"renumber": [1, -4, -3]},
        "its epochs are numbered [1, -4, -3], not 1 to 3",
    ),
}


def _bad_run(run_id: str, change: dict) -> dict:
    data = make_run(run_id, errors=(80.0, 60.0, 50.0)).to_json()
    for number, epoch in zip(change.pop("renumber", []), data["epochs"]):
        epoch["epoch"] = number
    return {**data, **change}


@pytest.fixture(scope="module")
def bad_stores(tmp_path_factory) -> dict[str, Path]:
    """Per defect, a store with a good run beside the bad record (the bad one is named)."""
    root = tmp_path_factory.mktemp("bad-records")
    stores = {}
    for name, (run_id, change, _) in RECORD_DEFECTS.items():
        folder = root / run_id
        store.write_run(folder, make_run(R1))
        (folder / "runs" / f"{run_id}.json").write_text(json.dumps(_bad_run(run_id, dict(change))))
        stores[name] = folder
    return stores


RECORD_COMMANDS = {
    "runs list": ["runs", "list"],
    "runs show": ["runs", "show", "ID"],
    "runs export": ["runs", "export", "--out", "FRESH"],
    "runs compare": ["runs", "compare", R1, "ID"],
    "eval": ["eval", "ID", "--device", "cpu"],
    "report": ["report", "--no-plots", "--out", "FRESH"],
}


@pytest.mark.parametrize("command", RECORD_COMMANDS.values(), ids=RECORD_COMMANDS.keys())
@pytest.mark.parametrize("defect", RECORD_DEFECTS)
def test_a_corrupt_run_record_is_one_line_wherever_it_is_read(cli, bad_stores, tmp_path, defect, command):
    run_id, _, fragment = RECORD_DEFECTS[defect]
    root = bad_stores[defect]
    before = _snapshot(root)
    fresh = tmp_path / "fresh"
    argv = [a.replace("ID", run_id).replace("FRESH", str(fresh)) for a in command]
    assert_one_line_error(
        cli(*argv, "--results-dir", str(root)),
        f"corrupt record {root / 'runs' / run_id}.json: {fragment}",
        "delete it and rerun the command that made it",
    )
    assert _snapshot(root) == before and not fresh.exists()


@pytest.mark.parametrize("command", [["runs", "export"], ["report", "--no-plots"]], ids=["export", "report"])
def test_an_eval_record_not_named_by_its_id_is_corrupt(cli, tmp_path, command):
    root = tmp_path / "store"
    store.write_run(root, make_run(R1))
    (root / "evals").mkdir()
    eval_record = _an_eval_record()
    (root / "evals" / "eeee00000000.json").write_text(json.dumps({**eval_record, "id": "ffff00000000"}))
    assert_one_line_error(
        cli(*command, "--out", str(tmp_path / "fresh"), "--results-dir", str(root)),
        f"corrupt record {root / 'evals' / 'eeee00000000.json'}: "
        "its id 'ffff00000000' is not its file name's",
    )
    assert not (tmp_path / "fresh").exists()


def _an_eval_record() -> dict:
    """A complete EvalRecord's JSON (one model, one scale)."""
    return store.EvalRecord(
        id="eeee00000000",
        runs=[R1],
        nets=["A"],
        train_scales=["256"],
        method="center",
        test_scales=[256],
        test_scales_px=[36],
        scales_spec="single",
        crop=32,
        dataset="fashion-mnist",
        limits=store.EvalLimits(),
        normalization=["train mean RGB"],
        images=100,
        top1_err=50.0,
        top5_err=10.0,
        top5_k=5,
        members=[],
        forward_passes_per_image=1.0,
        macs_per_image=1e6,
        seconds=1.0,
        images_per_s=100.0,
        device="cpu",
        machine="test",
        torch_version=torch.__version__,
        created="2026-01-01T00:00:00Z",
    ).to_json()


# --- 4. Corrupt stored state: checkpoints -----------------------------------------------------------------


def _stop(end) -> None:
    raise KeyboardInterrupt


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> tuple[Path, TrainConfig]:
    """A store with a run of 3 epochs stopped after its first (its last.pt)."""
    root = tmp_path_factory.mktemp("interrupted")
    config = TrainConfig(**TINY, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(config, results_dir=root, device="cpu", quiet=True, on_epoch_end=_stop)
    return root, config


def _set(key: str, value):
    def change(state: dict) -> None:
        state[key] = value

    return change


def _set_in(key: str, inner: str, value):
    def change(state: dict) -> None:
        state[key][inner] = value

    return change


def _wrong_shape(state: dict) -> None:
    name = next(iter(state["model"]))
    state["model"][name] = torch.zeros(3)


def _missing_weight(state: dict) -> None:
    state["model"].pop(next(iter(state["model"])))


def _misnumbered(state: dict) -> None:
    state["epochs"][0]["epoch"] = -4


def _step_without_partial(state: dict) -> None:
    state["step"] = 1


NOT_FIT = "its states do not fit the run "
CHECKPOINT_DAMAGE = {
    "epoch 1000000": (_set("epoch", 1000000), "its epoch 1000000 is outside the run's 0 to 3"),
    "epoch -5": (_set("epoch", -5), "its epoch -5 is outside the run's 0 to 3"),
    "epoch 4": (_set("epoch", 4), "its epoch 4 is outside the run's 0 to 3"),
    "epoch '1'": (_set("epoch", "1"), "Checkpoint.epoch is a string '1', expected int"),
    "epoch 1.0": (_set("epoch", 1.0), "Checkpoint.epoch is a number 1.0, expected int"),
    "epoch True": (_set("epoch", True), "Checkpoint.epoch is a boolean True, expected int"),
    "epoch 2 of 1 epochs": (_set("epoch", 2), "its epochs are numbered [1], not 1 to 2"),
    "epochs -4": (_misnumbered, "its epochs are numbered [-4], not 1 to 1"),
    "epochs a dict": (_set("epochs", {}), "Checkpoint.epochs is an object"),
    "epoch metrics a list": (_set("epochs", [[1]]), "Checkpoint.epochs is a list"),
    "step -1": (_set("step", -1), "its step -1 does not fit epoch 1 of 3"),
    "step without partial": (_step_without_partial, "its step 1 does not fit epoch 1 of 3 without a partial"),
    "elapsed nan": (_set("elapsed", math.nan), "its elapsed time nan is not a finite number"),
    "elapsed '1'": (_set("elapsed", "1"), "Checkpoint.elapsed is a string"),
    "model a list": (_set("model", [1]), "Checkpoint.model is a list"),
    "model of numbers": (_set("model", {"w": 1.0}), "its model is not a state dict"),
    "weights of another shape": (
        _wrong_shape,
        f"{NOT_FIT}(Error(s) in loading state_dict for VGG: size mismatch",
    ),
    "a weight missing": (
        _missing_weight,
        f"{NOT_FIT}(Error(s) in loading state_dict for VGG: Missing key(s)",
    ),
    "optimizer a list": (_set("optimizer", []), "Checkpoint.optimizer is a list"),
    "optimizer of another net": (
        _set("optimizer", {"state": {}, "param_groups": []}),
        f"{NOT_FIT}(loaded state dict has a different number of parameter groups)",
    ),
    "rng {}": (_set("rng", {}), "its RNG state is not rng_state()'s"),
    "rng a list": (_set("rng", [1]), "Checkpoint.rng is a list"),
    "schedule lr 'x'": (_set_in("schedule", "base_lr", "x"), "PlateauSchedule.base_lr is a string 'x'"),
    "schedule without lr": (
        _set("schedule", {}),
        "PlateauSchedule.__init__() missing 1 required positional argument: 'base_lr'",
    ),
    "warnings a string": (_set("warnings", "w"), "Checkpoint.warnings is a string"),
    "init {}": (_set("init", {}), "InitInfo.__init__() missing 1 required positional argument: 'scheme'"),
    "partial a number": (_set("partial", 3), "Checkpoint.partial is a number"),
    "config epochs '3'": (_set_in("config", "epochs", "3"), "its config's epochs is '3'"),
    "no run id": (
        lambda state: state.pop("run_id"),
        "Checkpoint.__init__() missing 1 required positional argument: 'run_id'",
    ),
}


@pytest.mark.parametrize("damage, fragment", CHECKPOINT_DAMAGE.values(), ids=CHECKPOINT_DAMAGE.keys())
def test_a_corrupt_checkpoint_is_one_line_and_kept(cli, interrupted, tmp_path, damage, fragment):
    source, config = interrupted
    root = tmp_path / "store"
    shutil.copytree(source, root)
    last = checkpoint_dir(root, config.run_id) / "last.pt"
    state = torch.load(last, weights_only=True)
    damage(state)
    torch.save(state, last)
    before = last.read_bytes()
    argv = train_argv("--quiet", "--resume", **TINY_CLI, epochs=3)
    assert_one_line_error(
        cli(*argv, "--results-dir", str(root)),
        f"corrupt checkpoint {last}: {fragment}",
        "delete it and rerun with --force",
    )
    assert last.read_bytes() == before and not (root / "runs").exists()


def test_an_undamaged_checkpoint_of_the_fixture_resumes(cli, interrupted, tmp_path):
    """The cases' control: the same store and argv, undamaged, resume and finish."""
    source, config = interrupted
    shutil.copytree(source, tmp_path / "store")
    result = cli(
        *train_argv("--quiet", "--resume", **TINY_CLI, epochs=3), "--results-dir", str(tmp_path / "store")
    )
    assert result.code == 0, result.err
    assert [e.epoch for e in store.read_run(tmp_path / "store", config.run_id).epochs] == [1, 2, 3]


# --- 4. Corrupt stored state: the RGB-statistics cache ----------------------------------------------------


def _stats_images() -> TensorImages:
    generator = torch.Generator().manual_seed(0)
    return TensorImages(
        torch.randint(0, 256, (12, 3, 8, 8), dtype=torch.uint8, generator=generator), torch.zeros(12)
    )


STATS_DAMAGE = {
    "mean 1000": {"mean": [1000.0, 0.5, 0.5]},
    "mean -0.1": {"mean": [-0.1, 0.5, 0.5]},
    "mean []": {"mean": []},
    "mean strings": {"mean": ["a", "b", "c"]},
    "mean NaN": {"mean": [math.nan, 0.5, 0.5]},
    "mean Infinity": {"mean": [math.inf, 0.5, 0.5]},
    "mean booleans": {"mean": [True, False, True]},
    "two means": {"mean": [0.5, 0.5]},
    "eigval negative": {"eigval": [0.1, 0.01, -0.5]},
    "eigval ascending": {"eigval": [0.001, 0.01, 0.1]},
    "eigval 5": {"eigval": [5.0, 0.01, 0.001]},
    "eigvec not orthonormal": {"eigvec": [[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]},
    "eigvec two rows": {"eigvec": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]},
    "pixels 0": {"pixels": 0},
    "pixels '768'": {"pixels": "768"},
    "another fingerprint": {"fingerprint": "0000-12"},
    "no mean": {"mean": None},
}


def _stats_cache(folder: Path) -> Path:
    (path,) = folder.glob("rgb-stats-*.json")
    return path


@pytest.mark.parametrize("change", STATS_DAMAGE.values(), ids=STATS_DAMAGE.keys())
def test_a_corrupt_rgb_statistics_cache_is_said_and_rebuilt(tmp_path, change):
    images = _stats_images()
    fresh = rgb_statistics(images, tmp_path)
    path = _stats_cache(tmp_path)
    good = path.read_text()
    path.write_text(json.dumps({**json.loads(good), **change}))
    notes: list[str] = []
    rebuilt = rgb_statistics(images, tmp_path, note=notes.append)
    assert (
        len(notes) == 1
        and notes[0].startswith(f"corrupt: {path} (its ")
        and notes[0].endswith("), rebuilding")
    )
    assert torch.equal(rebuilt.mean, fresh.mean) and torch.equal(rebuilt.eigvec, fresh.eigvec)
    assert path.read_text() == good


@pytest.mark.parametrize("text", ["[]", "{not json", "\udcff"], ids=["a list", "bad JSON", "not UTF-8"])
def test_an_unreadable_rgb_statistics_cache_is_said_and_rebuilt(tmp_path, text):
    images = _stats_images()
    rgb_statistics(images, tmp_path)
    path = _stats_cache(tmp_path)
    good = path.read_text()
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    notes: list[str] = []
    rgb_statistics(images, tmp_path, note=notes.append)
    assert len(notes) == 1 and notes[0].startswith(f"corrupt: {path} (") and path.read_text() == good


def test_eval_with_a_corrupt_statistics_cache_rebuilds_it_and_says_so(cli, tmp_path):
    record = train(_tiny_config(), results_dir=tmp_path, device="cpu", quiet=True)
    path = _stats_cache(tmp_path / "cache")
    good = path.read_text()
    path.write_text(json.dumps({**json.loads(good), "mean": [1000.0, 1000.0, 1000.0]}))
    result = cli("eval", record.id, "--device", "cpu", "--quiet", "--results-dir", str(tmp_path))
    assert result.code == 0, result.err
    problem = "its mean [1000.0, 1000.0, 1000.0] is not 3 finite numbers in [0, 1]"
    assert f"note: corrupt: {path} ({problem}), rebuilding\n" in result.err
    assert path.read_text() == good


# --- 4. Corrupt stored state: the decoded-image cache -----------------------------------------------------


def _folder(root: Path) -> Path:
    from PIL import Image

    generator = np.random.default_rng(0)
    for split in ("train", "val"):
        for k in range(2):
            (root / split / f"c{k}").mkdir(parents=True)
            for i in range(4):
                pixels = generator.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / f"c{k}" / f"{i}.png")
    return root


def _overwrite(byte: int | None):
    def damage(data: Path, sidecar: Path) -> None:
        size = data.stat().st_size
        content = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes()
        data.write_bytes(content if byte is None else bytes([byte]) * size)

    return damage


def _flip_last_byte(data: Path, sidecar: Path) -> None:
    content = bytearray(data.read_bytes())
    content[-1] ^= 1
    data.write_bytes(bytes(content))


def _sidecar(change: dict):
    def damage(data: Path, sidecar: Path) -> None:
        header = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**header, **change}))

    return damage


def _no_checksums(data: Path, sidecar: Path) -> None:
    header = json.loads(sidecar.read_text())
    header.pop("checksums")
    sidecar.write_text(json.dumps(header))


MISMATCH = "bytes 0 to 6143 do not match their checksum"  # 8 images of 3 x 16 x 16: one chunk
NOT_CRCS = "its sidecar's checksums are not 1 CRC-32s"
DECODED_DAMAGE = {
    "random bytes": (_overwrite(None), MISMATCH),
    "zero bytes": (_overwrite(0), MISMATCH),
    "one bit flipped": (_flip_last_byte, MISMATCH),
    "no checksums": (_no_checksums, NOT_CRCS),
    "two checksums": (_sidecar({"checksums": [0, 0]}), NOT_CRCS),
    "a wrong checksum": (_sidecar({"checksums": [12345]}), MISMATCH),
    "checksums a string": (_sidecar({"checksums": "abc"}), NOT_CRCS),
    "format 1": (_sidecar({"format": 1}), "its sidecar's format does not match the folder"),
}


@pytest.mark.parametrize("damage, fragment", DECODED_DAMAGE.values(), ids=DECODED_DAMAGE.keys())
def test_a_decoded_cache_changed_in_place_is_said_and_rebuilt(tmp_path, damage, fragment):
    train_set = load_dataset(f"imagefolder:{_folder(tmp_path / 'f')}").train
    options = CacheOptions("auto", tmp_path / "cache")
    first = cached_train_set(train_set, 64, options)
    expected = first.imageset.images.clone()
    data, sidecar = cache_files(train_set, 64, options.directory)
    good = data.read_bytes(), sidecar.read_text()
    damage(data, sidecar)
    notes: list[str] = []
    result = cached_train_set(train_set, 64, options, note=notes.append)
    assert notes == [f"corrupt: {data} ({fragment}), rebuilding (decoding the folder again)"]
    assert result.built and torch.equal(result.imageset.images, expected)
    assert (data.read_bytes(), sidecar.read_text()) == good


def test_a_large_decoded_cache_checks_a_sample_of_its_chunks(tmp_path, monkeypatch):
    from vggbench.data import cache

    monkeypatch.setattr(cache, "CHUNK", 16)
    monkeypatch.setattr(cache, "CHECKED_CHUNKS", 4)
    data = tmp_path / "data.u8"
    data.write_bytes(bytes(range(256)) * 4)  # 64 chunks
    sums = cache.checksums(data)
    reads: list[int] = []
    real_open = open

    class Counting:
        def __init__(self, *args) -> None:
            self.handle = real_open(*args)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.handle.close()

        def seek(self, offset: int) -> None:
            self.handle.seek(offset)

        def read(self, size: int) -> bytes:
            reads.append(size)
            return self.handle.read(size)

    monkeypatch.setattr(cache, "open", Counting, raising=False)
    assert len(sums) == 64 and cache._bad_chunk(data, sums) is None and len(reads) == 4
    assert cache._bad_chunk(data, [s ^ 1 for s in sums]) is not None  # every chunk wrong: any sample finds it


# --- 6. A full disk under torch.save, a symlink loop as the store ------------------------------------------


def test_torch_save_on_a_full_disk_is_the_one_line_write_error(cli, tmp_path, monkeypatch):
    """torch.save turns the ENOSPC of its writes into RuntimeError("unexpected pos"); the user sees
    the write error, and no record or temporary file is left."""
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, handle) -> None:
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.handle.close()

        def write(self, data) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name: str):
            return getattr(self.handle, name)

    def fdopen(fd: int, mode: str = "r", *args):
        handle = real_fdopen(fd, mode, *args)
        return Full(handle) if ".pt." in os.readlink(f"/proc/self/fd/{fd}") else handle

    monkeypatch.setattr(store.os, "fdopen", fdopen)
    config = _tiny_config()
    last = checkpoint_dir(tmp_path, config.run_id) / "last.pt"
    assert_one_line_error(
        cli(*train_argv("--quiet", **TINY_CLI, epochs=1), "--results-dir", str(tmp_path)),
        f"cannot write {last}: {os.strerror(errno.ENOSPC)}; choose a writable --results-dir",
    )
    assert not (tmp_path / "runs").exists() and sorted(p.name for p in last.parent.iterdir()) == ["lock"]


LOOP_COMMANDS = {
    "train": [*train_argv("--quiet", **TINY_CLI, epochs=1)],
    "ablate": [
        "ablate",
        "lrn",
        "--preset",
        "smoke",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--quiet",
        "--device",
        "cpu",
    ],
    "bench": [
        *["bench", "--config", "A", "--width", "0.03125", "--crop", "32", "--batch", "4", "--steps", "1"],
        *["--warmup", "0", "--repeats", "1", "--eval-images", "1", "--parts", "infer", "--device", "cpu"],
    ],
}


@pytest.mark.parametrize("argv", LOOP_COMMANDS.values(), ids=LOOP_COMMANDS.keys())
def test_a_symlink_loop_as_the_store_is_one_line(cli, tmp_path, argv):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert_one_line_error(
        cli(*argv, "--results-dir", str(tmp_path / "a")),
        f"cannot write {tmp_path / 'a'}/",
        os.strerror(errno.ELOOP),
        "choose a writable --results-dir",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_sigterm_is_a_stop_signal():
    from vggbench.signals import STOP_SIGNALS, Stopped, signum_of

    assert STOP_SIGNALS == (signal.SIGINT, signal.SIGTERM)
    assert signum_of(Stopped(signal.SIGTERM)) == 15 and signum_of(KeyboardInterrupt()) == signal.SIGINT
