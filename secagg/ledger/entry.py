"""One ledger row as a typed value, built from what a round did.

The server fills a :class:`LedgerEntry` from the round's result (backend report,
mechanism's DP block, the store's outcome) and the ledger turns it into the
canonical row it hash-chains and signs (:meth:`LedgerEntry.row`). Participant
names never enter the ledger: only their salted identity hashes do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from secagg.errors import ConfigurationError, SecAggError

#: 3 (since 2026-12-05): every row with a DP block records ``dp.sampling`` whole (kind,
#: rate, population, seeded), which ``audit verify`` requires of every row of version 3
#: on. 2: every row states ``noise_seeded`` (rows of version 1 lack it and read as
#: false); rows of version 2 gained ``dp.sampling`` on 2026-12-02 and its ``seeded`` on
#: 2026-12-03 without a new version, so an older one without them still verifies (as
#: before; docs/audit.md). A rebuilt row's ``reconstruction`` record (since 2026-12-05)
#: is optional in either: older rebuilt rows carry ``reconstructed: true`` alone, and
#: verify reports them as rebuilt with the provenance not recorded. A row of a version
#: above this one is refused: this code cannot tell what its fields promise
ROW_VERSION = 3

#: the row versions whose rows record ``dp.sampling`` on every DP block
SAMPLING_RECORDED_SINCE = 3
#: what such a row's ``dp.sampling`` holds (``seeded`` included: every server that
#: writes version 3 writes it, false included)
SAMPLING_FIELDS = ("kind", "rate", "population", "seeded")

#: where a rebuilt row's fields came from (the only source the server rebuilds from)
FROM_STATE = "state"


class SamplingUnrecorded(SecAggError):
    """A ledger entry's DP block lacks (part of) ``dp.sampling`` and the entry was not
    built as a legacy row (:attr:`LedgerEntry.legacy_layout`): no row is made of it.

    Why: such an entry was written as a version-2 row without a word, and ``audit
    verify`` checks a version-2 row's sampling less (no kind, rate, ``delta >= 1/N`` or
    population check once the record is gone). The server always records the sampling,
    so a server that ever dropped it would quietly have written rows that verify checks
    less; now it stops before the row is appended (the state notes the row missing and
    why) and the ledger stays whole."""


def sampling_lacks(dp: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields of :data:`SAMPLING_FIELDS` a DP block's ``dp.sampling`` lacks (all of
    them when it records none, or something that is no object)."""
    sampling = dp.get("sampling")
    if not isinstance(sampling, dict):
        return SAMPLING_FIELDS
    return tuple(name for name in SAMPLING_FIELDS if name not in sampling)


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
    #: the named legacy path: a row in the layout before ``dp.sampling`` was recorded
    #: whole, written as the version-2 row it is (only tests write such rows today, to
    #: check their audit). Any other entry whose DP block lacks part of the record is
    #: refused (:class:`SamplingUnrecorded`)
    legacy_layout: bool = False

    def __post_init__(self) -> None:
        if self.reconstruction is not None and not self.reconstructed:
            raise ConfigurationError(
                f"round {self.round}: a reconstruction record on a row not marked reconstructed"
            )
        lacking = () if self.dp is None or self.legacy_layout else sampling_lacks(self.dp)
        if lacking:
            raise SamplingUnrecorded(
                f"round {self.round}: the DP block's dp.sampling lacks "
                f"{', '.join(lacking)}: a row of version {ROW_VERSION} records how its cohort "
                "was drawn whole, so no row is written (only a legacy row, built as one, "
                f"is written as version {SAMPLING_RECORDED_SINCE - 1} without it)"
            )

    @property
    def row_version(self) -> int:
        """The layout this entry's row is written in: :data:`ROW_VERSION`, the server's
        (its DP blocks record ``dp.sampling`` whole), unless the entry was built as a
        legacy row (:attr:`legacy_layout`) whose DP block lacks any of
        :data:`SAMPLING_FIELDS`: written as the version-2 row it is (version 3 would
        promise a record the row does not hold, and ``audit verify`` fails that). An
        entry that lacks them without being built so was refused when it was made."""
        if self.dp is None or not sampling_lacks(self.dp):
            return ROW_VERSION
        return SAMPLING_RECORDED_SINCE - 1

    def row(self, identity_hash: Callable[[str], str]) -> dict[str, Any]:
        """The ledger's row: names replaced by their identity hashes."""
        out: dict[str, Any] = {
            "version": self.row_version,
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


# --- the shape of a row, as an auditor reads it -------------------------------------------

#: counts and round numbers above this are no count a ledger records (2**53: the largest
#: integer every JSON reader holds exactly)
_LARGEST_COUNT = 2**53
#: a DP block's figures that are numbers wherever the writer records them
_DP_NUMBERS = ("clip", "record_clip", "noise_multiplier", "noise_std", "sample_rate", "delta")
#: where each of them lies in any row a server writes (its config refuses the rest:
#: secagg.dp.config). Why: only finiteness was read, so a row with clip -1 and noise std
#: -1.5, or accounted at sample rate 2, verified; its replay means nothing
_DP_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "clip": (lambda v: v > 0, "a number > 0"),
    "record_clip": (lambda v: v > 0, "a number > 0"),
    "noise_multiplier": (lambda v: v >= 0, "a number >= 0"),
    "noise_std": (lambda v: v >= 0, "a number >= 0"),
    "sample_rate": (lambda v: 0 < v <= 1, "a rate in (0, 1]"),
    "delta": (lambda v: 0 < v < 1, "a number in (0, 1)"),
}


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _LARGEST_COUNT


def _is_finite(value: object) -> bool:
    """A JSON number a float holds, finite (an int too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _shown(value: object) -> str:
    """A hostile value in one short line (a huge or deeply nested one is cut)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def row_shape_problem(entry: object, previous_round: int | None) -> str | None:
    """What makes ``entry`` no ledger row the writer could have written, or None.

    Why: ``audit verify`` read signed rows on trust of their shape. A row that was not a
    JSON object, whose ``privacy`` was a list or whose epsilon an integer too large for
    a float ended in "cannot be read as a ledger: 'list' object has no attribute 'get'"
    (no row named), ``audit report`` in a traceback; a row whose round number was a
    string, whose model digest or participant count was missing, or whose ``dp.sampling``
    was a list verified (the checks that read them skipped what was not the type they
    expected). ``previous_round``: the round of the row before (None for the first):
    the server writes each round once, in order, so a repeated, reordered or skipped
    round number is a row deleted, duplicated or moved and re-signed. A row of a
    version above :data:`ROW_VERSION` fails, and one of version 3 on must record its
    ``dp.sampling`` whole."""
    if not isinstance(entry, dict):
        return f"is not a JSON object but {type(entry).__name__} {_shown(entry)}"
    number = entry.get("round")
    if not _is_count(number) or number < 1:
        return f"round must be a round number (an integer >= 1), not {_shown(number)}"
    if previous_round is not None and number != previous_round + 1:
        what = (
            "repeats"
            if number == previous_round
            else "goes back from"
            if number < previous_round
            else "skips rounds after"
        )
        return (
            f"round {number} {what} round {previous_round} of the row before: the server "
            "writes every round once, in order (a row deleted, duplicated or moved)"
        )
    problem = _version_problem(entry)
    if problem is not None:
        return problem
    status = entry.get("status")
    if status not in ("complete", "aborted"):
        return f"status must be 'complete' or 'aborted', not {_shown(status)}"
    for name in ("reason", "federation", "model_sha256"):
        value = entry.get(name)
        if value is not None and not isinstance(value, str):
            return f"{name} must be a string, not {_shown(value)}"
    if not isinstance(entry.get("model_sha256"), str):
        return "records no model_sha256 (the digest of the model the round left)"
    for name in ("started_at", "finished_at"):
        value = entry.get(name)
        if value is not None and not _is_finite(value):
            return f"{name} must be a time (a finite number of seconds), not {_shown(value)}"
    for name in ("backend", "dropouts"):
        value = entry.get(name, {})
        if not isinstance(value, dict):
            return f"{name} must be a JSON object, not {_shown(value)}"
    if not all(_is_count(v) for v in entry.get("dropouts", {}).values()):
        return f"dropouts must count participants per phase, not {_shown(entry['dropouts'])}"
    problem = _participants_problem(entry.get("participants"), entry.get("contributed"))
    if problem is None:
        problem = _privacy_problem(entry.get("privacy"))
    if problem is None and entry.get("dp") is not None:
        problem = _dp_problem(entry["dp"])
    if problem is None:
        problem = _sampling_record_problem(entry)
    return problem


def _version_problem(entry: dict[str, Any]) -> str | None:
    """What is wrong with the row's ``version`` number, or None.

    Why: the version was never read, so a row a later server writes, with fields this
    code does not know the meaning of, verified on the fields it does know."""
    version = entry.get("version")
    if not _is_count(version) or version < 1:
        return f"version must be a row version (an integer >= 1), not {_shown(version)}"
    if version > ROW_VERSION:
        return (
            f"is row version {version}, newer than the {ROW_VERSION} this verifier knows: "
            "it cannot tell what the row's fields promise (audit it with the secagg that "
            "wrote it, or a newer one)"
        )
    return None


def _sampling_record_problem(entry: dict[str, Any]) -> str | None:
    """Why a row of version :data:`SAMPLING_RECORDED_SINCE` on lacks (part of) its DP
    block's ``dp.sampling``, or None.

    Why: rows gained ``dp.sampling`` (2026-12-02) and its ``seeded`` (2026-12-03)
    without a new version, so the verifier required the record only of rows it
    recognised as newer by other fields (``dp.composition``, a distributed row's
    ``corrupt_fraction``), and a central row without either skipped the sampling
    kind, rate, ``delta >= 1/N`` and population checks once its record was dropped.
    Rows of version 2 keep that rule (verify's ``_sampling_unrecorded``)."""
    dp = entry.get("dp")
    if entry["version"] < SAMPLING_RECORDED_SINCE or not isinstance(dp, dict):
        return None
    sampling = dp.get("sampling")
    if isinstance(sampling, dict):
        lacking = [name for name in SAMPLING_FIELDS if name not in sampling]
        if not lacking:
            return None
        missing = "a dp.sampling without " + ", ".join(lacking)
    else:
        missing = "no dp.sampling"
    return (
        f"is row version {entry['version']} but records {missing}: every DP row of version "
        f"{SAMPLING_RECORDED_SINCE} on records how its cohort was drawn (kind, rate, "
        "population, seeded), which the sampling, delta and population checks read"
    )


def _participants_problem(participants: object, contributed: object) -> str | None:
    if not isinstance(participants, dict):
        return f"participants must be a JSON object, not {_shown(participants)}"
    count, hashes = participants.get("count"), participants.get("identity_hashes")
    if not _is_count(count):
        return f"participants.count must be a count, not {_shown(count)}"
    if hashes is not None and hashes != "withheld":
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            return (
                "participants.identity_hashes must be a list of hashes or 'withheld', not "
                f"{_shown(hashes)}"
            )
    if not _is_count(contributed):
        return f"contributed must be a count, not {_shown(contributed)}"
    if contributed > count:
        return f"counts {contributed} contributions from {count} participants"
    return None


def _privacy_problem(privacy: object) -> str | None:
    if not isinstance(privacy, dict):
        return f"privacy must be a JSON object, not {_shown(privacy)}"
    epsilon, delta = privacy.get("epsilon"), privacy.get("delta")
    # the writer stores an infinite epsilon as "inf" (JSON has no infinity); nothing else
    if epsilon is not None and epsilon != "inf" and not (_is_finite(epsilon) and epsilon >= 0):
        return f"privacy.epsilon must be a number >= 0 or 'inf', not {_shown(epsilon)}"
    if delta is not None and not (_is_finite(delta) and 0 <= delta <= 1):
        return f"privacy.delta must be a number in [0, 1], not {_shown(delta)}"
    return None


def _dp_problem(dp: object) -> str | None:
    if not isinstance(dp, dict):
        return f"dp must be a JSON object or null, not {_shown(dp)}"
    for name in _DP_NUMBERS:
        value = dp.get(name)
        if value is not None and not _is_finite(value):
            return f"dp.{name} must be a finite number, not {_shown(value)}"
        within, what = _DP_RANGES[name]
        if value is not None and not within(float(value)):
            return f"dp.{name} must be {what}, not {_shown(value)}"
    for name in ("sampling", "ddg", "adaptive_clipping", "client_reports"):
        value = dp.get(name)
        if value is not None and not isinstance(value, dict):
            return f"dp.{name} must be a JSON object, not {_shown(value)}"
    # verify charges an aborted row whose sum was revealed only on a literal true: a
    # string "true" read as unrevealed and the round went uncharged
    revealed = dp.get("sum_revealed")
    if revealed is not None and not isinstance(revealed, bool):
        return f"dp.sum_revealed must be true or false, not {_shown(revealed)}"
    sampling = dp.get("sampling") or {}
    rate, population = sampling.get("rate"), sampling.get("population")
    if rate is not None and not (_is_finite(rate) and 0 < rate <= 1):
        return f"dp.sampling.rate must be a rate in (0, 1], not {_shown(rate)}"
    if population is not None and not (_is_count(population) and population > 0):
        return f"dp.sampling.population must be a count of clients, not {_shown(population)}"
    for identity, report in (dp.get("client_reports") or {}).items():
        history = report.get("history") if isinstance(report, dict) else None
        steps_ok = isinstance(history, list) and all(
            isinstance(step, list)
            and len(step) == 3
            and _is_finite(step[0])
            and _is_finite(step[1])
            and _is_count(step[2])
            for step in history
        )
        if not steps_ok:
            return (
                f"dp.client_reports[{identity[:12]!r}] must be a report with a history of "
                f"[noise multiplier, sample rate, steps] triples, not {_shown(report)}"
            )
    return None
