"""One SecAgg+ round of this project, instrumented the same way as ``flower_round.py``.

Run by ``run.py`` in a subprocess (one round per process); writes one JSON
object. What runs: the sans-I/O :class:`~secagg.protocol.Client` and
:class:`~secagg.protocol.Server` objects that every transport drives, in memory
and in turn, like :func:`secagg.protocol.simulation.run_round`, with every
message through the binary wire codec (``encode`` then ``decode``) in both
directions. k and t are given explicitly (research mode: the clients' policy
skips its own k/t check, as ``run_round`` does when the caller picks them).

The clients hold the same float32 updates as Flower's clients for the seed and
encode them with :class:`~secagg.encoding.FixedPoint` (scale 2^18, 32 bits:
Flower's quantisation step of 16 / 2^22) when the round asks for the masked
input, like Flower's clients whose training output arrives in that stage; the
encoding is client time. The server decodes the sum and divides by the number
of survivors (server time). The same clients as in Flower's round vanish after
sharing their keys and never send their masked input. A round whose random
graph leaves too few live share holders aborts (that is the protocol's job);
the driver then reruns with the next graph seed, like the Flower driver.

Stages carry Flower's names: setup (RoundSetup -> AdvertiseKeys), share_keys
(KeyDirectory -> ShareKeys), collect_masked_vectors (ShareDelivery -> encode ->
MaskedInput), unmask (UnmaskingRequest -> UnmaskingShares, then the server
removes the masks). The server's work on a stage's replies, including the
phase close they trigger, is booked to that stage.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    OUR_SCALE_BITS,
    STAGES,
    Cell,
    Clock,
    StageRecord,
    client_updates,
    dropped_clients,
    round_main,
    summarise,
)

import secagg
from secagg.encoding import FixedPoint
from secagg.protocol import (
    Client,
    ClientPolicy,
    RoundConfig,
    Server,
    ServerPhase,
    decode,
    encode,
)
from secagg.protocol.messages import (
    KeyDirectory,
    Message,
    RoundAbort,
    RoundSetup,
    ServerMessage,
    ShareDelivery,
    UnmaskingRequest,
)

_STAGE_OF: dict[type, str] = {
    RoundSetup: "setup",
    KeyDirectory: "share_keys",
    ShareDelivery: "collect_masked_vectors",
    UnmaskingRequest: "unmask",
}


class _Round:
    """One attempt: the server, the clients, and the clocks."""

    def __init__(self, cell: Cell, updates: np.ndarray, dropped: list[int], attempt_seed: bytes):
        self.cell = cell
        self.updates = updates
        self.dropped = set(dropped)
        self.encoder = FixedPoint(scale=float(2**OUR_SCALE_BITS), bits=32)
        self.stages = {name: StageRecord(name) for name in STAGES}
        self.client_cpu = [0.0] * cell.n
        self.bytes_up = [0] * cell.n
        self.bytes_down = [0] * cell.n
        #: each survivor's encoded words, kept (outside the timing) for the exact check
        self.encoded: dict[int, np.ndarray] = {}
        config = RoundConfig.create(
            cell.n,
            cell.d,
            bits=32,
            graph="complete" if cell.complete else "harary",
            k=None if cell.complete else cell.k,
            threshold=cell.t,
            dropout_fraction=cell.dropout,
        )
        if config.degree != cell.k or config.threshold != cell.t:
            raise RuntimeError(f"asked for k={cell.k}, t={cell.t}; got {config}")
        self.config = config
        digest = hashlib.sha256(b"secagg peers benchmark" + attempt_seed).digest()
        policy = ClientPolicy(dropout_fraction=cell.dropout, check_parameters=False)
        self.server = Server(
            config, round_id=digest[:16], graph_seed=hashlib.sha256(digest).digest()
        )
        self.clients = [Client(p, policy=policy) for p in range(cell.n)]

    def _wire(self, message: Message, stage: StageRecord, party: int, down: bool) -> Message:
        with stage.serde.measure():
            blob = encode(message)
            out = decode(blob)
        if down:
            stage.bytes_down += len(blob)
            self.bytes_down[party] += len(blob)
        else:
            stage.bytes_up += len(blob)
            self.bytes_up[party] += len(blob)
        return out

    def _client(self, party: int, message: Message, stage: StageRecord) -> list[Message]:
        clock = Clock()
        with clock.measure():
            replies: list[Message] = list(self.clients[party].handle(message))
            if isinstance(message, ShareDelivery):
                # the "training output" arrives now, as in Flower: encode it and hand it in
                words = self.encoder.encode(self.updates[party])
                replies += self.clients[party].set_input(words)
        if isinstance(message, ShareDelivery):
            self.encoded[party] = words
        stage.clients.add(clock)
        self.client_cpu[party] += clock.cpu
        return replies

    def run(self) -> bool:
        """Drive the round to its end; True if the server completed it."""
        setup = self.stages["setup"]
        with setup.total.measure():
            outgoing: list[ServerMessage] = self.server.start()
        while self.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            if not outgoing:
                raise RuntimeError(f"the server stalled in {self.server.phase.value}")
            kind = next((type(m) for m in outgoing if not isinstance(m, RoundAbort)), None)
            if kind is None:
                break
            stage = self.stages[_STAGE_OF[kind]]
            next_out: list[ServerMessage] = []
            with stage.total.measure():
                for message in outgoing:
                    party = message.recipient
                    received = self._wire(message, stage, party, down=True)
                    if party in self.dropped and stage.stage not in ("setup", "share_keys"):
                        continue  # vanished after sharing its keys
                    for reply in self._client(party, received, stage):
                        reply = self._wire(reply, stage, party, down=False)
                        stage.replies += 1
                        next_out.extend(self.server.handle(reply))
                if not next_out and self.server.phase not in (
                    ServerPhase.COMPLETE,
                    ServerPhase.ABORTED,
                ):
                    next_out = self.server.close_phase()  # the deadline: silent ones dropped
            outgoing = next_out
        return self.server.phase == ServerPhase.COMPLETE

    def decode_mean(self) -> np.ndarray:
        """The server's last step (timed as unmask-stage server work): sum -> float mean."""
        stage = self.stages["unmask"]
        with stage.total.measure():
            total = self.server.result()
            mean = self.encoder.decode(total) / len(self.server.report.included)
        return mean


def run(cell: Cell, seed: int, max_attempts: int = 5) -> dict[str, Any]:
    """One complete round (retrying a new graph if ours aborts); the JSON record."""
    updates = client_updates(cell.n, cell.d, seed)
    dropped = dropped_clients(cell.n, cell.dropped_count, seed)
    aborted: list[dict[str, Any]] = []
    for attempt in range(max_attempts):
        rnd = _Round(cell, updates, dropped, f"{seed}/{attempt}".encode())
        if rnd.run():
            break
        aborted.append({"attempt": attempt, "reason": rnd.server.report.abort_reason})
    else:
        raise RuntimeError(f"our server aborted {max_attempts} rounds in a row: {aborted}")
    mean = rnd.decode_mean()

    included = sorted(rnd.server.report.included)
    survivors = [i for i in range(cell.n) if i not in rnd.dropped]
    exact = np.zeros(cell.d, dtype=np.uint32)
    for p in survivors:
        exact += rnd.encoded[p]  # wraps modulo 2^32, as the ring does
    sum_matches = bool(np.array_equal(rnd.server.result(), exact))
    expected = updates[survivors].astype(np.float64).mean(axis=0)
    error = float(np.max(np.abs(mean - expected)))
    # stochastic rounding moves each coordinate by less than one step of 2^-18
    tolerance = 2.0**-OUR_SCALE_BITS + 1e-9
    return summarise(
        list(rnd.stages.values()),
        system="ours",
        cell=cell,
        per_client_cpu=rnd.client_cpu,
        bytes_up=dict(enumerate(rnd.bytes_up)),
        bytes_down=dict(enumerate(rnd.bytes_down)),
        survivor_ids=survivors,
        correctness={
            "what": "the server's modular sum equals the sum of the survivors' encoded words "
            "exactly, and the decoded mean against the float64 mean of their float32 updates",
            "exact_sum_matches": sum_matches,
            "max_abs_error": error,
            "tolerance": tolerance,
            "matches": bool(sum_matches and error <= tolerance and included == survivors),
            "included": len(included),
        },
        extra={
            "seed": seed,
            "dropped": dropped,
            "aborted_attempts": aborted,
            "our_parameters": {
                "graph": rnd.config.graph.name.lower(),
                "k": rnd.config.degree,
                "threshold": rnd.config.threshold,
                "bits": 32,
                "fixed_point_scale": 2**OUR_SCALE_BITS,
            },
            "versions": {"secagg": getattr(secagg, "__version__", "?"), "numpy": np.__version__},
        },
    )


def main(argv: list[str] | None = None) -> None:
    round_main(run, __doc__, argv)


if __name__ == "__main__":
    main()
