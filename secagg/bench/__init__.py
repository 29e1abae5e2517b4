"""Benchmarks shipped with the package (``secagg bench ...``)."""
