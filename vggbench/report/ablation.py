"""An ablation's record as `vggbench ablate` prints it, in any of the output formats."""

from __future__ import annotations

import json

from vggbench.ablations.spec import Budget
from vggbench.ablations.stats import AblationRecord
from vggbench.render import render_sections
from vggbench.report import tables


def render_ablation(record: AblationRecord, fmt: str) -> str:
    """The ablation's record in `fmt`: JSON is the record; the other formats its arms and
    comparisons tables, with the claim, budget and notes as text (LaTeX comments in LaTeX; left out
    of CSV, which is one table)."""
    if fmt == "json":
        return json.dumps(record.to_json(), indent=2, default=str)
    header = [
        f"{record.title} ({record.paper.section})",
        f"paper: {record.paper.claim}",
        tables.ablation_budget_line(record),
        design_line(record.budget),
    ]
    notes = [c.note for c in record.comparisons if c.note] + list(tables.ablation_notes(record))
    if record.runs_found < record.runs_expected:
        notes.append(
            f"{record.runs_found} of {record.runs_expected} runs are in the store; "
            "run the other shards to complete the sweep"
        )
    sections = [
        ("arms", tables.ablation_arms_frame(record)),
        ("comparisons (treatment - baseline top-1 error)", tables.ablation_comparisons_frame(record)),
    ]
    if fmt == "csv":
        return render_sections(sections, fmt, key="table")
    prefix = "% " if fmt == "latex" else ""
    return "\n".join(prefix + line for line in header) + "\n" + render_sections(sections, fmt, notes)


def design_line(budget: Budget) -> str:
    """Whether the sweep chained its arms (the paper's fine-tuning) or trained each from scratch."""
    if budget.design == "chain":
        return (
            f"design: chain (an arm with init_from fine-tunes its source arm's run of the same seed "
            f"at lr {budget.finetune_lr:g} for {budget.finetune_epochs} epochs; --from-scratch for none)"
        )
    return f"design: {budget.design} (every arm from its own init, {budget.epochs} epochs)"
