"""What every command of the CLI shares: help panels and examples, printing, the GPU-scale note,
and Ctrl-C carried to `app.run` with what was saved."""

from __future__ import annotations

import contextlib
import inspect
import math
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from vggbench.checks import cores, device_problem
from vggbench.errors import VggbenchError
from vggbench.recipe import DATA, EVALUATION, MODEL, OUTPUT, RECIPE, RUN_CONTROL, Rule, Setting
from vggbench.render import FORMATS
from vggbench.signals import signum_of

__all__ = ["DATA", "EVALUATION", "MODEL", "OUTPUT", "RECIPE", "RUN_CONTROL"]

FORMAT_HELP = f"output format: {', '.join(FORMATS)}"


#: The widest line of an example in --help: what an 80-column terminal shows without wrapping.
EXAMPLE_WIDTH = 76


def examples(*lines: str) -> str:
    """A command's epilog: real calls to copy (kept one per line by the leading \\b); a call too
    wide for an 80-column terminal continues on the next line (a shell's ' \\'), between options."""
    return "\b\nExamples:\n" + "\n".join(wrapped for line in lines for wrapped in _continued(line))


def _continued(line: str) -> list[str]:
    """An example as lines of at most EXAMPLE_WIDTH, broken only before an option."""
    groups: list[str] = []
    for word in line.split(" "):
        if groups and not word.startswith("-"):
            groups[-1] += f" {word}"
        else:
            groups.append(word)
    out = [f"  {groups[0]}"]
    for group in groups[1:]:
        if len(out[-1]) + 1 + len(group) + 2 > EXAMPLE_WIDTH:
            out[-1] += " \\"
            out.append(f"      {group}")
        else:
            out[-1] += f" {group}"
    return out


def echo(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def note(text: str) -> None:
    sys.stderr.write(f"note: {text}\n")


def wrote(path: object) -> None:
    sys.stderr.write(f"wrote {path}\n")


def gpu_scale_note(crop: int, width: float, device: str) -> None:
    """One stderr line when a GPU-scale run (crop 224 at full width) is about to start on a CPU:
    hours per epoch there, and the quick settings are one option away."""
    if crop < 224 or width < 1 or device.startswith("cuda"):
        return
    import torch  # lazy: keeps CLI start-up fast

    if device == "cpu" or not torch.cuda.is_available():
        note(
            f"crop {crop} at width {width:g} is GPU scale (hours per epoch on a CPU); "
            "on a CPU use --width 0.125 --crop 32 (ablate: --preset quick)"
        )


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) in `train` or `ablate`, carried to `run` as a plain exception: typer turns
    a KeyboardInterrupt into a silent exit 130, and its message (where the checkpoint is) with it."""

    def __init__(self, saved: str, resume_flag: str | None, signum: int = signal.SIGINT) -> None:
        super().__init__(saved)
        self.saved, self.resume_flag, self.signum = saved, resume_flag, signum


@contextlib.contextmanager
def resumable(resume_flag: str | None, kept: str = ""):
    """Ctrl-C or SIGTERM inside becomes `Interrupted`: what was saved (training's message, and
    `kept`), the flag that continues the command (None: the same command continues it), the signal."""
    try:
        yield
    except KeyboardInterrupt as error:
        saved = getattr(error, "saved", None) or "interrupted"
        raise Interrupted(f"{saved}; {kept}" if kept else saved, resume_flag, signum_of(error)) from None


# --- Options built from the recipe's settings -----------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One parameter of a command whose options are built (`with_params`): its name, type and
    typer.Option or typer.Argument."""

    name: str
    type: Any
    default: Any


def setting_param(
    setting: Setting, help: str | None = None, default: Any = None, check: Rule | None = None
) -> Param:
    """A recipe setting as an option: train's (its default, help and flag) or, with `help`, an
    override of another command (default None: the command's own value applies); `check` as for
    `option`."""
    if help is None:
        default = setting.default if setting.shown else None
    elif setting.type is bool:
        default = False
    option = typer.Option(
        default,
        setting.option,
        help=help or setting.help,
        rich_help_panel=setting.panel,
        metavar=setting.metavar,
        callback=None if check is None else _checked(check),
    )
    return Param(setting.name, setting.cli_type or setting.type, option)


def option(
    name: str, kind: Any, default: Any, *decls: str, check: Rule | None = None, **options: Any
) -> Param:
    """A command's own option (not a recipe setting): `decls` and `options` as typer.Option's;
    `check`, a range its values must meet (None passes), checked as the command line is parsed."""
    if check is not None:
        options["callback"] = _checked(check)
    return Param(name, kind, typer.Option(default, *decls, **options))


def _checked(rule: Rule) -> Callable[..., Any]:
    def check(param: typer.CallbackParam, value: Any) -> Any:
        for one in value if isinstance(value, (list, tuple)) else [value]:
            if one is not None and not rule.ok(one):
                raise VggbenchError(f"{param.opts[0]} {one} must be {rule.says}")
        return value

    return check


def at_most(high: int, why: str) -> Rule:
    """A number of at most `high` (`why`: where the bound comes from); its lower bound, and inf and
    nan, are refused where the value is used."""
    return Rule(lambda v: not math.isfinite(v) or v <= high, f"at most {high:g} ({why})", f"at most {high:g}")


def at_most_cores(what: str) -> Rule:
    """At most the cores this process may run on: more `what` than cores only share them."""
    return at_most(cores(), f"the cores here; more {what} than cores only share them")


def results_dir_param(help: str = "the results store") -> Param:
    return option("results_dir", Path, Path("results"), "--results-dir", help=help, rich_help_panel=OUTPUT)


def format_param(default: str = "table", help: str = FORMAT_HELP) -> Param:
    return option("fmt", str, default, "--format", help=help, rich_help_panel=OUTPUT)


def quiet_param(help: str = "no progress output", *decls: str) -> Param:
    return option("quiet", bool, False, *decls, help=help, rich_help_panel=OUTPUT)


def device_param(help: str) -> Param:
    """--device, checked as it is parsed: auto, cpu, cuda or cuda:N."""
    return option(
        "device", str, "auto", "--device", help=help, rich_help_panel=RUN_CONTROL, callback=_known_device
    )


def _known_device(value: str) -> str:
    problem = device_problem(value)
    if problem:
        raise VggbenchError(problem)
    return value


def with_params(params: list[Param]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command taking **options the signature that typer reads its options from."""

    def give(command: Callable[..., None]) -> Callable[..., None]:
        command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter(
                    p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default, annotation=p.type
                )
                for p in params
            ]
        )
        command.__annotations__ = {p.name: p.type for p in params} | {"return": None}
        return command

    return give


# --- Empty paths and run ids, refused for every command ---------------------------------------------

#: Options (and arguments) whose value names a file or folder, beside those typed as paths.
PATH_NAMES = frozenset({"data_root", "checkpoint", "data_folder", "name"})
#: Options (and arguments) whose value names a stored run.
RUN_NAMES = frozenset({"init_from", "preinit_from", "run_option", "runs", "run_id", "run_ids"})


def refuse_empty(param: Any) -> None:
    """Make `param` refuse an empty (or blank) value, as the command line is parsed: an empty path
    would mean the current folder, an empty run id every run."""
    if param.name in RUN_NAMES:
        empty = "an empty run id"
        fix = "give a stored run id or a unique prefix of one (vggbench runs list shows them)"
    elif param.name in PATH_NAMES or _typed_path(param):
        default = param.default if isinstance(param.default, (str, Path)) and str(param.default) else None
        empty, fix = "an empty path", "name a file or folder"
        if default:
            fix += f", e.g. {_called(param)} {default}"
    else:
        return
    process = param.process_value  # checked before conversion: a path type turns '' into '.'

    def check(ctx: Any, value: Any) -> Any:
        for one in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(one, str) and not one.strip():
                raise VggbenchError(f"{_called(param)} {one!r} is {empty}; {fix}")
        return process(ctx, value)

    param.process_value = check


def _typed_path(param: Any) -> bool:
    """Whether the parameter's annotation is a Path (typer's record of it), or its click type is."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    return annotation is Path or type(getattr(param, "type", None)).__name__ == "Path"


def _called(param: Any) -> str:
    """An option's flag, or an argument's placeholder."""
    return param.opts[0] if param.param_type_name == "option" else (param.metavar or param.name or "")
