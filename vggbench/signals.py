"""Stop signals: SIGTERM stops a command as Ctrl-C does. It is what Slurm (preemption, the time
limit), `kill` and container runtimes send first, so a run under it saves its checkpoint and prints
the command that resumes it (train.checkpoint.InterruptFlag), and the exit code is 128 + the signal's
number (143). Torch-free, for the CLI's entry point."""

from __future__ import annotations

import signal

#: The signals that stop a training run between two steps, with its checkpoint saved.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A stop signal that interrupts at once (SIGTERM outside a run's loop, a second Ctrl-C in it)."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum


def raise_stopped(signum: int, frame: object) -> None:
    """A signal handler: SIGTERM as Python's own for SIGINT (a KeyboardInterrupt), with its number."""
    raise Stopped(signum)


def signum_of(interrupt: BaseException) -> int:
    """The signal behind a KeyboardInterrupt: SIGINT unless it says otherwise."""
    return getattr(interrupt, "signum", signal.SIGINT)
