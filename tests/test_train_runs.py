"""Training runs: run ids and records, reuse, resume, DDP, init-from and pre-init, bad input, the CLI.

Oracles: a resumed run against an uninterrupted one (torch.equal); 2 gloo processes against one
process on the same global batch; a short run against chance (the test of the default init).
Runs are tiny (A at width 1/16, crop 32, 64 synthetic training images) and deterministic.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, needs_fashion_mnist, train_argv

from vggbench import paper, store
from vggbench.errors import VggbenchError
from vggbench.evaluate.sources import load_run
from vggbench.models import VGG, ModelSpec
from vggbench.store import RunRecord
from vggbench.train import (
    DEFAULT_INIT,
    EpochEnd,
    StepProgress,
    TrainConfig,
    TrainingInterrupted,
    train,
)
from vggbench.train import loop as train_loop
from vggbench.train import trainer as train_trainer
from vggbench.train.loop import PlateauSchedule
from vggbench.train.trainer import val_slope

REPO = Path(__file__).resolve().parent.parent

TINY = dict(
    net="A",
    width=1 / 16,
    crop=32,
    data="synthetic",
    limit_train=64,
    limit_val=32,
    batch_size=16,
    epochs=2,
    deterministic=True,
)
RECORD_KEYS = {
    "id",
    "kind",
    "status",
    "net",
    "config",
    "model",
    "data",
    "dataset",
    "classes",
    "seed",
    "train_scale",
    "crop",
    "width",
    "init",
    "init_from",
    "recipe",
    "epochs",
    "checkpoint",
    "wall_time_s",
    "images_per_s",
    "data_time_fraction",
    "device",
    "machine",
    "torch_version",
    "code_version",
    "created",
}
EPOCH_KEYS = {
    "epoch",
    "train_loss",
    "val_top1_err",
    "val_top5_err",
    "lr",
    "data_time_fraction",
    "images_per_s",
    "wall_s",
}


def tiny(**overrides) -> TrainConfig:
    return TrainConfig(**{**TINY, **overrides})


def run_tiny(results_dir: Path, **kwargs) -> RunRecord:
    return train(kwargs.pop("config", tiny()), results_dir=results_dir, device="cpu", quiet=True, **kwargs)


def final_weights(results_dir: Path, record: RunRecord) -> dict[str, torch.Tensor]:
    return torch.load(results_dir / record.checkpoint, weights_only=True)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One complete tiny run, shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("results")
    return root, run_tiny(root)


# --- Run ids and records ----------------------------------------------------------------------------


def test_run_id_depends_on_what_defines_the_result_only():
    base = tiny()
    assert tiny().run_id == base.run_id
    assert tiny(net="a", scale="256:256").run_id == base.run_id  # normalised
    for execution in (  # data_root: a packaged set's, see test_fingerprint (synthetic rejects it)
        dict(max_device_batch=4),
        dict(deterministic=False),
        dict(workers=2),
        dict(init_std=0.1),
        dict(lrn_alpha=2e-4),
    ):  # init_std only matters for --init paper, lrn_alpha only for A-LRN
        assert tiny(**execution).run_id == base.run_id, execution
    for change in (
        dict(lr=0.02),
        dict(seed=1),
        dict(scale="384"),
        dict(init="kaiming"),
        dict(epochs=3),
        dict(input_range="0-1"),
    ):
        assert tiny(**change).run_id != base.run_id, change
    assert tiny(init="paper", init_std=0.1).run_id != tiny(init="paper", init_std=0.01).run_id
    assert tiny(net="A-LRN", lrn_alpha=2e-4).run_id != tiny(net="A-LRN").run_id


def test_the_learning_rate_defaults_to_the_papers_and_to_its_fine_tuning_rate_with_init_from():
    assert tiny().lr == paper.LEARNING_RATE
    assert tiny(init_from="abc").lr == paper.FINETUNE_LEARNING_RATE
    assert tiny(init_from="abc", lr=0.5).lr == 0.5
    assert tiny(init_from="abc").run_id == tiny(init_from="abc", lr=paper.FINETUNE_LEARNING_RATE).run_id


def test_record_has_the_fields_and_points_at_loadable_weights(stored):
    root, record = stored
    assert RECORD_KEYS <= set(record.to_json())
    assert record.kind == "run" and record.status == "complete" and record.id == tiny().run_id
    assert record.net == "A" and record.config == tiny().to_dict()
    assert record.data == store.DataSource("synthetic", limit_train=64, limit_val=32)
    assert record.init.scheme == DEFAULT_INIT
    assert record.recipe.momentum == 0.9 and record.recipe.weight_decay == 5e-4
    assert [e.epoch for e in record.epochs] == [1, 2]
    assert all(EPOCH_KEYS <= set(dataclasses.asdict(e)) for e in record.epochs)
    assert record.top1_err == record.epochs[-1].val_top1_err
    assert store.read_run(root, record.id) == record
    assert not (root / "checkpoints" / record.id / "last.pt").exists()  # removed once complete
    again, model = load_run(root, record.id[:6])
    assert again.id == record.id
    for key, value in final_weights(root, record).items():
        assert torch.equal(model.state_dict()[key], value)


def test_the_same_config_returns_the_stored_record_without_training(stored, monkeypatch):
    root, record = stored

    class NoTraining:
        def __init__(self, *args, **kwargs):
            raise AssertionError("trained again")

    monkeypatch.setattr(train_trainer, "Trainer", NoTraining)
    assert run_tiny(root) == record
    assert run_tiny(root, config=tiny(workers=2, max_device_batch=8)).id == record.id
    with pytest.raises(AssertionError, match="trained again"):
        run_tiny(root, force=True)


def test_load_run_errors(stored, tmp_path):
    root, record = stored
    with pytest.raises(VggbenchError, match="no stored run"):
        load_run(root, "zzzz")
    for name in ("abc111", "abc222"):
        store.write_run(tmp_path, dataclasses.replace(record, id=name))
    with pytest.raises(VggbenchError, match="ambiguous"):
        load_run(tmp_path, "abc")


# --- Resume -----------------------------------------------------------------------------------------


def _stop_after_first_epoch(end: EpochEnd) -> None:
    if end.epoch == 1:
        raise KeyboardInterrupt


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    config = tiny(epochs=3)
    whole = run_tiny(tmp_path / "whole", config=config)

    # Interrupted at an epoch boundary (as by a hook), then mid-epoch (as by Ctrl-C), then finished.
    with pytest.raises(KeyboardInterrupt):
        run_tiny(tmp_path / "cut", config=config, on_epoch_end=_stop_after_first_epoch)
    monkeypatch.setattr(train_loop, "LOG_EVERY", 1)

    def ctrl_c(report: StepProgress) -> None:
        if report.epoch == 2 and report.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match="--resume"):
        run_tiny(tmp_path / "cut", config=config, resume=True, progress=ctrl_c)
    state = torch.load(tmp_path / "cut" / "checkpoints" / config.run_id / "last.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 2)
    resumed = run_tiny(tmp_path / "cut", config=config, resume=True)

    a, b = final_weights(tmp_path / "whole", whole), final_weights(tmp_path / "cut", resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for x, y in zip(whole.epochs, resumed.epochs):
        assert (x.train_loss, x.val_top1_err, x.val_top5_err, x.lr) == (
            y.train_loss,
            y.val_top1_err,
            y.val_top5_err,
            y.lr,
        )


def test_a_leftover_checkpoint_needs_resume_or_force_and_resume_checks_the_config(tmp_path):
    config = tiny()
    with pytest.raises(KeyboardInterrupt):
        run_tiny(tmp_path, config=config, on_epoch_end=_stop_after_first_epoch)
    with pytest.raises(VggbenchError, match="--resume"):
        run_tiny(tmp_path, config=config)
    with pytest.raises(VggbenchError, match=r"another config \(lr"):
        run_tiny(tmp_path, config=tiny(lr=0.02), resume=True)
    # A checkpoint whose stored config differs from the run it sits under.
    path = tmp_path / "checkpoints" / config.run_id / "last.pt"
    state = torch.load(path, weights_only=True)
    state["config"]["seed"] = 7
    torch.save(state, path)
    with pytest.raises(VggbenchError, match="another config"):
        run_tiny(tmp_path, config=config, resume=True)


# --- Bad input and failures ---------------------------------------------------------------------------


def test_a_stored_fine_tuned_run_is_reused_without_its_sources_weights(tmp_path):
    """A copy of a store without checkpoints (results/ as committed): the fine-tuned run is found in
    the store; only training it again would need its source's weights, and then that is the error."""
    source = run_tiny(tmp_path)
    tuned = run_tiny(tmp_path, config=tiny(init_from=source.id, epochs=1))
    for run in (source, tuned):
        (tmp_path / run.checkpoint).unlink()
    assert run_tiny(tmp_path, config=tiny(init_from=source.id, epochs=1)) == tuned
    with pytest.raises(VggbenchError, match=f"--init-from {source.id}: the weights of run .* are missing"):
        run_tiny(tmp_path, config=tiny(init_from=source.id, epochs=1), force=True)


def test_init_from_a_run_whose_shapes_do_not_fit_is_an_error(stored):
    root, record = stored
    with pytest.raises(VggbenchError, match=f"--init-from {record.id}.*width"):
        run_tiny(root, config=tiny(width=1 / 8, init_from=record.id))
    with pytest.raises(VggbenchError, match=f"--init-from {record.id}.*config A.*missing"):
        run_tiny(root, config=tiny(net="B", init_from=record.id))


def test_init_from_a_run_with_other_classes_is_an_error(stored, tmp_path):
    root, record = stored
    other = dataclasses.replace(
        record,
        id="fiveclasses0",
        classes=record.classes[:5],
        model={**record.model, "num_classes": 5},
        checkpoint="checkpoints/fiveclasses0/model.pt",
    )
    store.write_run(tmp_path, other)
    state = VGG(ModelSpec(**other.model)).state_dict()
    (tmp_path / "checkpoints" / "fiveclasses0").mkdir(parents=True)
    torch.save(state, tmp_path / other.checkpoint)
    with pytest.raises(VggbenchError, match="5 classes"):
        run_tiny(tmp_path, config=tiny(init_from="fiveclasses0"))


def test_fine_tuning_and_preinit_from_a_stored_run(stored):
    root, record = stored
    tuned = run_tiny(root, config=tiny(init_from=record.id, lr=1e-3, scale="384", epochs=1))
    assert tuned.init_from == record.id and tuned.recipe.lr == 1e-3
    deeper = run_tiny(root, config=tiny(net="B", init="preinit", preinit_from=record.id[:8], epochs=1))
    copied = deeper.init.copied_layers
    assert deeper.init.preinit_from == record.id
    assert "classifier.0 -> classifier.0" in copied and len(copied) == 7  # 4 convs + 3 FC (stage mapping)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(end: EpochEnd) -> None:
        with torch.no_grad():
            next(end.model.parameters()).fill_(float("nan"))

    config = tiny(epochs=3)
    with pytest.raises(VggbenchError, match="diverged.*epoch 2.*checkpoint"):
        run_tiny(tmp_path, config=config, on_epoch_end=poison)
    state = torch.load(tmp_path / "checkpoints" / config.run_id / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert store.read_run(tmp_path, config.run_id) is None


# --- Distributed ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_give_the_weights_of_one_process_on_the_same_global_batch(tmp_path):
    # Dropout 0: its masks are drawn per rank, so with dropout the two runs would differ by design.
    # The loader gives each rank its slice of every global batch with the same augmentation draws.
    config = tiny(dropout=0.0)
    single = run_tiny(tmp_path / "single", config=config)
    argv = [
        sys.executable,
        "-m",
        "vggbench",
        *train_argv(
            "--deterministic",
            "--quiet",
            "--json",
            limit_train=64,
            limit_val=32,
            batch=16,
            epochs=2,
            dropout=0,
            results_dir=tmp_path / "ddp",
        ),
    ]
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            OMP_NUM_THREADS="1",
            PYTHONPATH=str(REPO),
        )
        procs.append(
            subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    record = RunRecord.from_json(json.loads(outputs[0][0]))
    assert record.id == single.id and record.world_size == 2
    a, b = final_weights(tmp_path / "single", single), final_weights(tmp_path / "ddp", record)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    assert record.epochs[-1].train_loss == pytest.approx(single.epochs[-1].train_loss, rel=1e-4)


# --- Learning and the CLI -------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_default_init_learns_where_the_papers_normal_init_stays_at_chance(tmp_path):
    # The synthetic set is too hard for a BN-free VGG in a test's budget (a BN net needs ~200 steps
    # to leave chance), so this uses 2048 Fashion-MNIST images: 160 steps of batch 64 (~15 s each).
    needs_fashion_mnist()
    setting = dict(
        width=1 / 8,
        data="fashion-mnist",
        limit_train=2048,
        limit_val=500,
        batch_size=64,
        epochs=5,
        deterministic=False,
    )
    learns = run_tiny(tmp_path, config=tiny(**setting))
    assert learns.top1_err < 70, learns.epochs  # chance: 90
    assert not learns.warnings
    stalls = run_tiny(tmp_path, config=tiny(**setting, init="paper", init_std=0.01))
    assert all(e.val_top1_err >= 85 for e in stalls.epochs)
    assert "not learning" in stalls.warnings[0] and "--init glorot" in stalls.warnings[0]


def test_cli_trains_and_prints_the_record_as_json(cli, tmp_path):
    argv = [
        "train",
        "--data",
        "synthetic",
        "--crop",
        "32",
        "--width",
        "0.0625",
        "--batch",
        "16",
        "--limit-train",
        "64",
        "--limit-val",
        "32",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--results-dir",
        str(tmp_path),
        "--quiet",
    ]
    result = cli(*argv, "--json")
    assert result.code == 0, result.err
    assert RECORD_KEYS <= set(json.loads(result.out))
    record = RunRecord.from_json(json.loads(result.out))
    assert record == store.read_run(tmp_path, record.id) and record.config["epochs"] == 1
    again = cli(*argv)
    assert again.code == 0 and again.out.startswith(f"run {record.id} (stored") and "top-1" in again.out


@pytest.mark.parametrize(
    "options, fragment",
    [
        (["--crop", "30"], "multiple of 32"),
        (["--scale", "512:256"], "reversed"),
        (["--scale", "abc"], "bad scale"),
        (["--scale", "0"], "bad scale"),
        (["--init", "preinit"], "--preinit-from"),
        (["--data", "imagefolder:/no/such/folder"], "/no/such/folder"),
        (["--init-from", "nosuchrun"], "no stored run"),
        (["--resume"], "nothing to resume"),
        (["--lr", "-1"], "learning rate"),
        (["--patience", "0"], "patience 0 must be at least 1"),
        (["--stop", "schedule", "--epochs", "1", "--patience", "2"], "epoch cap 1 is below the patience 2"),
        (["--stop", "schedule", "--max-lr-decreases", "0"], "fixed lr"),
        (["--stop", "plateau"], "unknown stopping rule 'plateau'"),
        (["--input-range", "0-100"], "unknown input range '0-100'"),
        (["--config", "A-LRN", "--lrn-alpha", "0"], "LRN alpha 0.0 must be positive"),
        (["--init", "paper", "--init-std", "0"], "init std 0.0 must be positive"),
        (["--format", "csv"], "unknown format 'csv'; choose one of text, json"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(cli, tmp_path, options, fragment):
    result = cli(
        "train",
        "--crop",
        "32",
        "--width",
        "0.0625",
        "--device",
        "cpu",
        "--results-dir",
        str(tmp_path),
        "--quiet",
        *options,
    )
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "runs").exists()


def test_the_schedule_rule_stops_where_the_plateau_schedule_finishes(tmp_path):
    """Replaying the recorded val errors through the schedule gives the epoch the run stopped at."""
    record = run_tiny(tmp_path, config=tiny(stop="schedule", patience=1, max_lr_decreases=1, epochs=12))
    errors = [e.val_top1_err for e in record.epochs]
    schedule = PlateauSchedule(record.recipe.lr, patience=1, max_decreases=1)
    finished = []
    for error in errors:
        schedule.step(error)
        finished.append(schedule.finished)
    assert finished[-1] and not any(finished[:-1]) and len(errors) < 12
    assert record.recipe.stop == "schedule" and record.recipe.lr_decreases == 1
    chance = 100 * (1 - 1 / len(record.classes)) - 1
    at_chance = all(e >= chance for e in errors[-3:])
    assert record.stopped_by == ("stalled" if at_chance else "schedule")
    assert record.val_slope == pytest.approx(val_slope(errors))
