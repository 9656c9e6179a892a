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
    expected = {"paper": std, "glorot": (2 / (fan_in + fan_out)) ** 0.5, "kaiming": (2 / fan_out) ** 0.5}[
        scheme
    ]
    assert layer.weight.std().item() == pytest.approx(expected, rel=0.03)
    assert layer.weight.mean().abs().item() < 0.05 * expected
    assert all(
        torch.count_nonzero(m.bias) == 0 for m in model.modules() if hasattr(m, "bias") and m.bias is not None
    )


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
