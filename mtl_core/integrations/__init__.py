"""Adapters to other training frameworks (each imports its framework lazily, guarded)."""
