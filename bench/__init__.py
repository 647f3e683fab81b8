"""Benchmarks: each prints Faust's figure beside a baseline measured in the same run."""
