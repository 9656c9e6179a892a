"""The report: our numbers beside the paper's.

tables: every table as a DataFrame (Table 2, the `eval` results and Tables 3-6, the ablations) ·
plots: the PNG plots · write: Table 2's files and the whole report (REPORT.md, LaTeX, plots).
"""
