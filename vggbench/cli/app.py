"""The `vggbench` command line: the Typer app of one module per command, and `run`, which maps
errors to one line on stderr.

Bad input raises VggbenchError (or a click usage error) and `run` turns it into one line on
stderr and exit code 2, never a traceback; Ctrl-C in `train` or `ablate` says what was saved and
the command that continues.
"""

from __future__ import annotations

import functools
import shlex
import signal
import sys
import threading
from collections.abc import Callable

import typer

from vggbench.cli import ablate, bench, params, report, runs, train
from vggbench.cli import eval as eval_
from vggbench.cli.common import Interrupted, echo, examples, refuse_empty
from vggbench.errors import VggbenchError
from vggbench.fs import fs_error
from vggbench.signals import raise_stopped, signum_of
from vggbench.tracking import command_line, package_version

# Typer vendors click in recent releases and depends on it in older ones: find its exception types
# through the public BadParameter instead of importing either spelling.
_CLICK_EXCEPTIONS = sys.modules[
    next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException").__module__
]

app = typer.Typer(
    help="Benchmarks and ablations for the VGG paper (Simonyan & Zisserman, 2014).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=examples(
        "vggbench params",
        "vggbench train --config A --data fashion-mnist --width 0.125 --crop 32 --epochs 5",
        "vggbench runs list",
    ),
)


version = package_version


def _print_version(value: bool) -> None:
    if value:
        echo(f"vggbench {version()}")
        raise typer.Exit()


@app.callback()
def _group(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Benchmarks and ablations for the VGG paper (Simonyan & Zisserman, 2014)."""


app.command(epilog=params.EPILOG)(params.params)
app.command(epilog=train.EPILOG)(train.train)
app.command(epilog=ablate.EPILOG)(ablate.ablate)
app.command("report", epilog=report.EPILOG)(report.report_command)
app.command("eval", epilog=eval_.EPILOG)(eval_.eval_command)
app.command(epilog=bench.EPILOG)(bench.bench)
app.add_typer(runs.runs_app, name="runs", rich_help_panel="Results")


def _tidy(command):
    """Empty paths and run ids refused (`refuse_empty`), and readable help placeholders: typer
    shows `<bool>` on every option without a metavar, flags (and --help) included, though a flag
    takes no value: an empty metavar shows nothing. A list shows as `<list[str]>`: it becomes
    `<str>...`."""
    for param in command.params:
        refuse_empty(param)
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif hasattr(param, "display_type_rich"):
            param.display_type_rich = functools.partial(_unlisted, param.display_type_rich)
    original = command.get_help_option
    command.get_help_option = functools.partial(_flag_help_option, original)
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)
    return command


def _unlisted(display: Callable, ctx) -> str | None:
    text = display(ctx)
    return text.replace("<list[", "<").replace("]>", ">...") if text else text


def _flag_help_option(get_help_option: Callable, ctx):
    option = get_help_option(ctx)
    if option is not None:
        option.metavar = ""
    return option


def _resume_command(argv: list[str], resume_flag: str | None) -> str:
    """The exact command that continues an interrupted one: the same argv, plus `resume_flag`."""
    extra = [resume_flag] if resume_flag and resume_flag not in argv else []
    return shlex.join(["vggbench", *argv, *extra])


def run(argv: list[str]) -> int:
    """Run the CLI on `argv` and return its exit code; errors become one line on stderr. SIGTERM
    stops it as Ctrl-C does (a run saves its checkpoint), with exit code 128 + the signal's number."""
    command = _tidy(typer.main.get_command(app))
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_stopped) if main_thread else None
    try:
        with command_line(argv):
            result = command.main(args=argv, prog_name="vggbench", standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except _CLICK_EXCEPTIONS.ClickException as error:
        if error.format_message():  # empty when click has already shown the help
            sys.stderr.write(f"error: {error.format_message()}\n")
        return 2
    except Interrupted as stop:
        sys.stderr.write(f"{stop.saved}; to continue, run: {_resume_command(argv, stop.resume_flag)}\n")
        return 128 + stop.signum
    except (typer.Abort, KeyboardInterrupt) as error:
        sys.stderr.write(f"{str(error) or 'interrupted'}\n")
        return 128 + signum_of(error)
    except VggbenchError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    except OSError as error:  # the last resort: fs.writing / fs.reading name the file where they can
        sys.stderr.write(f"error: {fs_error(error, 'access')}\n")
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
