"""The `vggbench` command line (`app.run`, `app.main`): one module per command, each parsing its
options, calling the library and printing; `progress` draws the bars."""

from vggbench.cli.app import app, main, run, version
from vggbench.cli.progress import SweepBars, TrainBars

__all__ = ["SweepBars", "TrainBars", "app", "main", "run", "version"]
