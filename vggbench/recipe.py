"""The training recipe's settings, declared once, free of heavy imports (torch, pandas)."""

from __future__ import annotations

#: Help panels, so that `--help` groups a command's options by what they are about.
MODEL, DATA, RECIPE, EVALUATION, OUTPUT, RUN_CONTROL = (
    "Model",
    "Data",
    "Recipe",
    "Evaluation",
    "Output",
    "Run control",
)
