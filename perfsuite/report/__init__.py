"""What a run shows and writes: the outcomes, the run report (tables, report.json, report.md),
plots, GitHub-flavoured Markdown tables and progress.
"""
