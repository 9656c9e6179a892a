"""File locks that let several processes share one results store: a run is trained by one process
at a time (checkpoints/<id>/lock), and an ablation is analysed by one at a time.

The lock is `fcntl.flock` on the file: the kernel drops it when its holder exits, however it
exits, so a lock left by a dead process is free to take (its file stays and is reused). The
holder writes its pid and host into the file, for the message of a process that meets it. Within
one process a lock is re-entrant (a sweep holds a run's lock and `train` takes it again), because
flock would make two opens of one file in one process wait on each other. Where the lock file
cannot be made (a read-only store, a file in the way) the lock is granted without being held.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Callable
from pathlib import Path

LOCK_FILE = "lock"

#: This process's held locks: resolved path -> [file descriptor, depth].
_held: dict[Path, list[int]] = {}


class FileLock:
    """An exclusive lock on `path` (created with its folder); `acquire` waits, `try_acquire` not."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._key = self.path.resolve()

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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            # A store this process cannot write: it can only read stored runs there, which needs no
            # lock, and any write it tries next fails with the store's one-line error.
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        _held[self._key] = [fd, 1]
        return True


def run_lock(folder: Path) -> FileLock:
    """The lock of the run whose checkpoint folder is `folder`."""
    return FileLock(Path(folder) / LOCK_FILE)
