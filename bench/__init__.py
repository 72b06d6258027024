"""Benchmarks against peers and ceilings, in one run on one PostgreSQL (docs/benchmarks.md).

``python -m bench`` runs the event log benchmark (``bench.log``); each module has ``--help``.
"""
