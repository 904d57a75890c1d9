"""``perfci gate``: the PR check. Two revisions on one stack, judged per pull request.

==============  ==========================================================================
module          job
==============  ==========================================================================
``checkout``    both sides' worktrees; which harness files the pull request changed
``venv``        one cached venv per dependency set (each side's own pyproject)
``duo``         one stack: PostgreSQL + Valkey, a seeded template cloned per side, the services
``shapes``      ramp, spike, SSE, connections once per side (for the SLA and the report)
``windows``     one duet window: both services under the same load at once (k6 + psutil)
``sequential``  windows until the rule decides (warm-up block, looks, the time budget)
``outputs``     verdict.json and what is rendered from it
``runner``      the whole check (:func:`run_gate`)
``calibrate``   many gate verdicts of A/A and of a known slowdown: alarm and detection rates
==============  ==========================================================================

The decision rule itself is :mod:`ci.judge.gate` (statistics) and :mod:`ci.judge.duet`
(windows to effects); the verdict file is :mod:`ci.judge.gate_verdict`.
"""
