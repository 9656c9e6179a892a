"""Ctrl-C as promised: `train` and `ablate` say what was saved and the exact command that
continues; an interrupted --force run resumes with --resume --force; a stale last.pt goes.

Oracles: a real SIGINT or SIGTERM to a subprocess (exit 130 or 143, the message, the checkpoint on
disk, and the printed command completing the run); the epochs of a resumed --force run equal the stored run's.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import train_argv

from vggbench.ablations import sweep
from vggbench.train import TrainConfig, TrainingInterrupted, train

REPO = Path(__file__).resolve().parent.parent
TINY = dict(
    net="A", width=1 / 16, crop=32, data="synthetic", limit_train=32, limit_val=16, batch_size=16, epochs=2
)
CONTINUE = "; to continue, run: "


def _continue_command(err: str) -> list[str]:
    line = err.strip().splitlines()[-1]
    assert CONTINUE in line, err
    return shlex.split(line.split(CONTINUE, 1)[1])


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"])
def test_ctrl_c_in_train_prints_what_was_saved_and_the_command_that_resumes(cli, tmp_path, signum, code):
    """SIGTERM (Slurm's preemption and time limit, `kill`) stops a run as Ctrl-C does, exit 128 + 15."""
    # epochs of 512 images (32 steps): the signal lands two epochs before the end
    argv = train_argv(limit_train=512, limit_val=16, batch=16, epochs=3, results_dir=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "vggbench", *argv], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True
    )
    lines = []
    for line in child.stderr:
        lines.append(line)
        if line.startswith("epoch 1/3:"):
            child.send_signal(signum)
            break
    err = "".join(lines) + child.stderr.read()
    assert child.wait(timeout=60) == code, err
    run_id = re.search(r"^run (\w+): ", err, re.MULTILINE).group(1)
    checkpoint = tmp_path / "checkpoints" / run_id / "last.pt"
    # the signal lands in epoch 2 (or 3 on a loaded machine), or after an epoch's checkpoint
    stopped = r"(after epoch [12]|in epoch [23] at step \d+ of 32)"
    assert re.fullmatch(
        rf"interrupted {stopped}; checkpoint saved to {re.escape(str(checkpoint))}"
        + re.escape(f"{CONTINUE}{shlex.join(['vggbench', *argv, '--resume'])}"),
        err.strip().splitlines()[-1],
    ), err
    assert checkpoint.exists()

    resumed = cli(*_continue_command(err)[1:])
    assert resumed.code == 0, resumed.err
    assert f"run {run_id}: " in resumed.out and "after 3 epochs" in resumed.out
    assert not checkpoint.exists()


def test_ctrl_c_in_ablate_says_the_same_command_continues(cli, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise TrainingInterrupted("interrupted after epoch 1; checkpoint saved to X/last.pt")

    monkeypatch.setattr(sweep.train, "train", interrupted)
    argv = ["ablate", "lrn", "--preset", "smoke", "--seeds", "1", "--quiet", "--results-dir", str(tmp_path)]
    result = cli(*argv)
    assert result.code == 130
    assert result.err == (
        "interrupted after epoch 1; checkpoint saved to X/last.pt; the sweep's completed runs "
        f"are stored; to continue, run: {shlex.join(['vggbench', *argv])}\n"
    )


def test_ctrl_c_before_training_says_nothing_was_saved(cli, tmp_path, monkeypatch):
    from vggbench import train as training

    def pressed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", pressed)
    argv = ["train", "--data", "synthetic", "--width", "0.0625", "--crop", "32", "--resume"]
    argv += ["--results-dir", str(tmp_path)]
    result = cli(*argv)
    assert (result.code, result.err) == (
        130,
        f"interrupted; to continue, run: {shlex.join(['vggbench', *argv])}\n",
    )


def _stop_after_first_epoch(end) -> None:
    raise KeyboardInterrupt


def test_an_interrupted_force_run_resumes_with_resume_and_force(tmp_path, capsys):
    config = TrainConfig(**TINY)
    stored = train(config, results_dir=tmp_path, device="cpu", quiet=True)
    with pytest.raises(TrainingInterrupted):
        train(
            config,
            results_dir=tmp_path,
            device="cpu",
            quiet=True,
            force=True,
            on_epoch_end=_stop_after_first_epoch,
        )
    last = tmp_path / "checkpoints" / config.run_id / "last.pt"
    assert last.exists()
    # --resume alone finds the stored run, keeps the forced run's checkpoint, and says how to continue it
    again = train(config, results_dir=tmp_path, device="cpu", resume=True)
    assert again.created == stored.created and last.exists()
    assert "--resume --force continues that run" in capsys.readouterr().err
    resumed = train(config, results_dir=tmp_path, device="cpu", resume=True, force=True)
    assert f"resuming run {config.run_id} after epoch 1" in capsys.readouterr().err and not last.exists()
    assert [(e.train_loss, e.val_top1_err) for e in resumed.epochs] == [
        (e.train_loss, e.val_top1_err) for e in stored.epochs
    ]


@pytest.mark.parametrize("age_s, kept", [(-10, False), (0, False), (10, True)])
def test_a_checkpoint_older_than_its_complete_record_is_removed(tmp_path, age_s, kept):
    """A last.pt no newer than the record was left by a process that died between writing the
    record and removing it; a newer one is a --force run's."""
    config = TrainConfig(**TINY)
    stored = train(config, results_dir=tmp_path, device="cpu", quiet=True)
    record = tmp_path / "runs" / f"{stored.id}.json"
    last = tmp_path / "checkpoints" / stored.id / "last.pt"
    last.write_bytes(b"a checkpoint")
    when = record.stat().st_mtime_ns + age_s * 10**9
    os.utime(last, ns=(when, when))
    assert (
        train(config, results_dir=tmp_path, device="cpu", quiet=True, resume=True).created == stored.created
    )
    assert last.exists() == kept


def test_sigterm_before_training_is_ctrl_c_with_exit_143(cli, tmp_path, monkeypatch):
    """Outside a run's loop SIGTERM interrupts at once, as Ctrl-C does there; the handler is the
    CLI's only while it runs."""
    from vggbench import train as training

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(training, "train", terminated)
    before = signal.getsignal(signal.SIGTERM)
    argv = [
        "train",
        "--data",
        "synthetic",
        "--width",
        "0.0625",
        "--crop",
        "32",
        "--results-dir",
        str(tmp_path),
    ]
    result = cli(*argv)
    assert (result.code, result.err) == (
        143,
        f"interrupted; to continue, run: {shlex.join(['vggbench', *argv, '--resume'])}\n",
    )
    assert signal.getsignal(signal.SIGTERM) == before
