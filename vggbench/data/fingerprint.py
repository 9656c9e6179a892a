"""Fingerprints of a run's data: short hashes that change when the images change, so that a stored
run is only reused for the data it trained on. Every run records its data's, and it enters the run's
id (`TrainConfig.run_id`): changed files train a new run.

- Folders (ImageFolder trees): the sorted list of the image files under the given splits, each with
  its path relative to the folder, its size and its mtime in ns. No file is read: a scan costs one
  `stat` per file (os.scandir), and the folder's location does not enter the hash (its path enters
  the run's config instead, as imagefolder:PATH).
- Packaged sets (Fashion-MNIST's IDX files, the CIFAR pickles): each file's name, size and content
  hash. The content hash is kept per (path, size, mtime_ns) for the process, so the same bytes in
  another --data-root, or copied without their mtimes, keep their fingerprint.
- Generated sets (synthetic): a hash of the generator's parameters and version; no files.

Memos (per process, never on disk): a folder's fingerprint is reused while the mtimes of every
directory seen in its last scan are unchanged, which catches files added, removed or renamed (a
class added, images replaced by new files) at one `stat` per directory. A file rewritten in place
keeps its directory's mtime, so callers that are about to use the data ask for a `fresh` scan (the
trainer does, once per run); `forget()` drops every memo. No on-disk cache: what it could key on
without a per-file stat (directory mtimes) misses in-place rewrites, and the per-file scan is the
fingerprint itself (60,000 stats take well under a second on a local disk).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

DIGEST_SIZE = 8  # 16 hex digits
CHUNK = 1 << 20  # content hashing reads 1 MiB at a time


def digest(lines: Iterable[str]) -> str:
    """The blake2b hex digest of lines (each ended by a newline, so no two lists collide)."""
    hasher = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for line in lines:
        hasher.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return hasher.hexdigest()


def changed_since_training(run_id: str, data_spec: str, then: str, now: str) -> str:
    """The one wording for "this run's data is not what it trained on" (eval and train's reuse say it)."""
    return (
        f"the data of run {run_id} changed since it trained ({data_spec}: fingerprint {then} then, {now} now)"
    )


def entry_line(name: str, size: int, mtime_ns: int, *extra: object) -> str:
    """One file of a folder fingerprint: name, size, mtime in ns (and e.g. its label), NUL-separated."""
    return "\0".join(str(part) for part in (name, size, mtime_ns, *extra))


# --- Folders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderScan:
    """A folder's fingerprint, its image files per split and the mtimes of the directories seen."""

    fingerprint: str
    counts: dict[str, int]  # image files per split, e.g. {"train": 1200, "val": 300}
    directories: tuple[tuple[str, int], ...]  # (path, mtime_ns) of every directory scanned


_folder_memo: dict[tuple[str, tuple[str, ...]], FolderScan] = {}


def _walk(directory: str, relative: str, include: Callable[[str], bool], lines: list, dirs: list) -> int:
    """Append the lines of the image files under `directory` (recursively), sorted by name; the count."""
    dirs.append((directory, os.stat(directory).st_mtime_ns))
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    count = 0
    for entry in entries:
        name = f"{relative}/{entry.name}"
        if entry.is_dir():
            count += _walk(entry.path, name, include, lines, dirs)
        elif include(entry.name) and entry.is_file():
            stat = entry.stat()
            lines.append(entry_line(name, stat.st_size, stat.st_mtime_ns))
            count += 1
    return count


def _scan(root: Path, splits: Sequence[str], include: Callable[[str], bool]) -> FolderScan:
    lines: list[str] = []
    dirs: list[tuple[str, int]] = [(str(root), os.stat(root).st_mtime_ns)]
    counts = {}
    for split in splits:
        top = root / split
        if not top.is_dir():
            continue
        dirs.append((str(top), os.stat(top).st_mtime_ns))
        with os.scandir(top) as scan:
            classes = sorted(e.name for e in scan if e.is_dir() and not e.name.startswith("."))
        counts[split] = sum(
            _walk(str(top / name), f"{split}/{name}", include, lines, dirs) for name in classes
        )
    return FolderScan(digest(lines), counts, tuple(dirs))


def _unchanged(scan: FolderScan) -> bool:
    try:
        return all(os.stat(path).st_mtime_ns == mtime for path, mtime in scan.directories)
    except OSError:
        return False


def folder_scan(
    root: Path, splits: Sequence[str], include: Callable[[str], bool], *, fresh: bool = False
) -> FolderScan:
    """The fingerprint of the image files (`include(name)`) in root/SPLIT/CLASS/... for each split
    that exists; memoised while no directory's mtime changed, rescanned when `fresh`."""
    key = (str(Path(root).resolve()), tuple(splits))
    known = _folder_memo.get(key)
    if fresh or known is None or not _unchanged(known):
        known = _folder_memo[key] = _scan(Path(key[0]), splits, include)
    return known


# --- Packaged files -----------------------------------------------------------------------------

_content_memo: dict[tuple[str, int, int], str] = {}


def content_hash(path: Path) -> str:
    """The blake2b digest of a file's bytes, memoised per (path, size, mtime_ns)."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _content_memo:
        hasher = hashlib.blake2b(digest_size=DIGEST_SIZE)
        with open(path, "rb") as handle:
            while block := handle.read(CHUNK):
                hasher.update(block)
        _content_memo[key] = hasher.hexdigest()
    return _content_memo[key]


def files_fingerprint(files: Sequence[Path]) -> str:
    """The fingerprint of a packaged set's files: names, sizes and content hashes (not their folder)."""
    return digest(entry_line(Path(f).name, os.stat(f).st_size, content_hash(Path(f))) for f in files)


# --- Generated sets -----------------------------------------------------------------------------


def params_fingerprint(**params: object) -> str:
    """The fingerprint of a generated set: its generator's parameters (and version), sorted by name."""
    return digest(f"{name}={params[name]!r}" for name in sorted(params))


def forget() -> None:
    """Drop every memo (the next fingerprint of each folder and file is computed afresh)."""
    _folder_memo.clear()
    _content_memo.clear()
