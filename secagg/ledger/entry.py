"""One ledger row as a typed value, built from what a round did.

The server fills a :class:`LedgerEntry` from the round's result (backend report,
mechanism's DP block, the store's outcome) and the ledger turns it into the
canonical row it hash-chains and signs (:meth:`LedgerEntry.row`). Participant
names never enter the ledger: only their salted identity hashes do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: 2: every row states ``noise_seeded`` (rows of version 1 lack it and read as false)
ROW_VERSION = 2


@dataclass(frozen=True)
class LedgerEntry:
    federation: str
    round: int
    status: str  # "complete" | "aborted"
    reason: str | None
    started_at: float | None
    finished_at: float
    backend: dict[str, Any]
    participants: tuple[str, ...]
    contributed: int
    dropouts: dict[str, int]
    dp: dict[str, Any] | None
    epsilon: float | None
    delta: float | None
    model_sha256: str
    reconstructed: bool = False
    #: the round's DP noise came from a seeded, replayable stream (a simulation with a
    #: replay seed), not the OS CSPRNG: whoever knows the seed can subtract the noise,
    #: so ``secagg audit verify`` reports the round as not private (security review M1)
    noise_seeded: bool = False
    #: False only in rows written before 2026-12-03, whose epsilon counted on the
    #: sampling staying secret (the tests write such rows to check their audit)
    publish_participants: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, identity_hash: Callable[[str], str]) -> dict[str, Any]:
        """The ledger's row: names replaced by their identity hashes."""
        out: dict[str, Any] = {
            "version": ROW_VERSION,
            "federation": self.federation,
            "round": self.round,
            "status": self.status,
            "reason": self.reason,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "backend": self.backend,
            "participants": self._participants(identity_hash),
            "contributed": self.contributed,
            "dropouts": self.dropouts,
            "dp": self.dp,
            "privacy": {"epsilon": self.epsilon, "delta": self.delta},
            "model_sha256": self.model_sha256,
            # always written, false included: an auditor tells "not seeded" from "not said"
            "noise_seeded": bool(self.noise_seeded),
        }
        if self.reconstructed:
            out["reconstructed"] = True
        return out

    def _participants(self, identity_hash: Callable[[str], str]) -> dict[str, Any]:
        """Who took part: the count, and the identity hashes (an auditor charges each
        client for its rounds from them); withheld only in older rows whose epsilon
        was amplified by secret Poisson sampling."""
        if not self.publish_participants:
            return {"count": len(self.participants), "identity_hashes": "withheld"}
        return {
            "count": len(self.participants),
            "identity_hashes": sorted(identity_hash(n) for n in self.participants),
        }
