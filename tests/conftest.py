"""Shared test helpers: run the CLI in-process and capture what it prints."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vggbench import capabilities
from vggbench.cli import run
from vggbench.errors import VggbenchError


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Call `cli("params", "--format", "json")` and get exit code, stdout and stderr."""

    def invoke(*argv: str) -> CliResult:
        code = run(list(argv))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """Bad input: exit 2, one line on stderr naming the problem, no traceback."""
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


#: `vggbench train` of a tiny net: A at width 1/16, crop 32, on synthetic images, on the CPU.
TINY_TRAIN_OPTIONS = {"config": "A", "width": "0.0625", "crop": "32", "data": "synthetic", "device": "cpu"}


def train_argv(*flags: str, **options: object) -> list[str]:
    """The argv of a tiny `vggbench train`: `options` add or override --name value pairs
    (underscores become dashes), `flags` follow as given."""
    argv = ["train"]
    for name, value in {**TINY_TRAIN_OPTIONS, **options}.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return [*argv, *flags]


@pytest.fixture(autouse=True, scope="session")
def _count_cache(tmp_path_factory):
    """`vggbench params` caches its counts on disk: the tests keep theirs apart from the user's."""
    import os

    from vggbench.counting import CACHE_ENV

    saved = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("count-cache"))
    yield
    if saved is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = saved


# --- What a machine may lack ------------------------------------------------------------------------
# A test that needs one of these provides it itself or skips with the reason; `make test-bare` runs
# the suite with all of them hidden (capabilities.py), so an unmarked assumption fails everywhere.


def fashion_mnist_missing() -> str | None:
    """Why the installed Fashion-MNIST cannot be read here (make data installs it), or None."""
    from vggbench.data.sources import fashion_mnist_files

    try:
        fashion_mnist_files(None, download=False)
    except VggbenchError as error:
        return f"Fashion-MNIST is not installed (make data): {error}"
    return None


def needs_fashion_mnist() -> None:
    """Skip the calling test, saying why, where the installed Fashion-MNIST is missing or hidden."""
    reason = fashion_mnist_missing()
    if reason is not None:
        pytest.skip(reason)


def write_idx(path, array) -> None:
    """An IDX file (gzipped) as Fashion-MNIST ships them: a header of dims, then uint8 data."""
    import gzip

    import numpy as np

    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def write_fashion_mnist(root, seed: int = 0):
    """A tiny Fashion-MNIST (20 train and 10 val images of noise) in torchvision's layout under
    root; returns its raw folder."""
    import numpy as np

    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    write_idx(raw / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(20) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (10, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    return raw


@pytest.fixture
def generated_fashion_mnist(tmp_path_factory, monkeypatch):
    """write_fashion_mnist's files in the default folder's place (whatever is installed, and even
    where VGGBENCH_ABSENT hides it), for tests that need the packaged set's code paths, not its images."""
    from vggbench.data import sources

    raw = write_fashion_mnist(tmp_path_factory.mktemp("fashion-mnist"))
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", raw)
    monkeypatch.setattr(sources, "DEFAULT_ROOT", raw / "none")
    still_hidden = capabilities.hidden() - {"fashion-mnist"}
    monkeypatch.setenv(capabilities.ABSENT_ENV, ",".join(sorted(still_hidden)))
    return raw


def needs_bf16_cpu() -> None:
    """Skip where this CPU cannot compute in bf16 (no AVX-512 BF16 / AMX, or hidden)."""
    import torch

    from vggbench import runtime

    if not runtime.bf16_supported(torch.device("cpu")):
        pytest.skip("this CPU has no bf16 support (AVX-512 BF16 / AMX), or VGGBENCH_ABSENT hides it")


def needs_tool(name: str) -> str:
    """The program's path, or skip saying it is missing (or hidden by VGGBENCH_ABSENT)."""
    path = capabilities.tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed (or VGGBENCH_ABSENT hides it)")
    return path
