"""Training's pieces: the plateau schedule, accumulation, the step loop and validation's top-k.

Oracles: the schedule against a hand-worked sequence; k micro-batches against one batch; the step
loop against bare `train_step` calls; the device top-k count against the evaluation protocols'.
"""

from __future__ import annotations

import copy

import pytest
import torch

from vggbench.models import VGG, ModelSpec, init_weights
from vggbench.train import PlateauSchedule, StepLoop, micro_batches, train_step
from vggbench.train import loop as train_loop
from vggbench.train.trainer import val_slope


def test_plateau_divides_by_ten_after_patience_bad_epochs_and_stops_after_three():
    schedule = PlateauSchedule(1.0, patience=2, max_decreases=3)
    errors = [50, 40, 40, 40, 45, 40, 30, 30, 30, 30, 30, 30, 30, 30]
    lrs = []
    for error in errors:
        schedule.step(error)
        lrs.append(schedule.lr)
    expected = [1, 1, 1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001]
    assert lrs == pytest.approx(expected)
    assert schedule.decreases == 3


def test_the_plateau_after_the_last_decrease_finishes_the_schedule():
    """The paper stopped training at the plateau after its third lr decrease."""
    schedule = PlateauSchedule(1.0, patience=2, max_decreases=3)
    finished = []
    for error in [50, 40, 40, 40, 45, 40, 30, 30, 30, 30, 30, 30]:
        schedule.step(error)
        finished.append(schedule.finished)
    assert finished == [False] * 10 + [True, True]  # decreases after epochs 4, 6 and 9; plateau at 11


def test_val_slope_is_the_least_squares_slope_of_the_last_three_epochs():
    assert val_slope([10.0, 8.0, 5.0, 3.0]) == pytest.approx(-2.5)
    assert val_slope([10.0, 7.0]) == pytest.approx(-3.0)
    assert val_slope([10.0]) is None


def test_plateau_state_round_trips():
    schedule = PlateauSchedule(0.01, patience=1)
    for error in (10, 12, 9):
        schedule.step(error)
    copy_ = PlateauSchedule(0.01, patience=1)
    copy_.load_state_dict(schedule.state_dict())
    assert copy_ == schedule


@pytest.mark.parametrize(
    "batch, limit, expected", [(256, None, 1), (256, 256, 1), (256, 100, 4), (12, 5, 3), (7, 2, 7)]
)
def test_micro_batches_divide_the_batch_evenly(batch, limit, expected):
    k = micro_batches(batch, limit)
    assert k == expected and batch % k == 0 and (limit is None or batch // k <= limit)


def test_accumulating_micro_batches_gives_the_weights_of_one_big_batch():
    torch.manual_seed(0)
    model = VGG(ModelSpec("A", 10, 1 / 16, 32, dropout=0.0))
    init_weights(model, "kaiming")
    twin = copy.deepcopy(model)
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    losses = []
    for net, k in ((model, 1), (twin, 4)):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        losses.append([train_step(net, optimizer, x, y, k) for _ in range(3)])
    for a, b in zip(model.state_dict().values(), twin.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(torch.stack(losses[0]), torch.stack(losses[1]), atol=1e-6, rtol=1e-5)


def test_step_loop_reports_interval_means_and_takes_the_same_steps_as_train_step(monkeypatch):
    """The loop's per-step work (also what `vggbench bench` times): the same weights as bare
    `train_step` calls, and a mean loss only at every LOG_EVERY-th and the last step."""
    monkeypatch.setattr(train_loop, "LOG_EVERY", 3)
    torch.manual_seed(0)
    model = VGG(ModelSpec("A", 10, 1 / 16, 32, dropout=0.0))
    init_weights(model, "kaiming")
    twin = copy.deepcopy(model)
    batches = [(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))) for _ in range(7)]

    def sgd(net):
        return torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    loop = StepLoop(model, sgd(model), torch.device("cpu"))
    reported = [loop.step(x, y, last=i == len(batches) - 1) for i, (x, y) in enumerate(batches)]
    optimizer = sgd(twin)
    losses = [float(train_step(twin, optimizer, x, y)) for x, y in batches]

    assert [i for i, mean in enumerate(reported) if mean is not None] == [2, 5, 6]
    expected = [sum(losses[0:3]) / 3, sum(losses[3:6]) / 3, losses[6]]
    assert [reported[i] for i in (2, 5, 6)] == pytest.approx(expected, rel=1e-6)
    assert float(loop.loss_sum) == pytest.approx(sum(losses), rel=1e-6)
    assert loop.done == 7
    for a, b in zip(model.state_dict().values(), twin.state_dict().values()):
        assert torch.equal(a, b)
