"""File locks that let several processes share one results store: a run is trained by one process
at a time (checkpoints/<id>/lock), and an ablation is analysed by one at a time.

The lock is `fcntl.flock` on the file: the kernel drops it when its holder exits, however it
exits, so a lock left by a dead process is free to take (its file stays and is reused). The
holder writes its pid and host into the file, for the message of a process that meets it. Within
one process a lock is re-entrant (a sweep holds a run's lock and `train` takes it again), because
flock would make two opens of one file in one process wait on each other.

A lock is never granted without being held: a lock file that cannot be made (a read-only store, a
file in the way), opened (mode 000) or locked (a file system without flock) is a `LockError` that
names the path and the fix. A lock file this process can read but not write (another user's, in a
shared store) is locked all the same (flock needs no write access); only its holder line is not
written.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Callable
from pathlib import Path

from vggbench import fs
from vggbench.errors import VggbenchError

LOCK_FILE = "lock"

#: This process's held locks: resolved path -> [file descriptor, depth].
_held: dict[Path, list[int]] = {}


class LockError(VggbenchError):
    """A lock that cannot be taken (not one that another process holds): the path and the fix."""


class FileLock:
    """An exclusive lock on `path` (created with its folder); `acquire` waits, `try_acquire` not."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._key = Path(os.path.realpath(self.path))  # not Path.resolve, which raises on a loop of links

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; whether it was taken."""
        return self._take(blocking=False)

    def acquire(self, on_wait: Callable[[str], None] | None = None) -> None:
        """Take the lock, waiting for its holder to release it (`on_wait` hears who, once)."""
        if self._take(blocking=False):
            return
        if on_wait is not None:
            on_wait(self.holder())
        self._take(blocking=True)

    def release(self) -> None:
        held = _held.get(self._key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _held[self._key]
            os.close(held[0])  # closing the descriptor drops the flock

    def holder(self) -> str:
        """Who holds the lock, as its file says: 'pid N' (on this host) or 'pid N on host H'."""
        try:
            pid, host = self.path.read_text().split()
        except (OSError, ValueError):  # not written yet, or gone
            return "another process"
        return f"pid {pid}" if host == socket.gethostname() else f"pid {pid} on host {host}"

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _take(self, blocking: bool) -> bool:
        if self._key in _held:
            _held[self._key][1] += 1
            return True
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError as error:
            os.close(fd)
            raise LockError(
                f"cannot take the lock {self.path}: {error.strerror or error}; put --results-dir on a "
                "file system with file locks (flock), such as a local disk"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        with contextlib.suppress(OSError):  # opened read-only: locked, but the holder is not written
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        _held[self._key] = [fd, 1]
        return True

    def _open(self) -> int:
        """The lock file's descriptor (the file and its folder made when missing): read-write, else
        read-only; a LockError when it cannot be opened at all."""
        with fs.writing(self.path):  # a folder that cannot be made: the store's one-line write error
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError as error:
            denied = error
        except OSError as error:
            raise fs.fs_error(error, "write", self.path) from None
        try:
            return os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:  # no lock file, and its folder takes no new file
            raise fs.fs_error(denied, "write", self.path) from None
        except OSError as error:
            raise LockError(
                f"cannot open the lock file {self.path}: {error.strerror or error}; every process that "
                f"shares the store must be able to open it: chmod a+rw {self.path}, or delete it "
                "when no vggbench process uses the store, or choose another --results-dir"
            ) from None


def run_lock(folder: Path) -> FileLock:
    """The lock of the run whose checkpoint folder is `folder`."""
    return FileLock(Path(folder) / LOCK_FILE)
