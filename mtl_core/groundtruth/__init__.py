"""Measured ground-truth tables: readers, exact selection, estimators (docs/grouping.md)."""
