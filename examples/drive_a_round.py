"""Drive the sans-I/O client and server by hand, as a transport would.

Every message crosses a byte boundary (encode/decode) the way it would cross a
socket, one client goes silent after sending its masked input, and the server's
deadline is simulated by calling ``close_phase()``. Run:

    python examples/drive_a_round.py
"""

from __future__ import annotations

import os

import numpy as np

from secagg.protocol import Client, RoundConfig, Server, ServerPhase, decode, encode

NUM_CLIENTS, LENGTH, SILENT = 12, 1_000, 5


def main() -> None:
    config = RoundConfig.create(NUM_CLIENTS, LENGTH)  # SecAgg+ defaults for k and t
    inputs = np.frombuffer(os.urandom(NUM_CLIENTS * LENGTH * 4), dtype=np.uint32)
    inputs = inputs.reshape(NUM_CLIENTS, LENGTH)
    server = Server(config)
    clients = {p: Client(p, inputs[p]) for p in range(NUM_CLIENTS)}
    print(f"{config.graph.name.lower()} graph, k={config.degree}, t={config.threshold}")

    outbox = [encode(m) for m in server.start()]  # bytes "sent" to clients
    while server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        replies: list[bytes] = []
        for wire in outbox:
            message = decode(wire)
            party = message.recipient  # type: ignore[attr-defined]
            if party == SILENT and server.phase == ServerPhase.UNMASKING:
                continue  # this client's connection dropped after it sent its input
            replies.extend(encode(r) for r in clients[party].handle(message))
        outbox = []
        for wire in replies:
            outbox.extend(encode(m) for m in server.handle(decode(wire)))
        if not outbox and server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            print(f"deadline of {server.phase.value}: waiting for {sorted(server.waiting_for)}")
            outbox = [encode(m) for m in server.close_phase()]

    total = server.result()
    expected = inputs[list(server.report.included)].sum(axis=0, dtype=np.uint32)
    print(f"summed {len(server.report.included)} inputs; exact: {np.array_equal(total, expected)}")


if __name__ == "__main__":
    main()
