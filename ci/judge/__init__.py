"""Judging result files: the PR gate's rule, the SLA, and the plain difference.

``gate`` (the gate's rule over measured windows), ``gate_decision`` and ``gate_verdict``
(the verdict and its conclusion), ``duet`` (the windows' figures), ``quality`` (the recall
check), ``micro`` (the micro-benchmarks), ``calibration`` (error rates of calibration runs),
``sla`` (absolute limits on a run, and the gate's two-sided SLA rule), ``metrics`` (a
scenario's named figures), ``diff`` (one run against the stored baseline, no verdict).
Import the module you need: this package imports numpy and scipy only when one of them is.
"""
