"""File-system errors in one place: an OSError while reading or writing the store or an output
becomes one line that names the path, the reason and the fix (exit 2), never a traceback."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from vggbench.errors import VggbenchError

WRITE_FIX = "choose a writable --results-dir / --out"
READ_FIX = "check its permissions or choose another --results-dir"


class FileSystemError(VggbenchError):
    """An OSError on a file of the store or an output, as a one-line VggbenchError."""


def fs_error(error: OSError, action: str, path: Path | str | None = None) -> FileSystemError:
    """The one message: "cannot ACTION PATH: reason; fix". PATH is `path` or the folder above it
    that the OS named (one that could not be made)."""
    where = _named(error, path)
    reason = error.strerror or str(error) or type(error).__name__
    if isinstance(error, (FileExistsError, NotADirectoryError)) and where is not None:
        blocking = _file_in_the_way(Path(where))
        reason = f"{blocking} is a file, not a folder" if blocking is not None else reason
    fix = READ_FIX if action == "read" else WRITE_FIX
    return FileSystemError(f"cannot {action} {where}: {reason}; {fix}")


@contextlib.contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """OSErrors inside become `fs_error(..., "write", path)`."""
    try:
        yield
    except OSError as error:
        raise fs_error(error, "write", path) from None


@contextlib.contextmanager
def reading(path: Path | str) -> Iterator[None]:
    """OSErrors inside become `fs_error(..., "read", path)`."""
    try:
        yield
    except OSError as error:
        raise fs_error(error, "read", path) from None


def _named(error: OSError, path: Path | str | None) -> Path | str | None:
    """The path to name: the OS's when it is `path` or a folder above it (the folder that could not
    be made), else `path` (not the temporary file beside it that the write went through)."""
    if error.filename is None or path is None:
        return error.filename if error.filename is not None else path
    named = Path(error.filename)
    return error.filename if named == Path(path) or named in Path(path).parents else path


def _file_in_the_way(path: Path) -> Path | None:
    """The path itself or the nearest parent that exists and is not a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def writable_folder(path: Path) -> Path:
    """Make `path` (mkdir -p) and check it takes new files, before work whose result goes there."""
    path = Path(path)
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    return path


#: Symbolic links followed at most this many times (the kernel's limit): more is a loop.
MAX_LINKS = 40


def replaceable(path: Path | str) -> Path | None:
    """The regular file (or missing path) that a write to `path` replaces through a temporary file
    and a rename: `path` itself, or the file its symbolic links lead to (so the link is kept).
    None when the write must go through `path` as it is: a device (/dev/null, /dev/full), a FIFO,
    a socket, or a process's open file (/dev/stdout, /proc/self/fd/N, anything under /proc): a
    rename would put a regular file in its place. A loop of links is an OSError (ELOOP)."""
    path = Path(path)
    for _ in range(MAX_LINKS):
        here = Path(os.path.realpath(path.parent)) / path.name
        if here.parts[:2] == ("/", "proc"):
            return None
        if not here.is_symlink():
            try:
                mode = here.stat().st_mode
            except FileNotFoundError:
                return here
            return here if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else None
        path = here.parent / os.readlink(here)
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
