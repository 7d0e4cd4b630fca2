"""Benchmarks: each prints a table with a same-run baseline ratio. Run from the repository root
as modules, e.g. ``python -m bench.affinity_overhead`` (see the README's Performance section)."""
