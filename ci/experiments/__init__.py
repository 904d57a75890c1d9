"""Experiments over whole runs: A/B pairs, the baseline, calibration, sweeps, chaos.

``pairs`` runs revisions in interleaved pairs on fresh stacks (worktrees, one runner
function); ``ab``, ``baseline`` and ``calibrate`` build on it; ``sweep_index`` drives the
service's own index sweep, ``sweep_load`` one ``perfci run`` per value of a stack setting;
``chaos`` injects faults while ``chaos_load`` offers a steady load.
"""
