"""Run locks: one process trains a run, another waits for it or moves on; a dead holder's lock is
free; sweeps in several processes (--jobs, two at once, a submitit array) train each run once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error
from vggbench.ablations.spec import load_spec, preset_budget
from vggbench.ablations.sweep import sweep, train_config
from vggbench.locks import FileLock, run_lock
from vggbench.store import read_evals, read_runs
from vggbench.train import TrainConfig, checkpoint_dir, train

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
#: The sweep of the concurrency tests: lrn's 2 arms x 2 seeds, one short epoch each.
SWEEP = [
    "lrn",
    "--preset",
    "smoke",
    "--seeds",
    "2",
    "--epochs",
    "1",
    "--limit-train",
    "128",
    "--limit-val",
    "32",
]
HOLD = (
    "import sys; from vggbench.locks import FileLock; lock = FileLock(sys.argv[1]); "
    "print('held' if lock.try_acquire() else 'busy', flush=True); {then}"
)


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=ENV, stdout=subprocess.PIPE, text=True, **kwargs
    )


def _sweep_run_ids(budget_overrides: dict) -> dict[tuple[str, int], str]:
    spec = load_spec("lrn")
    budget = preset_budget(spec, "smoke", budget_overrides)
    run_ids: dict[tuple[str, int], str] = {}
    for arm, seed in sweep(spec, 2):
        run_ids[(arm.name, seed)] = train_config(arm, seed, budget, run_ids).run_id
    return run_ids


def _trained(stderr: str, run_id: str) -> int:
    """How many times a process's log says it started training run `run_id` (the trainer's
    description line; a run read from the store prints none)."""
    return sum(line.startswith(f"run {run_id}: ") for line in stderr.splitlines())


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    path = tmp_path / "run" / "lock"
    dead = _python(HOLD.format(then="import os, signal; os.kill(os.getpid(), signal.SIGKILL)"), str(path))
    assert dead.stdout.readline() == "held\n"
    assert dead.wait() == -9
    lock = FileLock(path)
    assert lock.holder() == f"pid {dead.pid}"  # the dead holder's file is still there
    assert lock.try_acquire()
    assert lock.holder() == f"pid {os.getpid()}"
    lock.release()


def test_a_live_holder_keeps_the_lock_and_is_named_until_it_exits(tmp_path):
    path = tmp_path / "lock"
    live = _python(HOLD.format(then="sys.stdin.read()"), str(path), stdin=subprocess.PIPE)
    assert live.stdout.readline() == "held\n"
    lock = FileLock(path)
    assert not lock.try_acquire()
    heard: list[str] = []
    lock.acquire(on_wait=lambda holder: (heard.append(holder), live.stdin.close()))  # the holder exits
    assert heard == [f"pid {live.pid}"] and live.wait() == 0
    # re-entrant within a process: taken twice, held until released twice
    assert lock.try_acquire()
    lock.release()
    probe = _python(HOLD.format(then=""), str(path))
    assert probe.stdout.readline() == "busy\n" and probe.wait() == 0
    lock.release()
    probe = _python(HOLD.format(then=""), str(path))
    assert probe.stdout.readline() == "held\n" and probe.wait() == 0


class _Stderr:
    """sys.stderr that lets the lock's holder go (creates `release`) once train says it waits."""

    def __init__(self, release: Path) -> None:
        self.release, self.lines = release, []

    def write(self, text: str) -> int:
        self.lines.append(text)
        if "waiting" in text:
            self.release.touch()
        return len(text)

    def flush(self) -> None:
        pass


def test_train_waits_for_the_process_training_its_run_and_says_so_once(tmp_path, monkeypatch):
    config = TrainConfig(
        net="A",
        width=1 / 16,
        crop=32,
        data="synthetic",
        limit_train=32,
        limit_val=16,
        batch_size=16,
        epochs=1,
    )
    release = tmp_path / "release"
    wait = f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.02)"
    holder = _python(
        HOLD.format(then="exec(sys.argv[2])"),
        str(run_lock(checkpoint_dir(tmp_path, config.run_id)).path),
        wait,
    )
    assert holder.stdout.readline() == "held\n"
    stderr = _Stderr(release)
    monkeypatch.setattr(sys, "stderr", stderr)
    record = train(config, results_dir=tmp_path, device="cpu", quiet=True)
    assert holder.wait() == 0
    assert stderr.lines == [f"run {config.run_id} is being trained by pid {holder.pid}; waiting\n"]
    assert record.status == "complete" and [r.id for r in read_runs(tmp_path)] == [config.run_id]


@pytest.mark.slow
def test_two_sweeps_on_one_store_train_each_run_once(tmp_path):
    """The first run is held (here) until the other three are stored: both sweeps must pass over it,
    share the rest, then come back to it; one trains it, the other reads it."""
    run_ids = _sweep_run_ids({"epochs": 1, "limit_train": 128, "limit_val": 32})
    first = run_ids[("A", 0)]
    held = run_lock(checkpoint_dir(tmp_path, first))
    assert held.try_acquire()
    argv = [
        sys.executable,
        "-m",
        "vggbench",
        "ablate",
        *SWEEP,
        "--results-dir",
        str(tmp_path),
        "--format",
        "json",
    ]
    sweeps = [
        subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    others = set(run_ids.values()) - {first}
    deadline = time.monotonic() + 300
    while {run.id for run in read_runs(tmp_path) if run.status == "complete"} != others:
        assert time.monotonic() < deadline and all(p.poll() is None for p in sweeps), (
            "the sweeps stopped early"
        )
        time.sleep(0.1)
    held.release()
    outputs = [p.communicate() for p in sweeps]
    assert [p.returncode for p in sweeps] == [0, 0], [err for _, err in outputs]
    for run_id in run_ids.values():
        assert sum(_trained(err, run_id) for _, err in outputs) == 1, run_id
    passed = f"lrn: run {first} is being trained by pid {os.getpid()}; moving on, back to it later"
    assert all(passed in err for _, err in outputs)
    records = [json.loads(out) for out, _ in outputs]
    assert records[0] == records[1] and records[0]["runs_found"] == 4
    assert len(read_evals(tmp_path)) == 8  # 4 runs x 2 protocols, each evaluated once


@pytest.mark.slow
def test_jobs_train_each_run_once_in_workers(tmp_path):
    argv = [*SWEEP, "--results-dir", str(tmp_path), "--format", "json", "--jobs", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "vggbench", "ablate", *argv], env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    run_ids = _sweep_run_ids({"epochs": 1, "limit_train": 128, "limit_val": 32})
    assert [_trained(done.stderr, run_id) for run_id in run_ids.values()] == [1, 1, 1, 1]
    # the parent's progress names each run once, k of 4
    progress = [
        line for line in done.stderr.splitlines() if line.startswith("lrn: run ") and " of 4: " in line
    ]
    assert sorted(line.split(" of 4")[0] for line in progress) == [f"lrn: run {k}" for k in range(1, 5)]
    record = json.loads(done.stdout)
    assert record["runs_found"] == 4 and sorted(run.id for run in read_runs(tmp_path)) == sorted(
        run_ids.values()
    )


@pytest.mark.slow
def test_submit_local_runs_shard_i_in_array_task_i(cli, tmp_path):
    pytest.importorskip("submitit")
    result = cli("ablate", *SWEEP, "--results-dir", str(tmp_path), "--format", "json", "--submit", "local")
    assert result.code == 0, result.err
    assert "2 array tasks, task i runs --shard i/2" in result.err
    run_ids = _sweep_run_ids({"epochs": 1, "limit_train": 128, "limit_val": 32})
    logs = sorted((tmp_path / "submitit").rglob("*_log.err"), key=lambda p: p.name)
    assert len(logs) == 2
    for seed, log in enumerate(logs):  # task i trained its shard's runs (seed i - 1), each once
        text = log.read_text()
        assert {run_id: _trained(text, run_id) for run_id in run_ids.values()} == {
            run_id: int(key[1] == seed) for key, run_id in run_ids.items()
        }
    assert sorted(run.id for run in read_runs(tmp_path)) == sorted(run_ids.values())
    assert json.loads(result.out)["runs_found"] == 4


def test_submit_without_submitit_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if it were not installed
    result = cli("ablate", "lrn", "--preset", "smoke", "--submit", "local", "--results-dir", str(tmp_path))
    assert_one_line_error(result, "--submit needs the submitit package", "pip install submitit")


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--jobs", "0"], ["--jobs 0: need at least 1"]),
        (["--jobs", "-2"], ["--jobs -2: need at least 1"]),
        (["--submit", "pbs"], ["--submit 'pbs'", "slurm or local"]),
        (["--submit", "local", "--shard", "1/2"], ["--shard with --submit", "set N with --jobs"]),
        (
            ["--submit", "local", "--jobs", "4", "--seeds", "2"],
            ["--jobs 4 with --submit", "at most 2 shards"],
        ),
        (["--slurm-partition", "gpu"], ["--slurm-partition applies to --submit slurm only"]),
        (["--submit", "local", "--slurm-gpus", "1"], ["--slurm-gpus applies to --submit slurm only"]),
        (["--submit", "slurm", "--slurm-time", "0"], ["--slurm-time 0", "minutes"]),
        (["--submit", "slurm", "--slurm-gpus", "-1"], ["--slurm-gpus -1: need 0 or more"]),
        (["--submit", "slurm", "--slurm-partition", " "], ["--slurm-partition is empty"]),
        (["--jobs", "2", "--device", "cuda:1"], ["--device cuda:1 with --jobs 2", "--device cuda"]),
    ],
)
def test_ablate_jobs_and_submit_bad_input(cli, argv, fragments, tmp_path):
    assert_one_line_error(
        cli("ablate", "lrn", "--preset", "smoke", *argv, "--results-dir", str(tmp_path)), *fragments
    )
