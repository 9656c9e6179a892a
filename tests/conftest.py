"""Shared test helpers: run the CLI in-process and capture what it prints."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vggbench.cli import run


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
