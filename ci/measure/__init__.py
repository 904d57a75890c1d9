"""Measuring one run: drive the load (k6, vegeta), sample the service, diagnose, collect.

``run`` orchestrates a ``perfci run``; ``profiles`` defines the load profiles; ``k6`` and
``vegeta`` build, run and parse the load tools; ``sample`` samples processes and the
database; ``diagnose`` takes CPU profiles, allocation growth, statements and the query
plan (through the service's admin route); ``memory`` fits RSS trends; ``collect`` turns raw
outputs into the results model.
"""
