"""The ablation specs ship in the wheel: built from a copy of the checkout, unpacked outside it, the
package finds every spec and the presets through importlib.resources."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vggbench.ablations.spec import SPEC_DIR, available_ablations, load_spec, preset_budget

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p.name for p in (ROOT / "ablations").glob("*.toml"))
# Run from the unpacked wheel: where the package and its specs are, what it finds, and the CLI's list.
PROBE = """
import vggbench
from vggbench.ablations.spec import SPEC_DIR, available_ablations, load_spec, preset_budget
print(vggbench.__file__)
print(SPEC_DIR)
print(",".join(available_ablations()))
spec = load_spec("lrn")
print(spec.path, preset_budget(spec, "quick").epochs)
"""


def test_the_checkout_packages_the_top_level_ablations_folder():
    assert SPEC_DIR == ROOT / "vggbench" / "specs" and SPEC_DIR.resolve() == ROOT / "ablations"
    assert [f"{name}.toml" for name in available_ablations()] == [s for s in SPECS if s != "presets.toml"]


@pytest.mark.slow
def test_a_wheel_ships_the_specs_and_finds_them_outside_the_checkout(tmp_path):
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("vggbench", "ablations"):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    subprocess.run([*build, "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("vggbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "vggbench/counts_shipped.json" in names  # `params` at the paper's settings without fvcore
    assert (
        sorted(n.removeprefix("vggbench/specs/") for n in names if n.startswith("vggbench/specs/")) == SPECS
    )

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    env = {**os.environ, "PYTHONPATH": str(unpacked), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    package, spec_dir, ablations, lrn = run.stdout.splitlines()
    assert package == str(unpacked / "vggbench" / "__init__.py")
    assert spec_dir == str(unpacked / "vggbench" / "specs") and not Path(spec_dir).is_symlink()
    assert ablations == "conv1x1,conv5x5,depth,init,jitter,lrn"
    quick_epochs = preset_budget(load_spec("lrn"), "quick").epochs  # the checkout's presets: the same file
    assert lrn == f"{unpacked / 'vggbench' / 'specs' / 'lrn.toml'} {quick_epochs}"
    # the CLI of the unpacked wheel lists the shipped ablations
    cli = subprocess.run(
        [sys.executable, "-m", "vggbench", "ablate", "nope"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2
    assert cli.stderr.strip() == (
        "error: unknown ablation 'nope'; choose one of conv1x1, conv5x5, depth, init, jitter, lrn"
    )
