"""A bridge for this branch only: training and evaluation still return and store their records as
dicts, while the sweep and the report read them as `store.RunRecord` and `store.EvalRecord`.

Delete this module when training and evaluation write the typed records: `run_record(...)` and
`eval_record(...)` around their return values go, and `read_run`, `read_runs` and `read_evals` are
the store's functions of the same names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vggbench.store import EVALS, RUNS, SCHEMA, EvalRecord, RunRecord, read_record, read_records


def run_record(data: dict[str, Any], where: str = "") -> RunRecord:
    """A run dict of `training.train` as a RunRecord."""
    config = data["config"]
    source = {
        "spec": config["data"],
        "root": config.get("data_root"),
        "limit_train": config.get("limit_train"),
        "limit_val": config.get("limit_val"),
        "val_split": config.get("val_split"),
        "skip_bad_images": config.get("skip_bad_images", False),
    }
    typed = {**data, "net": data["model"]["config"], "data": source, "epochs": data["epochs_log"]}
    return RunRecord.from_json({**typed, "schema": SCHEMA}, where)


def eval_record(data: dict[str, Any], where: str = "") -> EvalRecord:
    """An eval dict of `evaluation.run_eval` as an EvalRecord."""
    return EvalRecord.from_json({**data, "nets": data["configs"], "schema": SCHEMA}, where)


def read_run(root: Path, run_id: str) -> RunRecord | None:
    data = read_record(root, RUNS, run_id)
    return None if data is None else run_record(data, str(Path(root) / RUNS / f"{run_id}.json"))


def read_runs(root: Path) -> list[RunRecord]:
    return [run_record(data, f"in {Path(root) / RUNS}") for data in read_records(root, RUNS)]


def read_evals(root: Path) -> list[EvalRecord]:
    return [eval_record(data, f"in {Path(root) / EVALS}") for data in read_records(root, EVALS)]
