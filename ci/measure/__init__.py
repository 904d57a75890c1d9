"""Measuring one run: drive the load (k6, vegeta), sample the service, diagnose, collect.

``run`` orchestrates a ``perfci run``; ``profiles`` defines the load profiles; ``k6`` and
``vegeta`` build, run and parse the load tools; ``sample`` samples processes and the
database; ``diagnose`` takes CPU profiles, allocation growth, statements and the query
plan (through the service's admin route); ``memory`` fits RSS trends; ``collect`` turns raw
outputs into the results model. Beyond one runner: ``segments`` builds each k6 runner's argv
(execution segments) and checks a split before it runs, ``launch`` runs the runners (local
processes, network namespaces) and ``operator`` the k6-operator TestRun, and ``merge`` merges
their raw samples exactly and judges the thresholds once.
"""
