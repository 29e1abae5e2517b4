"""``import secagg.ledger`` leaves the audit (verify, the replay, the DP accountants) for
first use.

Why: the package re-exported :func:`verify_ledger` eagerly, so a server that only appends
rows imported the replay and every DP accountant module at start-up (about 0.1-0.5 s,
more on a loaded machine) for an audit it never runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: the audit's modules an appending server must not load: the audit itself, its replay
#: and row checks, and the DP modules they bring (accountants, the distributed DDG, ...)
AUDIT_MODULES = (
    "secagg.ledger.verify",
    "secagg.ledger.replay",
    "secagg.ledger.row_checks",
    "secagg.dp.accountants",
    "secagg.dp.distributed",
    "secagg.dp.release",
    "secagg.dp.display",
)

_APPEND = """
import json, sys
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.entry import LedgerEntry
ledger = Ledger(sys.argv[1], LedgerKey.generate())
entry = LedgerEntry(
    federation="lazy", round=1, status="complete", reason=None, started_at=None,
    finished_at=1.0e9, backend={"name": "secagg+"}, participants=("a", "b"),
    contributed=2, dropouts={}, dp=None, epsilon=None, delta=None,
    model_sha256="0" * 64,
)
ledger.append(entry.row(lambda name: name))
ledger.close()
print(json.dumps(sorted(sys.modules)))
"""


def test_appending_a_row_loads_no_audit_module(tmp_path: Path) -> None:
    """A fresh interpreter that appends a row (as the server does) has loaded none of
    :data:`AUDIT_MODULES`."""
    done = subprocess.run(
        [sys.executable, "-c", _APPEND, str(tmp_path / "lazy.ledger")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = set(json.loads(done.stdout))
    assert "secagg.ledger.chain" in loaded  # it did append, through the chain
    assert sorted(loaded.intersection(AUDIT_MODULES)) == []


def test_the_audit_names_still_import_from_the_package() -> None:
    """``from secagg.ledger import verify_ledger, AuditResult`` is the same objects as the
    audit module's, and an unknown name is still an AttributeError."""
    import secagg.ledger
    from secagg.ledger import AuditResult, verify_ledger
    from secagg.ledger import verify as audit

    assert verify_ledger is audit.verify_ledger
    assert AuditResult is audit.AuditResult
    with pytest.raises(AttributeError, match="no_such_name"):
        secagg.ledger.no_such_name  # noqa: B018
