"""Rendering: verdicts and results as Markdown, HTML, plots and text tables. Never judges.

``markdown`` (PR comment, job summary), ``html`` (comparison and run reports), ``plots``
(matplotlib PNGs), ``escape`` (untrusted text), ``formatting`` and ``environment`` (shared
by the templates), ``report`` (report folders; :func:`ci.render.report.rerender_run`),
``text`` and the experiments' tables (``tables_run``, ``sweep``, ``chaos``, ``ab``).
Import the module you need: this package imports Jinja2 and matplotlib only when one does.
"""
