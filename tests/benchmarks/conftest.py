"""The benchmark suite stays out of the default run (`make test`, `pytest`): it is collected only when
benchmarks are enabled (`make bench`, i.e. `--benchmark-enable`) or when this folder, or a file in it,
is named on the command line (then, with the default `--benchmark-disable`, each runs once as a
smoke test)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def _named(config) -> bool:
    for arg in config.args:
        path = Path(str(arg).split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    path = collection_path.resolve()
    if path != HERE and HERE not in path.parents or path == HERE / "conftest.py":
        return None
    enabled = config.getoption("benchmark_enable", False) or config.getoption("benchmark_only", False)
    return None if enabled or _named(config) else True
