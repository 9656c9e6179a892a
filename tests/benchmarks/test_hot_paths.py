"""pytest-benchmark timings of the hot paths (run with `make bench`; see conftest.py):
a training step (ours and a bare loop's), batched augmentation, dense and multi-crop evaluation of
one batch, and MAC counting. Small CPU sizes: A at width 1/8, crop 32, batch 64."""

from __future__ import annotations

import pytest
import torch

from vggbench import counting
from vggbench import train as training
from vggbench.bench import measure as bench_measure
from vggbench.counting import count_macs
from vggbench.data import TrainAugment
from vggbench.data.stats import RGBStats
from vggbench.data.synthetic import make_split
from vggbench.evaluate import protocols
from vggbench.models import ModelSpec, build_model, to_fully_convolutional, uninitialised_model
from vggbench.scales import parse_train_scale, to_pixels

SPEC = ModelSpec("A", 10, 0.125, 32)
BATCH = 64
CPU = torch.device("cpu")
OPTIONS = bench_measure.BenchOptions(device="cpu")
STATS = RGBStats(torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.02, 0.005, 0.001]), torch.eye(3))
Q_384 = to_pixels(384, SPEC.crop)  # the middle jitter test scale at crop 32: 55 px


@pytest.fixture(scope="module")
def batch():
    return bench_measure.synthetic_batch(SPEC, BATCH, CPU, OPTIONS)


def test_training_step_ours(benchmark, batch):
    model = bench_measure.prepare_model(SPEC, OPTIONS, CPU)
    optimizer = bench_measure.sgd(model)
    x, y = batch
    benchmark.pedantic(training.train_step, args=(model, optimizer, x, y), rounds=10, warmup_rounds=2)


def test_training_step_bare_loop(benchmark, batch):
    model = bench_measure.prepare_model(SPEC, OPTIONS, CPU)
    step = bench_measure.bare_step(model, bench_measure.sgd(model), *batch, CPU, OPTIONS)
    benchmark.pedantic(step, rounds=10, warmup_rounds=2)


def test_batched_augmentation(benchmark):
    images = make_split(BATCH, SPEC.crop, 10, seed=0, stream=0).images
    augment = TrainAugment(SPEC.crop, parse_train_scale("256:512"), STATS)
    params = augment.draw(BATCH, torch.Generator().manual_seed(0))
    out = benchmark(augment.apply, images, params)
    assert out.shape == (BATCH, 3, SPEC.crop, SPEC.crop)


def test_fast_path_loader_batch(benchmark):
    batches = iter(bench_measure.endless_batches(bench_measure.fast_path_loader(SPEC, BATCH, CPU, OPTIONS)))
    x, _ = benchmark.pedantic(next, args=(batches,), rounds=20, warmup_rounds=2)
    assert x.shape == (BATCH, 3, SPEC.crop, SPEC.crop)


@pytest.fixture(scope="module")
def eval_batch():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, Q_384, Q_384, generator=generator)


def test_dense_evaluation_of_one_batch(benchmark, eval_batch):
    conv = to_fully_convolutional(build_model(SPEC)).eval()
    with torch.inference_mode():
        probs = benchmark.pedantic(
            protocols.dense_probabilities, args=(conv, eval_batch), rounds=10, warmup_rounds=1
        )
    assert probs.shape == (8, 10)


def test_multi_crop_evaluation_of_one_batch(benchmark, eval_batch):
    fc = build_model(SPEC).eval()
    with torch.inference_mode():
        probs = benchmark.pedantic(
            protocols.multi_crop_probabilities, args=(fc, eval_batch, SPEC.crop), rounds=5, warmup_rounds=1
        )
    assert probs.shape == (8, 10)


def test_mac_counting_fvcore_d_224(benchmark):
    model = uninitialised_model(ModelSpec("D"))
    conv, total = benchmark.pedantic(count_macs, args=(model, 224), rounds=3, warmup_rounds=1)
    assert total == 15_470_264_320


def test_mac_counting_per_pass_first_call_d_224(benchmark):
    """The first size of a net and form: fvcore's count at the crop, then a shape-only pass."""
    spec = ModelSpec("D")

    def first_call() -> int:
        counting._macs_per_output.cache_clear()
        counting.macs_per_pass.cache_clear()
        return counting.macs_per_pass(spec, False, 224, 224)

    assert benchmark.pedantic(first_call, rounds=3, warmup_rounds=1) == 15_470_264_320


def test_mac_counting_per_pass_new_size_d(benchmark):
    """Every further size: a shape-only pass on the meta device."""
    spec = ModelSpec("D")
    counting.macs_per_pass(spec, True, 224, 224)

    def new_size() -> int:
        counting.macs_per_pass.cache_clear()
        return counting.macs_per_pass(spec, True, 256, 256)

    assert benchmark(new_size) == 20_539_113_472
