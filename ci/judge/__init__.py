"""Judging result files: statistics, comparison, SLA gates, the verdict.

``stats`` (estimators, tests, bootstrap) -> ``metrics`` (one figure per run) ->
``compare`` (base vs candidate per metric) and ``sla`` (absolute gates) -> ``verdict``
(status, counts, headline, exit code; the Judgement render formats). ``bench`` compares
pytest-benchmark files; ``inputs`` finds the files to judge. Import the module you need:
this package imports numpy and scipy only when one of them is.
"""
