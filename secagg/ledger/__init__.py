"""The privacy ledger (hash-chained, signed rows per round) and the audit that checks it.

The audit (:mod:`secagg.ledger.verify`: :func:`verify_ledger`, :class:`AuditResult`) is
imported on first use, not with the package. Why: it pulls in the replay and the DP
accountants (:mod:`secagg.dp.accountants`, :mod:`secagg.dp.distributed`, ...), and a
server that only appends rows (:class:`Ledger`) paid that import at start-up for
nothing. ``from secagg.ledger import verify_ledger`` still works (module ``__getattr__``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from secagg.ledger.chain import Ledger, LedgerError, LedgerKey, export_public_key, load_public_key

if TYPE_CHECKING:
    from secagg.ledger.verify import AuditResult, verify_ledger

#: names re-exported from :mod:`secagg.ledger.verify`, imported when first asked for
_FROM_VERIFY = frozenset({"AuditResult", "verify_ledger"})

__all__ = [
    "AuditResult",
    "Ledger",
    "LedgerError",
    "LedgerKey",
    "export_public_key",
    "load_public_key",
    "verify_ledger",
]


def __getattr__(name: str) -> Any:
    """The audit's names, imported on first use (see the module docstring)."""
    if name in _FROM_VERIFY:
        from secagg.ledger import verify

        return getattr(verify, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
