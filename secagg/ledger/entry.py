"""One ledger row as a typed value, built from what a round did.

The server fills a :class:`LedgerEntry` from the round's result (backend report,
mechanism's DP block, the store's outcome) and the ledger turns it into the
canonical row it hash-chains and signs (:meth:`LedgerEntry.row`). Participant
names never enter the ledger: only their salted identity hashes do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from secagg.errors import ConfigurationError

#: 2: every row states ``noise_seeded`` (rows of version 1 lack it and read as false).
#: A rebuilt row's ``reconstruction`` record (since 2026-12-05) is an optional key of the
#: same version: older rebuilt rows carry ``reconstructed: true`` alone, and verify
#: reports them as rebuilt with the provenance not recorded
ROW_VERSION = 2

#: where a rebuilt row's fields came from (the only source the server rebuilds from)
FROM_STATE = "state"


@dataclass(frozen=True)
class Reconstruction:
    """Why a ledger row was rebuilt after the fact, from what, and what it lacks.

    Why: a rebuilt row carried only ``reconstructed: true``; an auditor could not tell
    a row rebuilt because the disk filled up from one a crash interrupted, nor which
    of its fields are the round's own record and which the restarted server filled in
    (its backend from today's config, dropouts as none, its finish time as the
    rebuild's). Every field the row holds is listed in ``recovered`` (copied from the
    source's record of the round) or in ``not_recovered`` (field -> what the row holds
    instead and why)."""

    #: :data:`FROM_STATE`: the server's state database, its record of the round
    source: str
    #: why the row had to be rebuilt (the state's ``ledger_row_missing`` note, the
    #: restart that aborted the round, or that no cause was recorded)
    cause: str
    recovered: tuple[str, ...]
    not_recovered: Mapping[str, str]

    def as_row(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "cause": self.cause,
            "recovered": list(self.recovered),
            "not_recovered": dict(self.not_recovered),
        }

    @classmethod
    def of_row(cls, entry: Mapping[str, Any]) -> Reconstruction | None:
        """The provenance a ledger row records; None for a row not rebuilt, or rebuilt
        before the record existed (``reconstructed: true`` alone: see
        :func:`rebuilt`). A malformed record (wrong types, a record on a row not
        marked rebuilt) raises :class:`ValueError`, naming the field."""
        marked = rebuilt(entry)
        record = entry.get("reconstruction")
        if record is None:
            return None
        if not marked:
            raise ValueError("carries a reconstruction record but is not marked reconstructed")
        if not isinstance(record, dict):
            raise ValueError(f"reconstruction must be an object, not {type(record).__name__}")
        source, cause = record.get("source"), record.get("cause")
        recovered, missing = record.get("recovered"), record.get("not_recovered")
        if not isinstance(source, str) or not source:
            raise ValueError(f"reconstruction.source must be a non-empty string, not {source!r}")
        if not isinstance(cause, str) or not cause:
            raise ValueError(f"reconstruction.cause must be a non-empty string, not {cause!r}")
        if not isinstance(recovered, list) or not all(isinstance(f, str) for f in recovered):
            raise ValueError("reconstruction.recovered must be a list of field names")
        if not isinstance(missing, dict) or not all(isinstance(v, str) for v in missing.values()):
            raise ValueError(
                "reconstruction.not_recovered must map field names to what the row holds instead"
            )
        return cls(source, cause, tuple(recovered), dict(missing))


def rebuilt(entry: Mapping[str, Any]) -> bool:
    """Whether a ledger row says it was rebuilt after the fact (``reconstructed``);
    anything but true or false there is a malformed row (:class:`ValueError`)."""
    value = entry.get("reconstructed", False)
    if not isinstance(value, bool):
        raise ValueError(f"reconstructed must be true or false, not {value!r}")
    return value


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
    #: a rebuilt row's provenance (why, from what, which fields): written beside
    #: ``reconstructed: true``; only a ``reconstructed`` entry may carry one
    reconstruction: Reconstruction | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.reconstruction is not None and not self.reconstructed:
            raise ConfigurationError(
                f"round {self.round}: a reconstruction record on a row not marked reconstructed"
            )

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
        if self.reconstruction is not None:
            out["reconstruction"] = self.reconstruction.as_row()
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
