"""`make bench`: the performance targets of DESIGN §9, each measured against the SDK's own floor (bench/run.py)."""
