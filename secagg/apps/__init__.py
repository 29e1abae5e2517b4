"""The applications built on the library: the ``secagg`` command, the bank-fraud simulator
and its models, the benchmarks, the ledger audit command and the development CA.

This is the top layer. Nothing under ``secagg`` outside this package imports it.
"""
