"""VGGBENCH_ABSENT: the switch that makes a machine look bare, so that `make test-bare` finds a test
that assumes a capability on every machine."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_one_line_error, train_argv

from vggbench import capabilities, runtime
from vggbench.data import load_dataset, sources
from vggbench.errors import VggbenchError


@pytest.mark.parametrize(
    "value, hidden",
    [
        ("", set()),
        ("bf16", {"bf16"}),
        (" BF16 , pdflatex,", {"bf16", "pdflatex"}),
        ("all", {"bf16", "fashion-mnist", "pdflatex"}),
        ("fashion-mnist,all", {"bf16", "fashion-mnist", "pdflatex"}),
    ],
)
def test_the_switch_names_what_it_hides(monkeypatch, value, hidden):
    monkeypatch.setenv(capabilities.ABSENT_ENV, value)
    assert capabilities.hidden() == hidden
    assert {c for c in capabilities.CAPABILITIES if capabilities.absent(c)} == hidden


def test_an_unknown_capability_is_refused_with_the_known_ones(monkeypatch):
    monkeypatch.setenv(capabilities.ABSENT_ENV, "bf16,gpu")
    with pytest.raises(VggbenchError) as error:
        capabilities.hidden()
    assert str(error.value) == (
        "VGGBENCH_ABSENT: unknown capability gpu; use a comma-separated list of bf16, fashion-mnist, "
        "pdflatex, or all"
    )


def test_an_unknown_capability_is_a_one_line_error_in_the_cli(cli, monkeypatch, tmp_path):
    monkeypatch.setenv(capabilities.ABSENT_ENV, "cuda")
    result = cli(*train_argv("--bf16", results_dir=tmp_path))
    assert_one_line_error(result, "VGGBENCH_ABSENT: unknown capability cuda")
    assert not (tmp_path / "runs").exists()


def test_hidden_bf16_is_unsupported_on_every_device(monkeypatch):
    monkeypatch.setenv(capabilities.ABSENT_ENV, "bf16")
    assert not runtime.bf16_supported(torch.device("cpu"))
    assert not runtime.bf16_supported(torch.device("cuda"))  # asked before CUDA is touched
    with pytest.raises(VggbenchError, match="--bf16: cpu has no bf16 support"):
        runtime.check_device_options(torch.device("cpu"), bf16=True, compile=False)


def test_hidden_fashion_mnist_hides_the_default_folders_but_not_a_data_root(monkeypatch, tmp_path):
    from conftest import write_fashion_mnist

    monkeypatch.setenv(capabilities.ABSENT_ENV, "fashion-mnist")
    assert sources.fashion_mnist_folders(None) == []
    with pytest.raises(VggbenchError) as error:
        load_dataset("fashion-mnist")
    assert "not found in the default folders (hidden by VGGBENCH_ABSENT)" in str(error.value)
    write_fashion_mnist(tmp_path)
    assert len(load_dataset("fashion-mnist", root=tmp_path).train) == 20  # a folder named is not hidden
    monkeypatch.setenv(capabilities.ABSENT_ENV, "")
    assert sources.fashion_mnist_folders(None)[0] == sources.DEBIAN_FASHION_MNIST


def test_the_generated_set_stands_in_for_the_installed_one_even_when_hidden(monkeypatch, request):
    monkeypatch.setenv(capabilities.ABSENT_ENV, "all")
    raw = request.getfixturevalue("generated_fashion_mnist")
    assert capabilities.hidden() == {"bf16", "pdflatex"}
    data = load_dataset("fashion-mnist")
    assert (len(data.train), len(data.val)) == (20, 10) and sources.fashion_mnist_folders(None)[0] == raw


def test_a_hidden_tool_is_not_found(monkeypatch):
    monkeypatch.setattr(capabilities.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setenv(capabilities.ABSENT_ENV, "")
    assert capabilities.tool("pdflatex") == "/usr/bin/pdflatex"
    monkeypatch.setenv(capabilities.ABSENT_ENV, "pdflatex")
    assert capabilities.tool("pdflatex") is None and capabilities.tool("git") == "/usr/bin/git"
