"""MACs (fvcore with explicit handlers), the per-layer breakdown and Section 2.3's table."""

import pytest

from vggbench.counting import count_macs, layer_breakdown, mac_analysis, small_filter_table, summarize
from vggbench.models import ModelSpec, uninitialised_model

TOTAL_MACS_224 = {
    "A": 7_609_090_048,
    "B": 11_308_466_176,
    "C": 11_770_888_192,
    "D": 15_470_264_320,
    "E": 19_632_062_464,
    "B-5x5": 9_356_017_664,
}
CONV_MACS_224 = {
    "A": 7_485_456_384,
    "B": 11_184_832_512,
    "C": 11_647_254_528,
    "D": 15_346_630_656,
    "E": 19_508_428_800,
}
FC_MACS = 123_633_664


@pytest.mark.parametrize("name", list(TOTAL_MACS_224))
def test_conv_plus_linear_macs_at_224(name):
    conv, total = count_macs(uninitialised_model(ModelSpec(name)), 224)
    assert total == TOTAL_MACS_224[name]
    if name in CONV_MACS_224:
        assert conv == CONV_MACS_224[name]
        assert total - conv == FC_MACS


def test_every_op_has_a_handler_so_nothing_is_silently_zero():
    analysis = mac_analysis(uninitialised_model(ModelSpec("A-LRN", width=0.125, crop=32)), 32)
    analysis.total()
    assert dict(analysis.unsupported_ops()) == {}


def test_lrn_costs_one_mac_per_element_per_window_place():
    lrn_rows = [r for r in layer_breakdown(ModelSpec("A-LRN")) if r.kind.startswith("LRN")]
    assert len(lrn_rows) == 1 and lrn_rows[0].macs == 64 * 224 * 224 * 5
    assert summarize(ModelSpec("A-LRN")).macs == TOTAL_MACS_224["A"] + 64 * 224 * 224 * 5


def test_breakdown_pools_are_zero_macs_and_fields_grow_as_computed():
    rows = layer_breakdown(ModelSpec("A"))
    assert sum(r.macs for r in rows) == TOTAL_MACS_224["A"]
    assert sum(r.params for r in rows) == 132_863_336
    pools = [r for r in rows if r.kind.startswith("maxpool")]
    assert [r.macs for r in pools] == [0] * 5
    assert [(r.receptive_field, r.jump) for r in pools] == [(4, 2), (10, 4), (30, 8), (70, 16), (150, 32)]
    assert rows[-1].output_shape == (1000,)


def test_breakdown_at_a_larger_size_uses_the_dense_form():
    rows = layer_breakdown(ModelSpec("A", width=0.125, num_classes=10, crop=32), size=64)
    assert rows[-1].output_shape == (10, 2, 2)


def test_summary_flops_are_twice_macs_and_table2_agrees():
    row = summarize(ModelSpec("D"))
    assert row.flops == 2 * row.macs and row.params_millions == 138 and row.agrees is True
    assert summarize(ModelSpec("D", num_classes=10)).agrees is None  # not comparable to Table 2


def test_small_filter_table_matches_section_2_3():
    rows = small_filter_table(channels=64, max_layers=3)
    three = rows[2]
    assert (three.receptive_field, three.stack_params, three.single_params) == (7, 27 * 64**2, 49 * 64**2)
    assert (three.stack_nonlinearities, three.single_nonlinearities) == (3, 1)
    assert [r.receptive_field for r in rows] == [3, 5, 7]
    assert rows[1].stack_params == 18 * 64**2 and rows[1].single_params == 25 * 64**2


# --- The counts shipped for the paper's settings ----------------------------------------------------


def test_the_shipped_counts_are_fvcores():
    """`make counts` wrote them; any change of the code's counts must be written again."""
    import json

    from vggbench.counting import SHIPPED, shipped_counts

    assert json.loads(SHIPPED.read_text()) == json.loads(json.dumps(shipped_counts()))


def test_params_at_the_papers_settings_loads_neither_torch_nor_fvcore(tmp_path):
    import os
    import subprocess
    import sys

    probe = (
        "import sys; from vggbench.cli import run; code = run(['params', '--format', 'json']); "
        "print(code, 'torch' in sys.modules, 'fvcore' in sys.modules, file=sys.stderr)"
    )
    env = {**os.environ, "VGGBENCH_CACHE_DIR": ""}  # no on-disk cache: the shipped file alone
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "0 False False"
    assert '"params": 138357544' in done.stdout  # D's 138,357,544 parameters, Table 2's 138M


def test_other_settings_are_not_shipped():
    from vggbench.counting import shipped

    assert shipped("summary", "D", 1000, 1.0, 224)["params"] == 138357544
    assert shipped("summary", "D", 10, 1.0, 224) is None and shipped("summary", "D", 1000, 0.5, 224) is None
    assert shipped("summary", "D", 1000, 1.0, 32) is None
