"""The results store: one JSON record per run and per evaluation, written atomically.

Layout: <root>/<kind>/<id>.json, kind being e.g. "runs" or "evals". A record's id derives from
the config that defines it, so asking for the same thing twice finds the stored record.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from vggbench.errors import VggbenchError

DEFAULT_ROOT = Path("results")


def record_id(config: dict[str, Any], length: int = 12) -> str:
    """A stable id for a config: the hash of its canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write via a temporary file, fsync and rename, so a reader never sees half a file and an
    interrupted write leaves the old file as it was (records, reports, checkpoints)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def write_record(root: Path, kind: str, record_id_: str, record: dict[str, Any]) -> Path:
    path = Path(root) / kind / f"{record_id_}.json"
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return path


def read_record(root: Path, kind: str, record_id_: str) -> dict[str, Any] | None:
    path = Path(root) / kind / f"{record_id_}.json"
    if not path.exists():
        return None
    return _load(path)


def read_records(root: Path, kind: str) -> list[dict[str, Any]]:
    """Every record of a kind, oldest file first."""
    folder = Path(root) / kind
    if not folder.is_dir():
        return []
    return [_load(p) for p in sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))]


def read_torch_file(path: Path, what: str, fix: str) -> Any:
    """torch.load on the CPU with weights only; an unreadable file is a VggbenchError that names
    the file (as `what`) and the fix."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise VggbenchError(f"cannot read {what} {path}: {error}; {fix}") from None


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise VggbenchError(
            f"corrupt record {path}: {error.msg}; delete it and rerun the command that made it"
        ) from None
