"""``perfci gate``: the PR check. Two revisions on one stack, judged per pull request.

==============  ==========================================================================
module          job
==============  ==========================================================================
``checkout``    the commits and the harness, picked once; both sides' worktrees; pr.json
``venv``        one cached venv per dependency set (each side's own lock)
``servers``     each side's PostgreSQL + pgvector and Valkey from its venv; shared or not
``duo``         per side its own database (its own loader), Valkey, service; one PostgreSQL
                for both when their builds are the same, else one each
``shapes``      ramp, spike, SSE, connections once per side (for the SLA and the report)
``windows``     one duet window: both sides under the same load at once (k6, and the
                process figures below)
``sampling``    each side's service, PostgreSQL backends and Valkey CPU, service RSS (psutil)
``sequential``  windows until the rule decides (warm-up block, looks, the time budget)
``quality``     the recall check: each side against its own exact scan, and the
                candidate's code on the base's graph
``micro``       the micro-benchmarks: rounds of a fresh process per side running
                ``micro_cases.py`` (a script each side's python runs, not a module of ours)
``outputs``     verdict.json and what is rendered from it (``GateFolder``'s files)
``runner``      the whole check (:func:`run_gate`)
``commits``     a commit on a parent in a temporary worktree (the zoo's and calibration's)
``calibrate``   many full gates of A/A and of a known slowdown: alarm and detection rates
``zoo``         the gate on each regression patch of ``zoo/`` against HEAD
==============  ==========================================================================

The rule is :class:`ci.settings.gate.GateRule` (perf.toml [gate]); the one decision is
:func:`ci.judge.gate_decision.judge` (statistics in :mod:`ci.judge.gate`, windows to effects
in :mod:`ci.judge.duet`); the verdict file is :mod:`ci.judge.gate_verdict`, the report
folder :class:`ci.judge.gate_folder.GateFolder`.
"""
