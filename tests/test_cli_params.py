"""`vggbench params` end to end: formats, oracles through the CLI, bad input."""

import json

import pytest
from conftest import assert_one_line_error
from test_architectures import EXACT_PARAMS
from test_counting import TOTAL_MACS_224


def test_json_has_one_object_per_net_with_the_paper_oracles(cli):
    result = cli("params", "--format", "json")
    assert result.code == 0, result.err
    rows = {row["net"]: row for row in json.loads(result.out)}
    assert list(rows) == ["A", "A-LRN", "B", "C", "D", "E", "B-5x5"]
    for name, row in rows.items():
        assert {
            "net",
            "params",
            "params_millions",
            "paper_params_millions",
            "conv_macs",
            "macs",
            "flops",
        } <= set(row)
        assert row["params"] == EXACT_PARAMS[name]
        assert row["flops"] == 2 * row["macs"]
        if name in TOTAL_MACS_224:
            assert row["macs"] == TOTAL_MACS_224[name]
        if name != "B-5x5":
            assert row["params_millions"] == row["paper_params_millions"]
    assert rows["B-5x5"]["paper_params_millions"] is None


@pytest.mark.parametrize(
    "fmt, marker",
    [
        ("table", "params (M)"),
        ("markdown", "|:"),
        ("latex", "\\begin{tabular}"),
        ("csv", "net,weight_layers,params"),
    ],
)
def test_every_format_renders(cli, fmt, marker, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: headers unwrapped
    result = cli("params", "--format", fmt, "--width", "0.125", "--size", "32", "--classes", "10")
    assert result.code == 0 and marker in result.out


def test_per_layer_breakdown(cli):
    result = cli("params", "--config", "A", "--format", "json")
    rows = json.loads(result.out)
    assert rows[-1] == {
        "layer": "classifier.6",
        "kind": "FC-1000",
        "output_shape": "1000",
        "params": 4_097_000,
        "macs": 4_096_000,
        "receptive_field": None,
        "jump": None,
    }
    assert [r["receptive_field"] for r in rows if r["kind"].startswith("maxpool")][-1] == 150


def test_small_filter_table(cli):
    rows = json.loads(cli("params", "--filters", "--channels", "10", "--format", "json").out)
    assert (rows[2]["stack_params"], rows[2]["single_params"]) == (2700, 4900)


def test_write_renders_table2_files(cli, tmp_path):
    result = cli("params", "--width", "0.125", "--size", "32", "--write", str(tmp_path))
    assert result.code == 0
    markdown = (tmp_path / "table2.md").read_text()
    assert "| D     |" in markdown and "138,357,544" in markdown  # Table 2 is always at 224, 1000 classes
    assert "\\begin{tabular}" in (tmp_path / "tables" / "table2.tex").read_text()


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--config", "F"], ["unknown config 'F'", "A, A-LRN, B, C, D, E, B-5x5"]),
        (["--size", "31"], ["multiple of 32"]),
        (["--size", "100"], ["multiple of 32"]),
        (["--width", "0"], ["width", "positive"]),
        (["--classes", "-1"], ["classes", "at least 1"]),
        (["--format", "xml"], ["unknown format 'xml'", "table, markdown, latex, json, csv"]),
        (["--size", "abc"], ["--size"]),
        (["--bogus"], ["--bogus"]),
        (["--filters", "--channels", "0"], ["channels 0 must be at least 1"]),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, argv, fragments):
    assert_one_line_error(cli("params", *argv), *fragments)
