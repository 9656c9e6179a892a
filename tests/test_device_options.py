"""train's device options: bf16 autocast, channels_last (the default), torch.compile; their run
ids, records and bad input."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import assert_one_line_error, needs_bf16_cpu
from torch import nn

from vggbench import runtime
from vggbench.models import VGG, ModelSpec, init_weights
from vggbench.train import TrainConfig, train
from vggbench.train.loop import StepLoop

TINY = dict(net="A", width=1 / 16, crop=32, data="synthetic", limit_train=32, limit_val=16, batch_size=16)


def _net_and_batch() -> tuple[VGG, torch.Tensor, torch.Tensor]:
    model = VGG(ModelSpec("A", 4, 1 / 16, 32))
    init_weights(model, "glorot", 0.01, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    return (
        model,
        torch.randn(8, 3, 32, 32, generator=generator),
        torch.randint(0, 4, (8,), generator=generator),
    )


def _one_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, channels_last: bool, bf16: bool = False):
    """One SGD step through StepLoop (as Trainer drives it); the inputs the convs saw and their outputs."""
    model = model.to(memory_format=runtime.memory_format(channels_last))
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [
        m.register_forward_hook(lambda _, inputs, out: seen.append((inputs[0], out)))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    torch.manual_seed(0)  # dropout masks
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loop = StepLoop(
        model,
        optimizer,
        torch.device("cpu"),
        autocast=runtime.autocast(torch.device("cpu"), bf16),
        channels_last=channels_last,
    )
    loss = loop.step(x, y, last=True)
    for hook in hooks:
        hook.remove()
    return model, loss, seen


def test_channels_last_changes_only_float_rounding():
    model, x, y = _net_and_batch()
    plain, loss_plain, _ = _one_step(copy.deepcopy(model), x, y, channels_last=False)
    nhwc, loss_nhwc, seen = _one_step(copy.deepcopy(model), x, y, channels_last=True)
    assert loss_nhwc == pytest.approx(loss_plain, abs=1e-5)
    for (name, a), b in zip(plain.named_parameters(), nhwc.parameters()):
        assert torch.allclose(a, b, atol=1e-5, rtol=0), name
    convs = [m for m in nhwc.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert seen[0][0].is_contiguous(memory_format=torch.channels_last)
    assert not any(
        c.weight.is_contiguous(memory_format=torch.channels_last)
        for c in plain.modules()
        if isinstance(c, nn.Conv2d) and c.weight.shape[-1] > 1
    )


def test_bf16_autocast_computes_the_convs_in_bf16():
    needs_bf16_cpu()  # really computes in bf16: only where the CPU can
    model, x, y = _net_and_batch()
    _, _, fp32 = _one_step(copy.deepcopy(model), x, y, channels_last=True)
    _, loss, bf16 = _one_step(copy.deepcopy(model), x, y, channels_last=True, bf16=True)
    assert {out.dtype for _, out in fp32} == {torch.float32}
    assert {out.dtype for _, out in bf16} == {torch.bfloat16} and len(bf16) == len(fp32) == 8
    assert loss is not None and loss == loss  # finite, not NaN


def test_run_id_has_bf16_only_when_on():
    # ids of schema 4 (the data fingerprint in every id); fp32 ids have no bf16 key, as before it existed
    assert TrainConfig().run_id == "b3db16c7ae7a"
    d = dict(net="D", width=0.125, crop=32, data="synthetic")
    fp32 = TrainConfig(**d).run_id
    assert TrainConfig(**d, compile=True).run_id == fp32
    assert TrainConfig(**d, channels_last=False).run_id == TrainConfig(**d, channels_last=True).run_id == fp32
    assert TrainConfig(**d, bf16=False).run_id == fp32 != TrainConfig(**d, bf16=True).run_id
    assert "bf16" not in TrainConfig(**d).identity() and TrainConfig(**d, bf16=True).identity()["bf16"]
    assert TrainConfig().channels_last and not TrainConfig().compile and not TrainConfig().bf16


def test_trainer_uses_the_options_and_records_them(tmp_path, monkeypatch):
    from vggbench.train import loop, trainer

    # The plumbing, on any CPU: where this one has no bf16, its check is faked and autocast asked
    # for bf16 runs in fp32 (computing in bf16 is test_bf16_autocast_computes_the_convs_in_bf16's).
    native = runtime.bf16_supported(torch.device("cpu"))
    if not native:
        monkeypatch.setattr(runtime, "bf16_supported", lambda device: True)
    asked: list[tuple[str, bool]] = []

    def spy(where):
        def autocast(device, bf16):
            asked.append((where, bf16))
            return runtime.autocast(device, bf16 and native)

        return autocast

    monkeypatch.setattr(trainer, "autocast", spy("train"))
    monkeypatch.setattr(loop, "autocast", spy("validate"))
    formats = []
    record = train(
        TrainConfig(**TINY, epochs=1, bf16=True),
        results_dir=tmp_path,
        device="cpu",
        quiet=True,
        on_epoch_end=lambda end: formats.append(
            end.model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
        ),
    )
    assert {a for a in asked} == {("train", True), ("validate", True)}
    assert formats == [True]
    assert record.device_options == {"bf16": True, "channels_last": True, "compile": False}
    assert record.config["bf16"] is True and record.id == TrainConfig(**TINY, epochs=1, bf16=True).run_id
    formats.clear()
    plain = train(
        TrainConfig(**TINY, epochs=1, channels_last=False),
        results_dir=tmp_path,
        device="cpu",
        quiet=True,
        on_epoch_end=lambda end: formats.append(
            end.model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
        ),
    )
    assert formats == [False] and plain.device_options["channels_last"] is False


def test_device_option_checks(monkeypatch):
    cpu = torch.device("cpu")
    runtime.check_device_options(cpu, bf16=False, compile=False)  # nothing asked, nothing checked
    monkeypatch.setattr(runtime, "bf16_supported", lambda device: False)
    monkeypatch.setattr(runtime, "compile_available", lambda device: False)
    runtime.check_device_options(cpu, bf16=False, compile=False)
    with pytest.raises(runtime.VggbenchError, match="no bf16 support"):
        runtime.check_device_options(cpu, bf16=True, compile=False)
    with pytest.raises(runtime.VggbenchError, match="torch.compile is unavailable"):
        runtime.check_device_options(cpu, bf16=False, compile=True)


def test_compile_detection_needs_a_cpp_compiler(monkeypatch):
    monkeypatch.setattr(runtime.shutil, "which", lambda name: None)
    assert not runtime.compile_available(torch.device("cpu"))


TRAIN = ["train", "--crop", "32", "--width", "0.0625", "--device", "cpu", "--quiet"]
ABLATE = ["ablate", "lrn", "--preset", "smoke", "--seeds", "1", "--device", "cpu", "--quiet"]


@pytest.mark.parametrize(
    "command, option, broken, fragment",
    [
        (TRAIN, "--bf16", "bf16_supported", "--bf16: cpu has no bf16 support"),
        (TRAIN, "--compile", "compile_available", "--compile: torch.compile is unavailable here"),
        (ABLATE, "--bf16", "bf16_supported", "--bf16: cpu has no bf16 support"),
    ],
)
def test_cli_bad_device_options(cli, tmp_path, monkeypatch, command, option, broken, fragment):
    monkeypatch.setattr(runtime, broken, lambda device: False)
    result = cli(*command, option, "--results-dir", str(tmp_path))
    assert_one_line_error(result, fragment, "drop " + option)
    assert not (tmp_path / "runs").exists()
