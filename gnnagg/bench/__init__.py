"""Benchmarks (``gnnagg bench NAME``)."""
