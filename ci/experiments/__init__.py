"""Experiments over whole runs: the PR gate, the baseline, calibration, sweeps, chaos.

``pairs`` runs a revision's own ``perfci run`` on a fresh stack and checks revisions out
as git worktrees; ``baseline`` builds on it; ``gate/`` is the PR check and its
calibration; ``sweep_index`` drives the service's own index sweep, ``sweep_load`` one
``perfci run`` per value of a stack setting; ``chaos`` injects faults while ``chaos_load``
offers a steady load; ``capacity`` and ``capacity_run`` find the service's capacity.
"""
