"""Benchmarks of the local pipeline (not tests): `python -m benchmarks.pipeline`."""
