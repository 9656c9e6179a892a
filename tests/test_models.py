"""Models: torchvision compatibility, FC <-> conv equivalence, init schemes, pre-initialisation."""

import pytest
import torch
import torchvision

from vggbench.errors import VggbenchError
from vggbench.models import (
    VGG,
    ModelSpec,
    build_model,
    convert_state,
    init_weights,
    load_state,
    lrn_layer,
    paper_layer_stds,
    preinit_from,
    to_fully_connected,
    to_fully_convolutional,
)

TORCHVISION = {"A": "vgg11", "B": "vgg13", "D": "vgg16", "E": "vgg19"}


@pytest.mark.parametrize("config", list(TORCHVISION))
def test_torchvision_state_loads_and_gives_the_same_outputs(config):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, TORCHVISION[config])(weights=None).eval()
    ours = VGG(ModelSpec(config)).eval()
    load_state(ours, theirs.state_dict())
    image = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(image), theirs(image), atol=1e-5, rtol=0)


def test_torchvision_state_loads_into_the_dense_form_too():
    theirs = torchvision.models.vgg11(weights=None).eval()
    dense = VGG(ModelSpec("A"), fully_convolutional=True).eval()
    load_state(dense, theirs.state_dict())
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(dense(image).flatten(1), theirs(image), atol=1e-5, rtol=0)


@pytest.mark.parametrize("config", ["A", "A-LRN", "C", "B-5x5"])
def test_fully_convolutional_form_equals_fc_form_at_the_crop(config):
    fc = build_model(ModelSpec(config, num_classes=10, width=0.125, crop=64)).eval()
    conv = to_fully_convolutional(fc)
    image = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        scores = conv(image)
        assert scores.shape == (3, 10, 1, 1)
        torch.testing.assert_close(scores.flatten(1), fc(image), atol=1e-5, rtol=0)


def test_dense_score_map_size_at_a_larger_input():
    conv = VGG(ModelSpec("D", width=0.0625), fully_convolutional=True).eval()
    with torch.no_grad():
        assert conv(torch.zeros(1, 3, 384, 384)).shape == (1, 1000, 6, 6)  # (384/32 - 224/32 + 1)^2
        assert conv(torch.zeros(1, 3, 256, 320)).shape == (1, 1000, 2, 4)


def test_conversion_moves_the_same_weights_both_ways():
    fc = build_model(ModelSpec("B", num_classes=7, width=0.125, crop=96))
    back = to_fully_connected(to_fully_convolutional(fc))
    for key, value in fc.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    conv_state = convert_state(fc.state_dict(), fc.spec, to_conv=True)
    assert conv_state["classifier.0.weight"].shape == (round(4096 * 0.125), 64, 3, 3)
    assert conv_state["classifier.6.weight"].shape == (7, 512, 1, 1)


def test_fc_form_rejects_other_input_sizes_with_a_hint():
    model = build_model(ModelSpec("A", num_classes=10, width=0.125, crop=32))
    with pytest.raises(VggbenchError, match="fully-convolutional"):
        model(torch.zeros(1, 3, 64, 64))


def test_load_state_of_another_config_names_the_mismatch():
    model = VGG(ModelSpec("A", num_classes=10, width=0.125, crop=32))
    other = VGG(ModelSpec("A", num_classes=5, width=0.125, crop=32))
    with pytest.raises(VggbenchError, match="classifier.6"):
        load_state(model, other.state_dict())


@pytest.mark.parametrize(
    "scheme, std", [("paper", 0.01), ("paper", 0.1), ("glorot", None), ("kaiming", None)]
)
def test_init_schemes_give_the_stated_statistics(scheme, std):
    model = VGG(ModelSpec("A", num_classes=10, width=0.5, crop=32))
    init_weights(model, scheme, std=std or 0.01, generator=torch.Generator().manual_seed(0))
    layer = model.features[model.conv_positions[2][2]]  # conv 128 -> 256 at width 1/2: 64 -> 128, 3x3
    fan_in, fan_out = layer.weight[0].numel(), layer.weight.shape[0] * layer.weight[0, 0].numel()
    # the paper's std is the full-width net's: at width 1/2 this layer's fan-in is half, so std * sqrt(2)
    expected = {
        "paper": (std or 0.01) * 2**0.5,
        "glorot": (2 / (fan_in + fan_out)) ** 0.5,
        "kaiming": (2 / fan_out) ** 0.5,
    }[scheme]
    assert layer.weight.std().item() == pytest.approx(expected, rel=0.03)
    assert layer.weight.mean().abs().item() < 0.05 * expected
    assert all(
        torch.count_nonzero(m.bias) == 0 for m in model.modules() if hasattr(m, "bias") and m.bias is not None
    )


@pytest.mark.parametrize("width", [1.0, 0.5, 0.125])
def test_paper_layer_stds_scale_every_layer_but_the_first_by_one_over_root_width(width):
    stds = paper_layer_stds(ModelSpec("A", num_classes=10, width=width, crop=32), 0.01)
    assert len(stds) == 8 + 3
    assert stds[0] == pytest.approx(0.01)  # 3 x 3 x 3 inputs at every width
    assert stds[1:] == pytest.approx([0.01 / width**0.5] * 10)


def test_glorot_and_kaiming_divide_the_first_layer_by_the_input_std():
    spec = ModelSpec("A", num_classes=10, width=0.125, crop=32)
    for scheme in ("glorot", "kaiming"):
        unit, scaled = VGG(spec), VGG(spec)
        init_weights(unit, scheme, generator=torch.Generator().manual_seed(3))
        init_weights(scaled, scheme, generator=torch.Generator().manual_seed(3), input_std=80.0)
        assert torch.allclose(scaled.features[0].weight * 80.0, unit.features[0].weight, atol=1e-7)
        assert torch.equal(scaled.features[3].weight, unit.features[3].weight)


def test_paper_init_at_width_one_eighth_gives_the_full_width_logit_std():
    """On the same 0-255 input the initial logits' std at width 1/8 is within 2x of the full-width
    net's; with the std unscaled it is about 8^5 (one factor of sqrt(8) per layer) smaller."""
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 60.0
    logit_std = {}
    for width in (1.0, 0.125):
        model = VGG(ModelSpec("A", num_classes=10, width=width, crop=32)).eval()
        init_weights(model, "paper", 0.01, torch.Generator().manual_seed(1))
        with torch.no_grad():
            logit_std[width] = model(x).std().item()
    assert 0.5 < logit_std[0.125] / logit_std[1.0] < 2.0


def test_lrn_is_krizhevskys_formula():
    """b = a / (k + alpha * sum over n = 5 adjacent channels of a^2)^beta, alpha 1e-4, beta 0.75, k 2,
    written out channel by channel."""
    a = torch.arange(2 * 7 * 3 * 2, dtype=torch.float64).reshape(2, 7, 3, 2) * 3.0 - 40.0
    expected = torch.empty_like(a)
    for c in range(7):
        window = a[:, max(0, c - 2) : min(7, c + 3)]
        expected[:, c] = a[:, c] / (2.0 + 1e-4 * window.pow(2).sum(dim=1)) ** 0.75
    assert torch.allclose(lrn_layer()(a), expected, rtol=0, atol=1e-6)
    assert torch.allclose(
        lrn_layer(2e-4)(a)[0, 3, 1, 1], a[0, 3, 1, 1] / (2 + 2e-4 * a[0, 1:6, 1, 1].pow(2).sum()) ** 0.75
    )


def test_lrn_alpha_must_be_positive():
    for alpha in (0.0, -1e-4, float("nan")):
        with pytest.raises(VggbenchError, match="LRN alpha"):
            ModelSpec("A-LRN", lrn_alpha=alpha)


def test_unknown_init_scheme():
    with pytest.raises(VggbenchError, match="paper, glorot, kaiming"):
        init_weights(VGG(ModelSpec("A", width=0.125, crop=32)), "he")


def test_preinit_stage_mapping_copies_four_convs_and_three_fc_layers_into_d():
    source = build_model(ModelSpec("A", num_classes=10, width=0.125, crop=32))
    target = build_model(ModelSpec("D", num_classes=10, width=0.125, crop=32))
    copied = preinit_from(target, source.state_dict(), source.spec, mapping="stage")
    # A's convs at features 0, 3, 6, 8 -> D's first conv of stages 1, 2, 3 and second of stage 3.
    assert copied[:4] == [
        "features.0 -> features.0",
        "features.3 -> features.5",
        "features.6 -> features.10",
        "features.8 -> features.12",
    ]
    assert copied[4:] == [f"classifier.{i} -> classifier.{i}" for i in (0, 3, 6)]
    assert torch.equal(target.features[12].weight, source.features[8].weight)
    assert torch.equal(target.classifier[6].bias, source.classifier[6].bias)


def test_preinit_order_mapping_copies_only_shape_matching_layers():
    source = build_model(ModelSpec("A", num_classes=10, width=0.125, crop=32))
    target = build_model(ModelSpec("B", num_classes=10, width=0.125, crop=32))
    copied = preinit_from(target, source.state_dict(), source.spec, mapping="order")
    assert copied == ["features.0 -> features.0"] + [f"classifier.{i} -> classifier.{i}" for i in (0, 3, 6)]


def _lrn_ratio_relative_std(input_range: str, steps: int = 10) -> float:
    """A-LRN (width 1/8, Kaiming, lr 0.01) trained `steps` SGD steps on synthetic images: the relative
    std over positions of the LRN layer's output / input, where its input is non-zero. (On 0-255
    input the first layer's gradients are ~80^2 times larger than on unit-variance input, so its
    activations grow within a few steps; Glorot's grow more slowly, to about 1% in 30 steps.)"""
    from torch.nn import functional as F

    from vggbench.data import TrainAugment, input_std, load_dataset, rgb_statistics
    from vggbench.scales import parse_train_scale

    torch.manual_seed(0)
    data = load_dataset("synthetic")
    stats = rgb_statistics(data.train)
    augment = TrainAugment(32, parse_train_scale("256"), stats, input_range=input_range)
    model = VGG(ModelSpec("A-LRN", num_classes=10, width=0.125, crop=32))
    init_weights(
        model, "kaiming", generator=torch.Generator().manual_seed(0), input_std=input_std(stats, input_range)
    )
    seen = {}
    model.features[2].register_forward_hook(lambda _m, i, o: seen.update(a=i[0].detach(), b=o.detach()))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps + 1):
        index = torch.randint(0, len(data.train), (64,), generator=generator)
        loss = F.cross_entropy(model(augment(data.train.images[index], generator)), data.train.labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    active = seen["a"] > 0
    ratio = seen["b"][active] / seen["a"][active]
    return (ratio.std() / ratio.mean()).item()


def test_lrn_bites_on_the_papers_0_255_input_and_is_a_constant_on_0_1():
    """On [0, 1] input with k = 2, LRN is the constant 2^-0.75 (the ablation tested nothing); on the
    paper's 0-255 input its output / input varies across positions by more than 1% after 10 steps."""
    assert _lrn_ratio_relative_std("0-255") > 0.01
    assert _lrn_ratio_relative_std("0-1") < 0.001
