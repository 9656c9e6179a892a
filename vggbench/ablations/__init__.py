"""The paper's ablations: a declarative spec (ablations/*.toml) -> arms x seeds -> runs ->
evaluations -> statistics over seeds and a verdict against the paper's claim.

Adding an ablation is adding a spec file. A spec names its arms (net, train scale, init), its
evaluations (method, test scales), its comparisons (baseline, treatment, what the paper expects)
and the paper's numbers by reference into `paper.py`; budgets come from ablations/presets.toml.

spec: the spec model and its budgets · sweep: running the arms x seeds and analysing them ·
stats: intervals, verdicts and the typed ablation record.
"""
