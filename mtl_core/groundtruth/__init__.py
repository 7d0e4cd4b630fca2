"""Measured ground-truth tables: readers, exact selection, estimators (docs/ground-truth.md)."""
