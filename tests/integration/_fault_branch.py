"""A branch process for the fault tests: serves rounds, or dies at a chosen phase.

Run as ``python tests/_fault_branch.py PORT NAME CERTS DIMENSION DIE_ON ROUNDS``; DIE_ON is
``never``, or the server message on whose arrival the process kills itself
(``os._exit``, no goodbye): ``start`` (ROUND_START), ``setup`` (RoundSetup: dies
before advertising keys), ``keys`` (KeyDirectory: before sharing keys), ``shares``
(ShareDelivery: before its masked input), ``unmask`` (UnmaskingRequest: before
its unmasking shares). ``slow`` trains for 1.5 s per round and never dies. ROUNDS 0
serves until the server announces the federation's end.
"""

from __future__ import annotations

import os
import sys
import time

from secagg.errors import SecAggError
from secagg.protocol import decode
from secagg.protocol.messages import KeyDirectory, RoundSetup, ShareDelivery, UnmaskingRequest
from secagg.runtime.client import FederationClient
from secagg.runtime.launch import demo_hook, run_branch
from secagg.runtime.wire import Relay, RoundStart, decode_message

TRIGGERS = {
    "setup": RoundSetup,
    "keys": KeyDirectory,
    "shares": ShareDelivery,
    "unmask": UnmaskingRequest,
}


def main() -> None:
    port, name, certs, dimension, die_on, rounds = sys.argv[1:7]
    hook = demo_hook(name, int(dimension))
    if die_on == "slow":
        inner = hook

        def hook(model):  # type: ignore[no-untyped-def]
            time.sleep(1.5)
            return inner(model)

    original = FederationClient.handle

    def handle(self: FederationClient, payload: bytes) -> None:
        message = decode_message(payload)
        if die_on == "start" and isinstance(message, RoundStart):
            os._exit(3)
        if isinstance(message, Relay) and die_on in TRIGGERS:
            try:
                protocol_message = decode(message.payload)
            except SecAggError:
                protocol_message = None
            if isinstance(protocol_message, TRIGGERS[die_on]):
                os._exit(3)
        original(self, payload)

    FederationClient.handle = handle  # type: ignore[method-assign]
    # ROUNDS 0: serve until the server announces the federation's end
    stats = run_branch(
        f"127.0.0.1:{port}", name, hook, certs, idle_timeout=300, rounds=int(rounds) or None
    )
    print(f"{name}: {stats.rounds_completed} completed")


if __name__ == "__main__":
    main()
