"""The privacy ledger (hash-chained, signed rows per round) and the audit that checks it."""

from secagg.ledger.chain import Ledger, LedgerError, LedgerKey, export_public_key, load_public_key
from secagg.ledger.verify import AuditResult, verify_ledger

__all__ = [
    "AuditResult",
    "Ledger",
    "LedgerError",
    "LedgerKey",
    "export_public_key",
    "load_public_key",
    "verify_ledger",
]
