"""Rendering: verdicts and results as Markdown, HTML, plots and text tables. Never judges.

``gate`` (the gate's sticky comment, its marker, and the job summary), ``gate_report`` and
``gate_calibration``, ``html`` (a run's report), ``report``
(:func:`ci.render.report.rerender_run`), ``diff`` (a run against the stored baseline),
``plots`` (matplotlib PNGs), ``escape`` (untrusted text), ``formatting`` and
``environment`` (shared by the templates), and the experiments' tables (``tables_run``,
``sweep``, ``chaos``, ``capacity``, ``history``, ``dashboard``). Import the module you
need: this package imports Jinja2 and matplotlib only when one does.
"""
