"""Benchmarks: each prints its figures next to the strongest baseline measured
in the same run, as a ratio. `make bench` runs them all."""
