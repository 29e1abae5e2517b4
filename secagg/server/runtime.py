"""The federation server: FedAvg rounds driving the masking protocol over a transport.

Theory of operation
-------------------
One round (:meth:`FederationServer.run_round`):

1. **Sample** clients among those connected: Poisson with rate q (each joins
   independently; the DP analysis assumes it) or a fixed count. The draw comes
   from the OS CSPRNG, or from a keyed stream derived from ``config.seed`` in
   tests that must replay a federation.
2. **Record** the round as ``running`` in the store, then send each participant
   a ``ROUND_START``: its party index, the fixed-point scale, the clip and the
   global model.
3. **Drive the protocol**: the masking protocol's :class:`~secagg.protocol.Server`
   state machine consumes the clients' protocol messages as they arrive and its
   replies go out through the transport. The state machine has no clock; this
   loop is its clock: a phase that sees no progress for
   ``deadlines.phase_seconds`` (``training_seconds`` for the first phase, which
   includes local training) is closed, and whoever has not answered has
   dropped out. Malformed or out-of-phase messages are refused by the state
   machine without changing it, logged, and the round goes on.
4. **Release**: the unmasked sum is decoded, central DP noise of std ``z * C``
   added (from the CSPRNG), divided by the expected number of clients ``q * N``
   (the fixed DP denominator), scaled by the server learning rate and applied to
   the global model. The accountant is charged one Poisson-subsampled Gaussian.
   With ``dp.mechanism = "distributed"`` the server adds nothing: each client
   rotated, clipped, scaled and rounded its update and added its discrete
   Gaussian share before masking (Kairouz et al. 2021), so the unmasked sum is
   already noised; the server only decodes it, and the epsilon counts the
   honest shares really in each sum (survivors minus assumed colluders).
5. **Record** the round ``complete`` with its checkpoint in one transaction (or
   ``aborted`` with the reason, leaving the model as it was) and tell the
   participants how it ended.

A round that cannot reach its threshold aborts cleanly and the next one starts.
On start-up the server recovers from its store: a round left ``running`` by a
crash is marked aborted and the federation continues from the last checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from secagg.aggregation.masking import largest_safe_scale
from secagg.crypto.stream import KeyedStream
from secagg.dp.accounting import PrivacyAccountant
from secagg.dp.distributed import DistributedDiscreteGaussian, honest_noise_contributors
from secagg.dp.noise import gaussian
from secagg.encoding import FixedPoint
from secagg.errors import ConfigurationError, ProtocolError, SecAggError
from secagg.federation.config import FederationConfig
from secagg.federation.store import ServerStore
from secagg.federation.wire import Envelope, Kind, model_bytes
from secagg.ledger.chain import Ledger
from secagg.protocol import RoundConfig, Server, ServerPhase, decode, encode
from secagg.transport.inprocess import ServerEndpoint

log = logging.getLogger("secagg.server")


@dataclass(frozen=True)
class RoundResult:
    """What one round did, as recorded in the store."""

    number: int
    status: str  # "complete" | "aborted"
    participants: tuple[str, ...]
    contributed: tuple[str, ...]
    reason: str | None
    epsilon: float | None


class FederationServer:
    """Runs the configured federation's rounds over one transport."""

    def __init__(
        self,
        config: FederationConfig,
        transport: ServerEndpoint,
        store: ServerStore,
        initial_model: np.ndarray | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        observer: Callable[[RoundResult, np.ndarray], None] | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        """``observer(result, model)`` is called after every round (complete or
        aborted) with the global model as it then stands: progress bars,
        evaluation in a simulator, monitoring."""
        self._observer = observer
        self.ledger = ledger  # one signed row per round: secagg audit verify checks it
        self._round_info: dict[str, Any] = {}
        # latest record-level report per branch (by identity hash), also after a restart
        self._client_reports: dict[str, dict[str, Any]] = {}
        if ledger is not None:
            for entry in ledger.entries():
                self._client_reports.update((entry.get("dp") or {}).get("client_reports", {}))
        self.config = config
        self.transport = transport
        self.store = store
        self._clock = clock
        recovery = store.recover()
        for number in recovery.aborted_on_restart:
            log.warning("round %d was running when the server stopped: aborted", number)
        if recovery.model is not None:
            self.model = recovery.model
        elif initial_model is not None:
            self.model = np.asarray(initial_model, dtype=np.float64).copy()
        else:
            self.model = np.zeros(config.dimension)
        self._velocity = np.zeros(config.dimension)  # FedAvgM; restarts at zero after a crash
        if self.model.shape != (config.dimension,):
            raise ConfigurationError(f"the model must have {config.dimension} parameters")
        self.next_round = recovery.next_round
        self._last_epsilon: float | None = None  # the latest completed round's claim
        self.accountant = (
            PrivacyAccountant(config.dp.delta, config.dp.accountant, unit=config.dp.unit)
            if config.dp is not None and config.dp.unit == "client"
            else None
        )
        self._distributed = config.dp is not None and config.dp.mechanism == "distributed"
        if self._distributed:
            self.accountant = None  # the distributed DG has its own accounting
        if ledger is not None:
            self._backfill_ledger()
        # from the completed rounds: the accountant's charges, the honest noise shares
        # of each (distributed DP) and the latest epsilon claim
        self._noise_contributors: list[int] = []
        for row in store.rounds():
            if row["status"] != "complete":
                continue
            if self.accountant is not None:
                self.accountant.step(config.dp.noise_multiplier, config.sample_rate)  # type: ignore[union-attr]
            if "noise_contributors" in row["report"]:
                self._noise_contributors.append(int(row["report"]["noise_contributors"]))
            self._last_epsilon = row["report"].get("epsilon")
        self._noise = self._stream(b"noise")
        self._sampler = self._stream(b"sampling")

    def _stream(self, label: bytes) -> KeyedStream:
        if self.config.seed is None:
            return KeyedStream()
        digest = hashlib.sha256(b"secagg/v1/test-seed/" + label + str(self.config.seed).encode())
        return KeyedStream(digest.digest()[:16])

    # --- the federation ------------------------------------------------------

    def completed_rounds(self) -> int:
        return sum(1 for row in self.store.rounds() if row["status"] == "complete")

    def run(
        self,
        wait_for_clients: float = 30.0,
        *,
        max_consecutive_aborts: int = 5,
        max_attempts: int | None = None,
    ) -> list[RoundResult]:
        """Run rounds until ``config.rounds`` have completed (aborted rounds do not count).

        ``max_attempts`` caps the rounds attempted by this call, aborted ones
        included (a simulator whose clients budgeted their DP-SGD for exactly
        that many rounds sets it).

        Stops early, returning what happened, after ``max_consecutive_aborts``
        aborted rounds in a row: a federation that cannot reach its threshold
        needs an operator, not an endless loop.
        """
        expected = set(self.config.clients)
        if self.config.backend.key_holder is not None:
            expected.add(self.config.backend.key_holder)
        self._wait_for(expected, wait_for_clients)
        results: list[RoundResult] = []
        aborted_in_a_row = 0
        while self.completed_rounds() < self.config.rounds:
            if max_attempts is not None and len(results) >= max_attempts:
                break
            result = self.run_round()
            results.append(result)
            if self._observer is not None:
                self._observer(result, self.model.copy())
            aborted_in_a_row = aborted_in_a_row + 1 if result.status == "aborted" else 0
            if aborted_in_a_row >= max_consecutive_aborts:
                log.error("%d rounds aborted in a row: stopping", aborted_in_a_row)
                break
        return results

    def _wait_for(self, names: set[str], timeout: float) -> None:
        end = self._clock() + timeout
        while not names <= self.transport.connected() and self._clock() < end:
            time.sleep(0.01)

    def sample(self) -> list[str]:
        """This round's participants among the connected clients (sorted by name)."""
        available = sorted(set(self.config.clients) & self.transport.connected())
        sampling = self.config.sampling
        if sampling.kind == "poisson":
            draws = self._sampler.uniform(len(self.config.clients))
            chosen = [
                name
                for name, u in zip(self.config.clients, draws, strict=True)
                if u < sampling.rate and name in available
            ]
        else:
            rng = (
                secrets.SystemRandom() if self.config.seed is None else _StreamChoice(self._sampler)
            )
            chosen = rng.sample(available, min(sampling.count or 0, len(available)))
        return sorted(chosen)

    def run_round(self) -> RoundResult:
        number = self.next_round
        self.next_round += 1
        self._round_info = {"backend": {"name": self.config.backend.name},
                            "started_at": time.time()}  # fmt: skip
        participants = self.sample()
        self.store.begin_round(number, participants)
        log.info("round %d: %d participants", number, len(participants))
        if len(participants) < 2:
            return self._abort(number, participants, "fewer than 2 clients sampled or connected")
        try:
            if self.config.backend.name == "plain":
                total, contributed = self._plain_sum(number, participants)
            elif self.config.backend.name == "ckks":
                total, contributed = self._ckks_sum(number, participants)
            else:
                total, contributed = self._secure_sum(number, participants)
        except SecAggError as exc:
            return self._abort(number, participants, str(exc))
        report: dict[str, Any] = {}
        if self._distributed:
            assumed_corrupt = math.floor(self.config.backend.corrupt_fraction * len(participants))
            honest = honest_noise_contributors(len(contributed), assumed_corrupt)
            self._noise_contributors.append(honest)
            report["noise_contributors"] = honest
        epsilon = self._apply(total, len(contributed))
        names = tuple(participants[p] for p in contributed)
        report = {"contributed": list(names), "epsilon": epsilon, **report}
        self.store.complete_round(number, report, self.model)
        result = RoundResult(number, "complete", tuple(participants), names, None, epsilon)
        self._record(result, report.get("noise_contributors"))
        self._broadcast(participants, Envelope(Kind.ROUND_END, number, {"status": "complete"}))
        return result

    def _abort(self, number: int, participants: list[str], reason: str) -> RoundResult:
        log.warning("round %d aborted: %s", number, reason)
        self.store.abort_round(number, {"reason": reason})
        result = RoundResult(number, "aborted", tuple(participants), (), reason, None)
        self._record(result, None)
        self._broadcast(
            participants, Envelope(Kind.ROUND_END, number, {"status": "aborted", "reason": reason})
        )
        return result

    # --- the ledger --------------------------------------------------------------

    def _backfill_ledger(self) -> None:
        """Record finished rounds the ledger lacks: a round the crash interrupted
        (aborted on restart), or one whose row was lost between the store's commit and
        the ledger's. Rebuilt from the store: marked ``reconstructed``."""
        assert self.ledger is not None
        recorded = {entry.get("round") for entry in self.ledger.entries()}
        epsilon: float | None = None
        for row in self.store.rounds():
            report = row["report"] or {}
            if row["status"] == "complete":
                epsilon = report.get("epsilon", epsilon)
            if row["number"] in recorded or row["status"] not in ("complete", "aborted"):
                continue
            self._round_info = {"backend": {"name": self.config.backend.name},
                                "started_at": row["started_at"], "reconstructed": True}  # fmt: skip
            contributed = tuple(report.get("contributed", ()))
            result = RoundResult(
                row["number"], row["status"], tuple(row["participants"]), contributed,
                report.get("reason"), epsilon if row["status"] == "complete" else None,
            )  # fmt: skip
            self._last_epsilon = epsilon if row["status"] == "aborted" else self._last_epsilon
            self._record(result, report.get("noise_contributors"),
                         model_digest=self.store.checkpoint_digest(row["number"]))  # fmt: skip
            log.warning("ledger: round %d was missing and has been reconstructed from the store",
                        row["number"])  # fmt: skip

    def _take_privacy(self, name: str, header: dict[str, Any]) -> None:
        """Keep a client's record-level privacy report (its accountant's inputs).

        The server cannot check that the branch really ran DP-SGD; it records what
        the branch states, so an auditor can recompute the epsilon from it."""
        report = header.get("privacy")
        if report is None:
            return
        try:
            history = [[float(z), float(q), int(n)] for z, q, n in report["history"]]
            clean = {
                "accountant": str(report["accountant"]),
                "delta": float(report["delta"]),
                "history": history,
                "epsilon": float(report["epsilon"]),
                "max_grad_norm": float(report.get("max_grad_norm", math.nan)),
            }
            if clean["accountant"] not in ("prv", "rdp") or not 0 < clean["delta"] < 1:
                raise ValueError("unknown accountant or delta out of range")
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("ignored a malformed privacy report from %s: %s", name, exc)
            return
        if math.isnan(clean["max_grad_norm"]):
            del clean["max_grad_norm"]
        if self.ledger is not None:
            self._client_reports[self.ledger.key.identity_hash(name)] = clean
        self._round_info.setdefault("client_reports", {})[name] = clean

    def _record(
        self,
        result: RoundResult,
        noise_contributors: int | None,
        *,
        model_digest: str | None = None,
    ) -> None:
        """Append the round's signed ledger row (after the store has committed it)."""
        if self.ledger is None:
            return
        cfg = self.config
        dp: dict[str, Any] | None = None
        if cfg.dp is not None:
            dp = {
                "unit": cfg.dp.unit,
                "mechanism": cfg.dp.mechanism,
                "clip": cfg.dp.clip,
                "noise_multiplier": cfg.dp.noise_multiplier if cfg.dp.unit == "client" else None,
                "noise_std": cfg.dp.noise_multiplier * cfg.dp.clip
                if cfg.dp.unit == "client" else None,
                "sample_rate": cfg.sample_rate,
                "accountant": cfg.dp.accountant if cfg.dp.mechanism == "central"
                else ("ddg-kls21" if cfg.dp.mechanism == "distributed" else "in-clients"),
                "delta": cfg.dp.delta,
            }  # fmt: skip
            if cfg.dp.mechanism == "distributed":
                ddg = self._ddg()
                dp["ddg"] = {"dimension": ddg.dimension, "expected_clients": ddg.expected_clients,
                             "bits": ddg.bits, "scale": ddg.scale,
                             "local_sigma": ddg.local_sigma}  # fmt: skip
                dp["noise_contributors"] = noise_contributors
        last = self._last_epsilon if result.status == "aborted" else result.epsilon
        self._last_epsilon = last
        if dp is not None and cfg.dp is not None and cfg.dp.unit == "record":
            key_hash = self.ledger.key.identity_hash
            reports = self._round_info.get("client_reports", {})
            dp["client_reports"] = {key_hash(n): r for n, r in sorted(reports.items())}
            # the release's record-level epsilon: the worst branch's cumulative (each
            # branch's records are its own, so branches compose in parallel)
            latest = [r["epsilon"] for r in self._client_reports.values()]
            last = max(latest) if latest else None
        key = self.ledger.key
        entry = {
            "version": 1,
            "federation": cfg.name,
            "round": result.number,
            "status": result.status,
            "reason": result.reason,
            "started_at": self._round_info.get("started_at"),
            "finished_at": time.time(),
            "backend": self._round_info.get("backend", {"name": cfg.backend.name}),
            "participants": {
                "count": len(result.participants),
                "identity_hashes": sorted(key.identity_hash(n) for n in result.participants),
            },
            "contributed": len(result.contributed),
            "dropouts": self._round_info.get("dropouts", {}),
            "dp": dp,
            "privacy": {"epsilon": last, "delta": cfg.dp.delta if cfg.dp is not None else None},
            "model_sha256": model_digest or hashlib.sha256(model_bytes(self.model)).hexdigest(),
        }
        if self._round_info.get("reconstructed"):
            entry["reconstructed"] = True
        self.ledger.append(entry)

    # --- one secure sum --------------------------------------------------------

    def _secure_sum(self, number: int, participants: list[str]) -> tuple[np.ndarray, list[int]]:
        cfg = self.config
        m = len(participants)
        bound = cfg.backend.value_bound
        scale = largest_safe_scale(m, bound, cfg.backend.bits)
        fixed = FixedPoint(scale, cfg.backend.bits)
        ddg, rotation_seed = None, b""
        if self._distributed:  # the clients mask the padded, rotated, noised vector
            ddg = self._ddg()
            rotation_seed = (
                self._noise.words(2).tobytes() if cfg.seed is not None else os.urandom(16)
            )
        round_config = RoundConfig.create(
            m,
            cfg.dimension if ddg is None else ddg.padded,
            bits=cfg.backend.bits,
            graph="complete" if cfg.backend.name == "secagg" else "harary",
            dropout_fraction=cfg.backend.dropout_fraction,
            corrupt_fraction=cfg.backend.corrupt_fraction,
        )
        server = Server(round_config)
        party_of = {name: p for p, name in enumerate(participants)}
        start: dict[str, Any] = {
            "backend": cfg.backend.name,
            "scale": scale,
            "bits": cfg.backend.bits,
            "value_bound": bound,
            "clip": cfg.dp.clip if cfg.dp is not None else None,
            "dimension": cfg.dimension,
        }
        if ddg is not None:  # each client adds its noise share; the server adds none
            start["ddg"] = {
                "clip": ddg.clip,
                "noise_multiplier": ddg.noise_multiplier,
                "expected_clients": ddg.expected_clients,
                "scale": ddg.scale,
                "rotation_seed": rotation_seed.hex(),
            }
        body = model_bytes(self.model)
        for name, party in party_of.items():
            header = {**start, "party": party}
            self._send(name, Envelope(Kind.ROUND_START, number, header, body))
        self._send_protocol(number, participants, server.start())
        phase, last_progress = server.phase, self._clock()
        round_end = self._clock() + cfg.deadlines.round_seconds
        while server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            now = self._clock()
            if now > round_end:
                server.abort("round deadline passed")
                break
            limit = (
                cfg.deadlines.first_phase_seconds
                if server.phase == ServerPhase.ADVERTISE_KEYS
                else cfg.deadlines.phase_seconds
            )
            wait = max(0.0, last_progress + limit - now)
            item = self.transport.receive(timeout=min(wait, 0.5))
            if item is None:
                silent = {participants[p] for p in server.waiting_for}
                if self._clock() - last_progress >= limit:
                    log.info("round %d: deadline of %s passed", number, server.phase.value)
                elif silent and not silent & self.transport.connected():
                    log.info("round %d: everyone silent in %s has disconnected",
                             number, server.phase.value)  # fmt: skip
                else:
                    continue
                self._send_protocol(number, participants, server.close_phase())
                phase, last_progress = server.phase, self._clock()
                continue
            name, payload = item
            replies = self._on_message(number, server, party_of, name, payload)
            if replies is None:
                continue
            self._send_protocol(number, participants, replies)
            if server.phase != phase:
                phase, last_progress = server.phase, self._clock()
        self._round_info["backend"] = {
            "name": cfg.backend.name, "graph": round_config.graph.name.lower(),
            "k": round_config.degree, "t": round_config.threshold, "bits": cfg.backend.bits,
            "vector_length": round_config.vector_length,
            "scale": None if ddg is not None else scale,
        }  # fmt: skip
        dropped: dict[str, int] = {}
        before = m
        for phase_name, responders in server.report.responders.items():
            dropped[phase_name] = before - len(responders)
            before = len(responders)
        self._round_info["dropouts"] = dropped
        if server.phase != ServerPhase.COMPLETE:
            raise _Aborted(server.report.abort_reason or "round did not complete")
        if ddg is not None:
            return ddg.decode(server.result(), rotation_seed), list(server.report.included)
        return fixed.decode(server.result()), list(server.report.included)

    def _ddg(self) -> DistributedDiscreteGaussian:
        """This federation's distributed discrete Gaussian (the same every round)."""
        cfg = self.config
        assert cfg.dp is not None
        return DistributedDiscreteGaussian(
            dimension=cfg.dimension,
            clip=cfg.dp.clip,
            noise_multiplier=cfg.dp.noise_multiplier,
            expected_clients=max(1, round(cfg.expected_clients)),
            bits=cfg.backend.bits,
        )

    def distributed_epsilon(self) -> float:
        """Epsilon of the distributed DG so far: every completed round composed at the
        fewest honest noise shares any round had (fewer shares, less noise)."""
        if not self._noise_contributors:
            return 0.0
        assert self.config.dp is not None
        return self._ddg().epsilon(
            noise_contributors=min(self._noise_contributors),
            sample_rate=self.config.sample_rate,
            rounds=len(self._noise_contributors),
            delta=self.config.dp.delta,
        )

    # --- CKKS: the server adds, the key holder decrypts (and noises) ----------

    def _ckks_design(self) -> dict[str, Any]:
        bound = self.config.backend.value_bound
        precision = self.config.backend.precision or 1e-6 * bound
        return {"num_clients": len(self.config.clients), "value_bound": bound,
                "precision": precision}  # fmt: skip

    def _ask_key_holder(self, request: Envelope, expect: Kind) -> Envelope:
        holder = self.config.backend.key_holder
        assert holder is not None
        self._send(holder, request)
        deadline = self._clock() + self.config.deadlines.phase_seconds
        while self._clock() < deadline:
            item = self.transport.receive(timeout=min(0.5, max(0.0, deadline - self._clock())))
            if item is None:
                continue
            name, payload = item
            try:
                reply = Envelope.decode(payload)
            except SecAggError as exc:
                log.warning("refused a message from %s: %s", name, exc)
                continue
            if name == holder and reply.kind == expect and reply.round == request.round:
                return reply
            log.warning("ignored a %s message from %s while waiting for the key holder",
                        reply.kind.name, name)  # fmt: skip
        raise _Aborted("the key holder did not answer in time")

    def _ckks_sum(self, number: int, participants: list[str]) -> tuple[np.ndarray, list[int]]:
        """Clients encrypt to the key holder's key; the server adds; the key holder decrypts."""
        from secagg.aggregation.ckks import frame_chunks, unframe_chunks
        from secagg.he.keys import PublicAggregationContext
        from secagg.he.vectors import EncryptedSum, chunk_count
        from secagg.server.keyholder import design_point

        cfg = self.config
        design = self._ckks_design()
        key = self._ask_key_holder(Envelope(Kind.KEY_REQUEST, number, design), Kind.KEY_PUBLIC)
        params = design_point(design)
        self._round_info["backend"] = {"name": "ckks", **{k: v for k, v in design.items()},
                                       "parameters": repr(params)}  # fmt: skip
        fingerprint = bytes.fromhex(str(key.header.get("fingerprint", "")))
        context = PublicAggregationContext.from_bytes(
            key.body, params, expected_fingerprint=fingerprint
        )
        total = EncryptedSum(context, cfg.dimension)
        chunks = chunk_count(cfg.dimension, params.slots)
        party_of = {name: p for p, name in enumerate(participants)}
        model = model_bytes(self.model)
        start = {"backend": "ckks", "dimension": cfg.dimension, **design,
                 "fingerprint": fingerprint.hex(), "model_bytes": len(model),
                 "value_bound": cfg.backend.value_bound,
                 "clip": cfg.dp.clip if cfg.dp is not None else None}  # fmt: skip
        for name, party in party_of.items():
            header = {**start, "party": party}
            self._send(name, Envelope(Kind.ROUND_START, number, header, model + key.body))
        received: set[int] = set()
        deadline = self._clock() + cfg.deadlines.first_phase_seconds
        while len(received) < len(participants) and self._clock() < deadline:
            item = self.transport.receive(timeout=min(0.5, max(0.0, deadline - self._clock())))
            if item is None:
                pending = {n for n, p in party_of.items() if p not in received}
                if not pending & self.transport.connected():
                    break  # everyone still missing has disconnected: dropouts
                continue
            name, payload = item
            try:
                envelope = Envelope.decode(payload)
                if envelope.kind != Kind.PROTOCOL or envelope.round != number:
                    raise ProtocolError(f"expected a contribution to round {number}")
                if name not in party_of or party_of[name] in received:
                    raise ProtocolError("not a participant, or a second contribution")
                total.add(unframe_chunks(envelope.body, chunks))  # all or nothing
                received.add(party_of[name])
                self._take_privacy(name, envelope.header)
            except SecAggError as exc:
                log.warning("round %d: refused a message from %s: %s", number, name, exc)
        self._round_info["dropouts"] = {"contribution": len(participants) - len(received)}
        if len(received) < 2:
            raise _Aborted(f"{len(received)} contribution(s): at least 2 are needed to decrypt")
        client_level = cfg.dp is not None and cfg.dp.unit == "client"
        std = cfg.dp.noise_multiplier * cfg.dp.clip if client_level else 0.0  # type: ignore[union-attr]
        request = Envelope(Kind.DECRYPT, number, {"dimension": cfg.dimension, "noise_std": std},
                           frame_chunks(total.to_chunks()))  # fmt: skip
        reply = self._ask_key_holder(request, Kind.DECRYPTED)
        from secagg.federation.wire import model_from_bytes

        return model_from_bytes(reply.body, cfg.dimension), sorted(received)

    def _plain_sum(self, number: int, participants: list[str]) -> tuple[np.ndarray, list[int]]:
        """The baseline over the network: each client sends its update in the clear."""
        from secagg.aggregation.plain import PlainRound

        cfg = self.config
        aggregator = PlainRound(len(participants), cfg.dimension)
        party_of = {name: p for p, name in enumerate(participants)}
        start = {
            "backend": "plain",
            "dimension": cfg.dimension,
            "value_bound": cfg.backend.value_bound,
            "clip": cfg.dp.clip if cfg.dp is not None else None,
        }
        body = model_bytes(self.model)
        for name, party in party_of.items():
            self._send(name, Envelope(Kind.ROUND_START, number, {**start, "party": party}, body))
        received: set[int] = set()
        deadline = self._clock() + cfg.deadlines.first_phase_seconds
        while len(received) < len(participants) and self._clock() < deadline:
            item = self.transport.receive(timeout=min(0.5, max(0.0, deadline - self._clock())))
            if item is None:
                pending = {n for n, p in party_of.items() if p not in received}
                if not pending & self.transport.connected():
                    break  # everyone still missing has disconnected: dropouts
                continue
            name, payload = item
            try:
                envelope = Envelope.decode(payload)
                if envelope.kind != Kind.PROTOCOL or envelope.round != number:
                    raise ProtocolError(f"expected a contribution to round {number}")
                if name not in party_of:
                    raise ProtocolError("client is not a participant of this round")
                aggregator.receive(party_of[name], envelope.body)
                received.add(party_of[name])
                self._take_privacy(name, envelope.header)
            except SecAggError as exc:
                log.warning("round %d: refused a message from %s: %s", number, name, exc)
        self._round_info["dropouts"] = {"contribution": len(participants) - len(received)}
        if not received:
            raise _Aborted("no client contributed")
        total, report = aggregator.finish()
        return total, list(report.contributed)

    def _on_message(
        self, number: int, server: Server, party_of: dict[str, int], name: str, payload: bytes
    ) -> list[Any] | None:
        try:
            envelope = Envelope.decode(payload)
            if envelope.kind != Kind.PROTOCOL or envelope.round != number:
                raise ProtocolError(f"expected a protocol message of round {number}")
            if name not in party_of:
                raise ProtocolError("client is not a participant of this round")
            message = decode(envelope.body)
            if getattr(message, "sender", None) != party_of[name]:
                raise ProtocolError("message claims another sender")
            replies = server.handle(message)
            self._take_privacy(name, envelope.header)
            return replies
        except SecAggError as exc:
            log.warning("round %d: refused a message from %s: %s", number, name, exc)
            return None

    def _send_protocol(self, number: int, participants: list[str], messages: list[Any]) -> None:
        for message in messages:
            name = participants[message.recipient]
            self._send(name, Envelope(Kind.PROTOCOL, number, {}, encode(message)))

    def _send(self, name: str, envelope: Envelope) -> None:
        try:
            self.transport.send(name, envelope.encode())
        except ConnectionError as exc:  # gone: the protocol's deadline makes it a dropout
            log.info("could not reach %s: %s", name, exc)

    def _broadcast(self, participants: list[str], envelope: Envelope) -> None:
        for name in participants:
            self._send(name, envelope)

    # --- DP and the model update ---------------------------------------------

    def _apply(self, total: np.ndarray, contributors: int) -> float | None:
        """Noise (client-level DP), average and apply; returns the epsilon spent so far.

        With client-level DP the mean divides by the *expected* count q * N, a
        public constant (the sensitivity analysis needs it); otherwise, record-level
        DP included, by the number of contributors (plain FedAvg).
        """
        cfg = self.config
        client_level = cfg.dp is not None and cfg.dp.unit == "client"
        denominator = cfg.expected_clients if client_level else contributors
        epsilon = None
        if self._distributed:
            epsilon = self.distributed_epsilon()
        elif cfg.dp is not None and cfg.dp.unit == "client":
            if cfg.backend.name != "ckks":  # with CKKS the key holder has added it
                std = cfg.dp.noise_multiplier * cfg.dp.clip
                total = total + gaussian(std, total.size, self._noise)
            if self.accountant is not None and cfg.dp.noise_multiplier > 0:
                self.accountant.step(cfg.dp.noise_multiplier, cfg.sample_rate)
                epsilon = self.accountant.epsilon()
            elif cfg.dp.noise_multiplier == 0:
                epsilon = math.inf
        if cfg.server_momentum > 0:  # FedAvgM (Hsu et al. 2019): post-processing, no privacy cost
            self._velocity = cfg.server_momentum * self._velocity + total / denominator
            self.model = self.model + cfg.server_learning_rate * self._velocity
        else:
            self.model = self.model + cfg.server_learning_rate * total / denominator
        return epsilon


class _Aborted(SecAggError):
    """The protocol round ended without a sum."""


class _StreamChoice:
    """``random.sample`` driven by a keyed stream (tests that replay a federation)."""

    def __init__(self, stream: KeyedStream) -> None:
        self._stream = stream

    def sample(self, population: list[str], k: int) -> list[str]:
        pool = list(population)
        for i in range(k):  # partial Fisher-Yates with unbiased integers
            j = i + int(self._stream.integers(len(pool) - i, 1)[0])
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]
