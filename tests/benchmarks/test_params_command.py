"""`vggbench params` end to end, in a fresh process as a user runs it: from a warm count cache
(the goal: at most 1.5 s and 300 MB) and, once, from a cold one (fvcore traces all seven nets)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _params(cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, VGGBENCH_CACHE_DIR=str(cache), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "vggbench", "params", "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
    )


def test_params_warm_cache(benchmark, tmp_path):
    assert _params(tmp_path).returncode == 0  # fills the cache
    result = benchmark.pedantic(_params, args=(tmp_path,), rounds=5, warmup_rounds=1)
    assert result.returncode == 0 and result.stdout.startswith("net,weight_layers,params")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    benchmark.extra_info["children_max_rss_mb"] = round(peak_mb)


def test_params_cold_cache(benchmark, tmp_path_factory):
    def cold() -> subprocess.CompletedProcess:
        return _params(tmp_path_factory.mktemp("cold"))

    result = benchmark.pedantic(cold, rounds=1, warmup_rounds=0)
    assert result.returncode == 0 and "138357544" in result.stdout  # D's parameters, Table 2
