"""Table 1 and Table 2: exact parameter counts, weight layers, receptive fields."""

import pytest

from vggbench import paper
from vggbench.architectures import ARCHITECTURES, TABLE1_NETS, get_architecture
from vggbench.counting import count_parameters, paper_millions, receptive_field
from vggbench.errors import VggbenchError
from vggbench.models import ModelSpec, uninitialised_model

EXACT_PARAMS = {
    "A": 132_863_336,
    "A-LRN": 132_863_336,
    "B": 133_047_848,
    "C": 133_638_952,
    "D": 138_357_544,
    "E": 143_667_240,
    "B-5x5": 134_503_528,
}
RECEPTIVE_FIELDS = {"A": 150, "A-LRN": 150, "B": 156, "C": 156, "D": 212, "E": 268, "B-5x5": 156}
WEIGHT_LAYERS = {"A": 11, "A-LRN": 11, "B": 13, "C": 16, "D": 16, "E": 19, "B-5x5": 8}


@pytest.mark.parametrize("name", list(EXACT_PARAMS))
def test_exact_parameters_at_1000_classes_224(name):
    assert count_parameters(uninitialised_model(ModelSpec(name))) == EXACT_PARAMS[name]


@pytest.mark.parametrize("name", TABLE1_NETS)
def test_table2_rounding_agrees_with_the_paper(name):
    assert paper_millions(EXACT_PARAMS[name]) == paper.TABLE2_PARAMS_MILLIONS[name]


@pytest.mark.parametrize("name", list(RECEPTIVE_FIELDS))
def test_receptive_field_after_the_last_pool(name):
    assert receptive_field(ModelSpec(name)) == RECEPTIVE_FIELDS[name]


@pytest.mark.parametrize("name", list(WEIGHT_LAYERS))
def test_weight_layers(name):
    assert get_architecture(name).weight_layers == WEIGHT_LAYERS[name]


def test_b5x5_replaces_each_pair_of_3x3_with_one_5x5():
    b, b5 = get_architecture("B"), get_architecture("B-5x5")
    assert [c.kernel for c in b5.convs] == [5] * 5
    assert [c.width for c in b5.convs] == [c.width for c in b.convs][::2]


def test_c_has_1x1_convs_as_the_last_conv_of_stages_3_to_5():
    stages = get_architecture("C").stages
    assert [stage[-1].kernel for stage in stages] == [3, 3, 1, 1, 1]


def test_width_multiplier_and_classes_change_counts_as_computed():
    # A at width 1/8, 10 classes, crop 32: convs 3-8-16-32,32-64,64-64,64; FC 64->512->512->10.
    convs = [(3, 8), (8, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64)]
    expected = sum(9 * i * o + o for i, o in convs) + (64 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10)
    assert count_parameters(uninitialised_model(ModelSpec("A", 10, 0.125, 32))) == expected


def test_unknown_config_names_the_choices():
    with pytest.raises(VggbenchError, match="A, A-LRN, B, C, D, E, B-5x5"):
        get_architecture("F")
    assert get_architecture("a-lrn") is ARCHITECTURES["A-LRN"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"crop": 31}, "multiple of 32"),
        ({"crop": 100}, "multiple of 32"),
        ({"width": 0}, "positive"),
        ({"num_classes": -1}, "at least 1"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_model_specs(kwargs, message):
    with pytest.raises(VggbenchError, match=message):
        ModelSpec("A", **kwargs)
