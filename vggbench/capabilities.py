"""Optional capabilities of a machine that the code looks for, and a switch that hides them.

`VGGBENCH_ABSENT=bf16,fashion-mnist,pdflatex` (or `all`) makes the checks below answer "absent"
whatever the machine has: the CPU's bf16 instructions (runtime.bf16_supported), the Debian
Fashion-MNIST package at its default folder (data.sources), and pdflatex (the report's TeX test).
CI runs the whole test suite a second time this way (`make test-bare`), so a test that assumes a
capability fails on every machine, not only on the one that lacks it. A GPU is hidden the usual
way, with `CUDA_VISIBLE_DEVICES=`.
"""

from __future__ import annotations

import os
import shutil

from vggbench.errors import VggbenchError

ABSENT_ENV = "VGGBENCH_ABSENT"
CAPABILITIES = ("bf16", "fashion-mnist", "pdflatex")


def hidden() -> frozenset[str]:
    """The capabilities VGGBENCH_ABSENT hides (read on every call, so a test can set it)."""
    names = {n.strip().lower() for n in os.environ.get(ABSENT_ENV, "").split(",") if n.strip()}
    if "all" in names:
        return frozenset(CAPABILITIES)
    unknown = sorted(names - set(CAPABILITIES))
    if unknown:
        raise VggbenchError(
            f"{ABSENT_ENV}: unknown capability {', '.join(unknown)}; "
            f"use a comma-separated list of {', '.join(CAPABILITIES)}, or all"
        )
    return frozenset(names)


def absent(name: str) -> bool:
    """Whether VGGBENCH_ABSENT hides this capability."""
    assert name in CAPABILITIES, name
    return name in hidden()


def tool(name: str) -> str | None:
    """The path of an external program, or None where it is missing or hidden."""
    return None if name in CAPABILITIES and absent(name) else shutil.which(name)
