"""Progress on stderr, only on a terminal and never with --quiet: rich bars for evaluation
(`progress_bars`), a training run (`TrainBars`) and a sweep (`SweepBars`), and the line per run of
`ablate --jobs` (`worker_progress`)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vggbench.ablations.sweep import SweepStep
    from vggbench.train import EpochEnd, StepProgress


def _live(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _progress(*columns: object):
    """A transient rich Progress on stderr: finished bars are cleared, log lines print above it."""
    from rich.console import Console  # lazy: keeps CLI start-up fast
    from rich.progress import Progress

    return Progress(*columns, console=Console(stderr=True), transient=True)


def _bar():
    """A bar, or a spinner while the task has no total yet (data and models loading): a bar drawn
    in full would look finished."""
    from rich.progress import BarColumn, ProgressColumn, SpinnerColumn  # lazy: keeps CLI start-up fast

    class BarOrSpinner(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self.bar, self.spinner = BarColumn(), SpinnerColumn()

        def render(self, task):
            return self.spinner.render(task) if task.total is None else self.bar.render(task)

    return BarOrSpinner()


def _eta():
    """The time left from the mean rate since the task started, so that it holds through
    validation (rich's own ETA, from the last 30 s of steps, goes blank while none run)."""
    from rich.progress import ProgressColumn  # lazy: keeps CLI start-up fast
    from rich.text import Text

    class Remaining(ProgressColumn):
        def render(self, task):
            return Text(eta_text(task.elapsed, task.completed, task.total), style="progress.remaining")

    return Remaining()


def eta_text(elapsed: float | None, completed: float, total: float | None) -> str:
    """'0:01:05' left at the mean rate so far; '-:--:--' before any progress or without a total."""
    if not elapsed or not completed or not total:
        return "-:--:--"
    left = max(0, round(elapsed * (total - completed) / completed))
    return f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"


@contextlib.contextmanager
def progress_bars(quiet: bool = False):
    """A factory of rich progress bars on stderr (none when quiet or stderr is not a terminal):
    factory(label, total) -> advance(n). Until the first bar, a status line says that the data and
    models load."""
    from rich.progress import MofNCompleteColumn, TextColumn

    if not _live(quiet):
        yield lambda label, total: lambda n: None
        return
    with _progress(TextColumn("{task.description}"), _bar(), MofNCompleteColumn(), _eta()) as bars:
        loading = [bars.add_task("loading data and models", total=None)]

        def factory(label: str, total: int) -> Callable[[int], None]:
            while loading:
                bars.remove_task(loading.pop())
            task = bars.add_task(label, total=total)
            return lambda n: bars.advance(task, n)

        yield factory


class TrainBars:
    """A training run's progress bar (epoch, loss, img/s, ETA) on stderr when it is a terminal and
    not quiet: a status line while data and model load, then one bar over all epochs whose label
    names the epoch that runs (set at each epoch's end, so it never lags into the next epoch, and
    right after a resume). `shared` puts the bar into another Progress (ablate's)."""

    def __init__(self, quiet: bool, shared=None) -> None:
        self.bar, self.task, self.owned = shared, None, shared is None
        self.steps, self.epochs = 0, 0
        if self.bar is None and _live(quiet):
            from rich.progress import TextColumn, TimeElapsedColumn

            self.bar = _progress(
                TextColumn("{task.description}"),
                _bar(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                _eta(),
            )

    def __enter__(self) -> TrainBars:
        if self.bar is not None:
            if self.owned:
                self.bar.__enter__()
            self.task = self.bar.add_task("loading data and model", total=None, info="")
        return self

    @property
    def progress(self) -> Callable[[StepProgress], None] | None:
        return None if self.bar is None else self._step

    @property
    def on_epoch_end(self) -> Callable[[EpochEnd], None] | None:
        return None if self.bar is None else self._epoch_end

    def _step(self, report: StepProgress) -> None:
        self.steps, self.epochs = report.steps, report.epochs
        validating = "; validating" if report.step == report.steps else ""
        self.bar.update(
            self.task,
            description=f"epoch {report.epoch}/{report.epochs}{validating}",
            total=report.epochs * report.steps,
            completed=(report.epoch - 1) * report.steps + report.step,
            info=f"loss {report.loss:.3f}  {report.images_per_s:.0f} img/s",
        )

    def _epoch_end(self, end: EpochEnd) -> None:
        if not self.steps:
            return
        following = f"epoch {end.epoch + 1}/{self.epochs}" if end.epoch < self.epochs else "finishing"
        self.bar.update(
            self.task,
            description=following,
            completed=end.epoch * self.steps,
            info=f"epoch {end.epoch}: val top-1 err {end.metrics.val_top1_err:.2f}%",
        )

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.remove_task(self.task)
            if self.owned:
                self.bar.__exit__(*exc)


class SweepBars:
    """`ablate`'s progress: 'run k of N', which arm and seed, and an ETA for the rest from the runs
    done so far; a bar per run on a terminal (TrainBars), else one plain line per run (none when
    quiet)."""

    def __init__(self, quiet: bool, name: str, results_dir: Path | None = None) -> None:
        import time

        self.quiet, self.name, self.clock = quiet, name, time.perf_counter
        self.results_dir, self.running = results_dir, None
        self.started = self.run_started = self.clock()
        self.bar = None
        self.done = 0
        if _live(quiet):
            from rich.progress import MofNCompleteColumn, TextColumn, TimeElapsedColumn

            self.bar = _progress(
                TextColumn("{task.description}"),
                _bar(),
                TextColumn("{task.fields[info]}"),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
        self.task = None
        self.run_bars: TrainBars | None = None

    def __enter__(self) -> SweepBars:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def eta(self, index: int, total: int) -> str:
        """The time left: the mean of the runs done so far (stored runs count as done fast) for each
        run not done, less the time the current run has taken (so it falls as its epochs finish)."""
        done = index - 1
        if not done:
            return "ETA after the first run"
        per_run = (self.run_started - self.started) / done
        left = max(0.0, per_run * (total - done) - (self.clock() - self.run_started))
        return f"about {_duration(left)} left (from {done} run{'s' if done > 1 else ''} so far)"

    def on_run(self, step: SweepStep) -> None:
        self.finished()
        self.running, self.run_started = step, self.clock()
        what = f"arm {step.arm!r}, seed {step.seed} (run {step.run_id}{', stored' if step.stored else ''})"
        if self.bar is None:
            if not self.quiet:
                eta = self.eta(step.index, step.total)
                sys.stderr.write(f"{self.name}: run {step.index} of {step.total}: {what}; {eta}\n")
            return
        if self.task is None:
            self.task = self.bar.add_task("", total=step.total, info="")
        self.bar.update(
            self.task,
            description=f"{self.name}: run {step.index} of {step.total}: {what}",
            completed=step.index - 1,
            info=self.eta(step.index, step.total),
        )
        if self.run_bars is not None:
            self.run_bars.__exit__(None, None, None)
        self.run_bars = TrainBars(self.quiet, shared=self.bar).__enter__()

    @property
    def progress(self) -> Callable[[StepProgress], None] | None:
        return None if self.bar is None else lambda report: self.run_bars and self.run_bars._step(report)

    @property
    def on_epoch_end(self) -> Callable[[EpochEnd], None] | None:
        return None if self.bar is None else self._epoch_end

    def _epoch_end(self, end: EpochEnd) -> None:
        """The run's bar, and the sweep's ETA refreshed as each epoch finishes (not only between runs)."""
        if self.run_bars is not None:
            self.run_bars._epoch_end(end)
        if self.task is not None and self.running is not None:
            self.bar.update(self.task, info=self.eta(self.running.index, self.running.total))

    def finished(self) -> None:
        """One line for the run that ran last, once it is stored: how it stopped and its errors."""
        step, self.running = self.running, None
        if step is None or self.quiet or self.results_dir is None:
            return
        # lazy: keeps CLI start-up fast
        from vggbench import store
        from vggbench.runs import outcome

        run = store.read_run(self.results_dir, step.run_id)
        if run is None:
            return
        stored = ", stored" if step.stored else ""
        line = f"{self.name}: run {step.index} of {step.total} done: arm {step.arm!r}, seed {step.seed} "
        line += f"(run {step.run_id}{stored}): {outcome(run)}"
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False)
        else:
            sys.stderr.write(line + "\n")

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.finished()
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def worker_progress(name: str, quiet: bool) -> Callable:
    """--jobs progress: a line per run the first time a worker starts it (k of N)."""
    seen: set[str] = set()

    def on_run(worker: int, step: SweepStep) -> None:
        if quiet or step.run_id in seen:
            return
        seen.add(step.run_id)
        stored = ", stored" if step.stored else ""
        sys.stderr.write(
            f"{name}: run {len(seen)} of {step.total}: arm {step.arm!r}, seed {step.seed} "
            f"(run {step.run_id}{stored}) on worker {worker}\n"
        )

    return on_run
