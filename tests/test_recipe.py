"""The recipe's schema: each setting declared once (vggbench/recipe.py), and what comes from it.

A throwaway setting added to the schema, before anything else is imported, is an option of
`train --help`, a key that a preset's validation checks, a field of TrainConfig that the run
record's config stores and the run id counts: nothing but the schema was touched."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from vggbench import recipe
from vggbench.ablations import spec
from vggbench.train import TrainConfig

THROWAWAY = textwrap.dedent(
    """
    import dataclasses, io, json, contextlib
    from pathlib import Path
    from vggbench import recipe

    recipe.SETTINGS = recipe.SETTINGS + (
        recipe.Setting(
            "tb_every", int, 5, "write a tensorboard point every this many steps", recipe.RECIPE,
            recipe.at_least(1), fix="e.g. 10", preset="tb_every",
        ),
    )
    from vggbench.cli import run
    from vggbench.ablations.spec import _check_presets
    from vggbench.errors import VggbenchError
    from vggbench.train import TrainConfig

    help_text = io.StringIO()
    with contextlib.redirect_stdout(help_text):
        run(["train", "--help"])
    print("help:", "--tb-every" in help_text.getvalue(), "tensorboard point" in help_text.getvalue())
    _check_presets({"smoke": {"tb_every": 2}}, "", Path("presets.toml"))
    try:
        _check_presets({"smoke": {"tb_every": 0}}, "", Path("presets.toml"))
    except VggbenchError as error:
        print("preset:", error)
    config = TrainConfig(tb_every=7)
    other = dataclasses.replace(config, tb_every=8)
    print("config:", config.to_dict()["tb_every"], config.run_id != other.run_id)
    try:
        TrainConfig(tb_every=0)
    except VggbenchError as error:
        print("train:", error)
    """
)


def test_a_setting_added_to_the_schema_reaches_the_options_presets_and_the_record():
    result = subprocess.run([sys.executable, "-c", THROWAWAY], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "help: True True",
        "preset: presets.toml: [smoke] tb_every: expected a whole number of at least 1, found 0 (a whole "
        "number); e.g. 10",
        "config: 7 True",
        "train: tb every 0 must be at least 1; e.g. 10",
    ]


def test_train_config_has_a_field_per_setting_and_the_data_fingerprint():
    names = [f for f in TrainConfig.__dataclass_fields__]
    assert names == [s.name for s in recipe.SETTINGS] + ["data_fingerprint"]
    assert {s.name: s.default for s in recipe.SETTINGS} == {
        name: TrainConfig.__dataclass_fields__[name].default for name in names[:-1]
    }


def test_preset_keys_are_the_preset_settings_and_the_fine_tuning():
    assert spec.PRESET_KEYS == {s.preset for s in recipe.SETTINGS if s.preset} | {
        "finetune_lr",
        "finetune_epochs",
    }
    assert spec.PRESET_KEYS == {f for f in spec.Budget.__dataclass_fields__} - {"design"}


def test_the_recipe_facts_agree_with_the_modules_that_use_them():
    from vggbench.data.augment import PIXEL_MAX
    from vggbench.evaluate.protocols import METHODS

    assert recipe.INPUT_RANGES == tuple(PIXEL_MAX) and recipe.TEST_METHODS == METHODS


def test_one_at_chance_rule():
    assert recipe.at_chance(89.0, 10) and recipe.at_chance(90.0, 10) and not recipe.at_chance(88.9, 10)


def test_the_throughput_table_names_the_net_of_records_that_say_config():
    """Bench records written before the rename of their net's column say `config`: the table (and
    the report's Throughput table) shows their net, not "-"."""
    from vggbench.bench.tables import bench_frame

    row = {"config": "A", "width": 0.125, "crop": 32, "batch": 8, "mode": "train", "images_per_s": 10.0}
    record = {"kind": "bench", "machine_name": "m", "options": {"device": "cpu"}, "train": [row]}
    frame = bench_frame([record, {**record, "train": [{**row, "net": "D", "config": None}]}])
    assert list(frame["net"]) == ["A", "D"] and "config" not in frame


def test_committed_run_ids_are_recomputed_from_their_stored_configs():
    """The schema changed how TrainConfig is built, not what a run is: the reference runs' ids (results/)
    follow from their stored configs (which hold the data's fingerprint: no data is read)."""
    import json
    from pathlib import Path

    paths = sorted((Path(__file__).resolve().parent.parent / "results" / "runs").glob("*.json"))
    assert len(paths) >= 10
    for path in paths:
        record = json.loads(path.read_text())
        assert TrainConfig.from_dict(record["config"]).run_id == record["id"] == path.stem, path.name
