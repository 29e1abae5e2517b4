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

import contextlib
import hashlib
import sys
from collections.abc import Iterator
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
import secagg.protocol.client as client_module
import secagg.protocol.server as server_module
from secagg.crypto import kx
from secagg.crypto.stream import KeyedStream
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


class CryptoWork:
    """What one round asks of its primitives, counted as it runs: the round's floor.

    ``run.py`` prices these counts at the primitives' best CPU rates measured in the
    same run, which gives the least CPU any implementation of the same work could
    spend on this machine. Counted exactly, call by call, so nothing is assumed about
    the graph or the dropouts: X25519 scalar multiplications (a key pair made, or
    rebuilt from its private bytes once per key, an agreement; the server's low-order
    check of an advertised key is a table lookup, no multiplication) and AES-CTR
    keystream bytes (every mask expanded by a client or the server, every word the
    clients' keyed streams hand out for stochastic rounding; a stream's read-ahead
    past the words asked for is not counted, so the count is a lower bound).
    """

    def __init__(self) -> None:
        self.key_pairs = 0
        self.agreements = 0
        self.keystream_bytes = 0

    def as_json(self) -> dict[str, int]:
        return {
            "x25519_key_pairs": self.key_pairs,
            "x25519_agreements": self.agreements,
            "aes_keystream_bytes": self.keystream_bytes,
        }

    @contextlib.contextmanager
    def counting(self) -> Iterator[CryptoWork]:
        """Count inside the block (module functions wrapped, restored after)."""
        saved: list[tuple[Any, str, Any]] = []

        def wrap(owner: Any, name: str, count: Any) -> None:
            original = getattr(owner, name)
            saved.append((owner, name, original))

            def counted(*args: Any, **kwargs: Any) -> Any:
                count(*args, **kwargs)
                return original(*args, **kwargs)

            setattr(owner, name, counted)

        def key_pair(*_: Any, **__: Any) -> None:
            self.key_pairs += 1

        rebuilt: set[bytes] = set()

        def rebuilt_key_pair(raw: bytes, *_: Any, **__: Any) -> None:
            # the server rebuilds a dropped client's key pair to check it, then again to
            # use it: one scalar multiplication is the work, so each key counts once
            digest = hashlib.sha256(bytes(raw)).digest()
            if digest not in rebuilt:
                rebuilt.add(digest)
                self.key_pairs += 1

        def agreement(*_: Any, **__: Any) -> None:
            self.agreements += 1

        def masks(acc: np.ndarray, add: Any = (), subtract: Any = (), *_: Any, **__: Any) -> None:
            self.keystream_bytes += acc.nbytes * (len(add) + len(subtract))

        def words(_stream: Any, count: int, *_: Any, **__: Any) -> None:
            self.keystream_bytes += 8 * int(count)

        wrap(kx, "generate_keypair", key_pair)
        wrap(kx, "keypair_from_private_bytes", rebuilt_key_pair)
        wrap(kx, "derive_key", agreement)
        wrap(client_module, "accumulate_masks", masks)
        wrap(server_module, "accumulate_masks", masks)
        wrap(KeyedStream, "words", words)
        wrap(KeyedStream, "word_blocks", words)
        try:
            yield self
        finally:
            for owner, name, original in reversed(saved):
                setattr(owner, name, original)


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
        work = CryptoWork()  # the completed attempt's work only
        with work.counting():
            completed = rnd.run()
        if completed:
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
            "crypto_work": work.as_json(),
        },
    )


def main(argv: list[str] | None = None) -> None:
    round_main(run, __doc__, argv)


if __name__ == "__main__":
    main()
