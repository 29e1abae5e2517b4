"""``secagg audit``: check or report a privacy ledger, and estimate epsilon empirically.

The ledger itself (chain, verification, report) lives in :mod:`secagg.ledger`; this package
adds the click commands and the canary audit, which trains through the simulator.
"""
