"""`make bench`: the performance targets (docs/BENCHMARKS.md), each measured against the SDK's own floor (bench/run.py)."""
