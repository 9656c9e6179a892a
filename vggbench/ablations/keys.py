"""Typed keys of a TOML table: what a spec's or preset's key must hold (its TOML type, whether it
is required, its range or choices, and the fix), the check of a whole table against them, and values
written back as TOML writes them, so that every error names the file, the table, the key, the type
expected and the value found."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vggbench.checks import in_range
from vggbench.errors import VggbenchError
from vggbench.recipe import POSITIVE, Setting, at_least, one_of


@dataclass(frozen=True)
class Key:
    """One key of a spec's table: its TOML type (a kind of KINDS), whether the table must set it,
    the range or choices a value of that type must meet (`ok`, said by `expected`), and the fix."""

    kind: str
    required: bool = False
    ok: Callable[[Any], bool] = lambda value: True
    expected: str = ""  # what `ok` asks for; empty: the kind's own words
    fix: str = ""

    @property
    def described(self) -> str:
        return self.expected or KINDS[self.kind][0]

    def accepts(self, value: Any) -> bool:
        return KINDS[self.kind][1](value) and self.ok(value)


def is_number(value: Any) -> bool:
    """TOML's true is an int to Python, and inf and nan are floats: a number is neither."""
    return in_range(value)


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_list_of(item: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, list) and all(isinstance(v, item) for v in value)


#: kind -> (its words in an error, its test, the type of a list's items where it is a list)
KINDS: dict[str, tuple[str, Callable[[Any], bool], type | None]] = {
    "string": ("a string", lambda v: isinstance(v, str), None),
    "number": ("a number", is_number, None),
    "whole": ("a whole number", is_whole, None),
    "boolean": ("true or false", lambda v: isinstance(v, bool), None),
    "strings": ("a list of strings", is_list_of(str), str),
    "table": ("a table", lambda v: isinstance(v, dict), None),
    "tables": ("an array of tables", is_list_of(dict), dict),
    "named tables": (
        "a table of tables",
        lambda v: isinstance(v, dict) and is_list_of(dict)(list(v.values())),
        None,
    ),
}


#: A setting's type -> its kind in a spec.
SETTING_KINDS = {str: "string", float: "number", int: "whole", bool: "boolean"}


def setting_key(setting: Setting, required: bool = False) -> Key:
    """The key of a spec's table that sets a recipe setting: its type, range and fix."""
    rule = setting.rule
    return Key(
        SETTING_KINDS[setting.type],
        required,
        rule.ok if rule else lambda value: True,
        rule.expected if rule else "",
        setting.fix,
    )


def positive_key(fix: str) -> Key:
    return Key("number", ok=POSITIVE.ok, expected=POSITIVE.expected, fix=fix)


def at_least_key(low: int, fix: str = "") -> Key:
    rule = at_least(low)
    return Key("whole", ok=rule.ok, expected=rule.expected, fix=fix)


def one_of_key(choices: tuple[str, ...], fix: str = "", required: bool = False) -> Key:
    rule = one_of(choices)
    return Key("string", required, rule.ok, rule.expected, fix)


def not_empty_key(kind: str, fix: str = "", required: bool = True) -> Key:
    return Key(kind, required, lambda v: len(v) > 0, expected=f"{KINDS[kind][0]}, not empty", fix=fix)


def check_table(
    table: dict[str, Any], schema: dict[str, Key], where: str, path: Path, prefix: str = ""
) -> None:
    """Every key of `table` is in `schema`, every required one is set, and every value has its
    key's type and range; `where` is the table's place in the file (e.g. "[[arms]] 2")."""
    at, table_at = (f"{where} ", f"{where}: ") if where else ("", "")
    unknown = sorted(set(table) - set(schema))
    if unknown:
        raise VggbenchError(
            f"{path}: {table_at}unknown key {prefix + unknown[0]!r}; "
            f"allowed keys: {', '.join(sorted(schema))}"
        )
    for key, rule in schema.items():
        if key not in table:
            if rule.required:
                raise VggbenchError(
                    f"{path}: {table_at}missing key {prefix + key!r} ({rule.described}); add it"
                )
        elif not rule.accepts(table[key]):
            fix = f"; {rule.fix}" if rule.fix else ""
            found = described(table[key], KINDS[rule.kind][2])
            raise VggbenchError(f"{path}: {at}{prefix}{key}: expected {rule.described}, found {found}{fix}")


def described(value: Any, item: type | None = None) -> str:
    """A value as TOML writes it and its type, e.g. '"big" (a string)'; for a list whose items
    should be `item`, the first item that is not."""
    kind = kind_of(value)
    if item is not None and isinstance(value, list):
        odd = next((i for i, v in enumerate(value, 1) if not isinstance(v, item)), None)
        if odd is not None:
            kind = f"{kind} whose item {odd} is {kind_of(value[odd - 1])}"
    text = toml_text(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({kind})"


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a float" if math.isfinite(value) else "not a finite number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def toml_text(value: Any) -> str:
    """A value on one line as TOML writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_text(v)}" for k, v in value.items()) + " }" if value else "{}"
    return str(value)
