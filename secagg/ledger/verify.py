"""``secagg audit verify``: the chain, every signature, and every epsilon claim.

The epsilon check does not trust the claimed numbers: it replays the recorded
mechanism parameters of every completed round through the same accountants the
server's mechanisms hold (:mod:`secagg.dp.accountants`: the Gaussian for central
noise, the distributed discrete Gaussian's bound for noise added by the clients,
Opacus's for each branch's DP-SGD)
and compares the cumulative epsilon each row claims with what follows.

Two more verdicts sit beside it. A head the auditor kept from an earlier audit
(``expect_head``) must still be in the chain: the signatures alone accept a ledger cut
back to an earlier signed head. And a round whose DP noise was drawn from a seeded,
replayable stream (``noise_seeded`` in its row, a simulation's) is reported as not
private: anyone with the seed regenerates the noise and subtracts it, whatever epsilon
the accountant computes (security review M1).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secagg.dp.accountants import (
    DiscreteGaussianAccountant,
    GaussianAccountant,
    RecordLevelAccountant,
)
from secagg.ledger.chain import (
    AnchorCheck,
    ChainReport,
    ChainRow,
    check_expected_head,
    read_chain,
)

#: claimed and recomputed epsilons must agree this closely (relative)
RELATIVE_TOLERANCE = 1e-6


@dataclass
class AuditResult:
    chain: ChainReport
    epsilons: list[tuple[int, float | None]] = field(default_factory=list)  # (seq, recomputed)
    failure: str | None = None
    anchor: AnchorCheck | None = None  # set when an expected head was given and checked
    seeded: list[tuple[int, Any]] = field(default_factory=list)  # (seq, round): seeded noise
    unrecorded: int = 0  # rows older than the noise_seeded field (row version < 2)

    @property
    def ok(self) -> bool:
        """The ledger is intact and every claim follows (integrity, not privacy)."""
        return self.chain.ok and self.failure is None

    @property
    def private(self) -> bool:
        """Intact, and no round's noise came from a replayable stream."""
        return self.ok and not self.seeded

    @property
    def first_failure(self) -> str | None:
        return self.chain.failure or self.failure

    def not_private_reasons(self) -> list[str]:
        """One line per round whose epsilon is no guarantee, oldest first."""
        return [
            f"round {number}: DP noise was seeded (a simulation/replay); its epsilon is not a "
            "privacy guarantee"
            for _, number in self.seeded
        ]


def noise_seeded(entry: dict[str, Any]) -> bool | None:
    """The row's ``noise_seeded`` flag; None when the row predates the field.

    Rows written before the field existed read as not seeded (the flag's default);
    a value other than true or false is a malformed row.
    """
    if "noise_seeded" not in entry:
        return None
    value = entry["noise_seeded"]
    if not isinstance(value, bool):
        raise ValueError(f"noise_seeded must be true or false, not {value!r}")
    return value


def _claimed(entry: dict[str, Any]) -> float | None:
    value = entry.get("privacy", {}).get("epsilon")
    if value is None:
        return None
    return math.inf if value == "inf" else float(value)


def _agrees(claimed: float | None, recomputed: float | None) -> bool:
    if claimed is None or recomputed is None:
        return claimed is None and recomputed is None
    if math.isinf(claimed) or math.isinf(recomputed):
        return claimed == recomputed
    return abs(claimed - recomputed) <= RELATIVE_TOLERANCE * max(1.0, abs(recomputed))


class EpsilonReplay:
    """Re-derives the cumulative epsilon row by row from the recorded parameters."""

    def __init__(self) -> None:
        self._accountant: Any = None
        self._distributed: dict[str, Any] | None = None
        self._ddg: DiscreteGaussianAccountant | None = None
        self._current: float | None = None
        self._latest_reports: dict[str, float] = {}  # identity hash -> recomputed epsilon
        self._cache: dict[str, float] = {}

    def _record_level(self, dp: dict[str, Any]) -> float | None:
        """Each branch's stated DP-SGD history, recomputed with Opacus's accountant;
        the release's epsilon is the worst branch's latest (parallel composition)."""
        for identity, report in dp.get("client_reports", {}).items():
            recomputed = self._opacus_epsilon(report)
            claimed = float(report["epsilon"])
            if not _agrees(claimed, recomputed):
                raise ValueError(
                    f"branch {identity[:12]}… claims record-level epsilon {claimed} but its "
                    f"DP-SGD history gives {recomputed}"
                )
            self._latest_reports[identity] = recomputed
        return max(self._latest_reports.values()) if self._latest_reports else None

    def _opacus_epsilon(self, report: dict[str, Any]) -> float:
        key = json.dumps([report["accountant"], report["delta"], report["history"]])
        if key not in self._cache:
            history = [(float(z), float(q), int(n)) for z, q, n in report["history"]]
            accountant = RecordLevelAccountant(
                str(report["accountant"]), float(report["delta"]), history
            )
            self._cache[key] = accountant.epsilon()
        return self._cache[key]

    def feed(self, entry: dict[str, Any]) -> float | None:
        dp = entry.get("dp")
        if dp and dp.get("unit") == "record":
            return self._record_level(dp)
        if entry.get("status") != "complete" or not dp:
            return self._current
        mechanism = dp.get("mechanism")
        if mechanism == "central" and dp.get("unit") == "client":
            z, q = float(dp["noise_multiplier"]), float(dp["sample_rate"])
            if self._accountant is None:
                self._accountant = GaussianAccountant(float(dp["delta"]), str(dp["accountant"]))
            self._accountant.step(z, q)  # an adaptive round's two releases compose to z
            self._current = self._accountant.epsilon()
        elif mechanism == "distributed":
            from secagg.dp.distributed import DistributedDiscreteGaussian

            params = {k: dp[k] for k in ("clip", "noise_multiplier")} | dict(dp["ddg"])
            if self._distributed is not None and params != self._distributed:
                raise ValueError("the distributed mechanism's parameters changed mid-ledger")
            self._distributed = params
            if self._ddg is None:
                ddg = DistributedDiscreteGaussian(
                    dimension=int(params["dimension"]),
                    clip=float(params["clip"]),
                    noise_multiplier=float(params["noise_multiplier"]),
                    expected_clients=int(params["expected_clients"]),
                    bits=int(params["bits"]),
                    scale=float(params["scale"]),
                )
                self._ddg = DiscreteGaussianAccountant(
                    ddg, sample_rate=float(dp["sample_rate"]), delta=float(dp["delta"])
                )
            self._ddg.step(int(dp["noise_contributors"]))
            self._current = self._ddg.epsilon()
        return self._current


def verify_ledger(
    path: str | Path, public_key: bytes | None = None, expect_head: str | None = None
) -> AuditResult:
    """Check the chain (and, given ``expect_head``, that it still holds that head), then
    replay every epsilon claim and collect the rounds with seeded noise; name the first
    failure. ``expect_head`` is ``SEQ:HASH`` or ``HASH`` (a malformed one raises
    :class:`~secagg.errors.ConfigurationError`)."""
    chain = read_chain(path, public_key)
    result = AuditResult(chain)
    if expect_head is not None and chain.ok:
        result.anchor = check_expected_head(chain, expect_head)
        if result.anchor.failure is not None:
            result.failure = result.anchor.failure
            return result
    replay = EpsilonReplay()
    rows: list[ChainRow] = chain.rows
    for row in rows:
        try:
            seeded = noise_seeded(row.entry)
            recomputed = replay.feed(row.entry)
        except (KeyError, TypeError, ValueError) as exc:
            result.failure = f"row {row.seq}: its privacy claims do not replay: {exc}"
            return result
        if seeded is None:
            result.unrecorded += 1
        elif seeded:
            result.seeded.append((row.seq, row.entry.get("round", row.seq)))
        result.epsilons.append((row.seq, recomputed))
        claimed = _claimed(row.entry)
        if not _agrees(claimed, recomputed):
            result.failure = (
                f"row {row.seq} (round {row.entry.get('round')}): claims epsilon "
                f"{claimed} but its recorded mechanism gives {recomputed}"
            )
            return result
    return result
