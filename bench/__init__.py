"""Benchmarks: ``python bench/run.py --locations L --skus S`` (see docs/performance.md)."""
