"""Wiring a federation onto gRPC with mTLS: the server and a branch, from a config.

:func:`serve` is ``secagg server --config F``: it loads the CA directory named
in the config, accepts only clients whose certificates chain to that CA, are
not revoked and name a client of the federation (each refusal is logged), and
runs the rounds. :func:`run_branch` is ``secagg client``: it dials the server
(branches accept no inbound connection), proves its identity with its own
certificate and serves rounds with its training hook.

:func:`demo_hook` is a stand-in training hook for trying a federation out: each
branch pulls the model toward a target derived from its name (its "local
optimum"), so the federated model converges to their mean. Real models plug in
through :class:`~secagg.client.runtime.TrainingHook`.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from secagg.client.runtime import ClientStats, FederationClient, TrainingHook
from secagg.errors import ConfigurationError
from secagg.federation.config import FederationConfig
from secagg.federation.store import ServerStore
from secagg.server.runtime import FederationServer, RoundResult

log = logging.getLogger("secagg.network")


def demo_hook(name: str, dimension: int, step: float = 0.5) -> TrainingHook:
    """A branch whose local optimum is a fixed vector derived from its name."""
    digest = hashlib.sha256(b"secagg/demo/" + name.encode()).digest()
    words = np.frombuffer((digest * (8 * dimension // len(digest) + 1))[: 8 * dimension], "<u8")
    target = (words / 2.0**64 - 0.5) * 0.2

    def train(model: np.ndarray) -> np.ndarray:
        return step * (target - model)

    return train


def load_hook(spec: str, name: str, dimension: int) -> TrainingHook:
    """``"demo"`` or ``"package.module:factory"``; the factory gets (name, dimension).

    A hook with DP-SGD inside may carry a ``privacy_report`` attribute (a callable
    returning :meth:`DPSGDTrainer.privacy_report`): the branch then reports its
    record-level accounting for the server's ledger."""
    if spec == "demo":
        return demo_hook(name, dimension)
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError("a hook is 'demo' or 'package.module:factory'")
    try:
        factory: Callable[[str, int], TrainingHook] = getattr(
            importlib.import_module(module_name), attribute
        )
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load hook {spec!r}: {exc}") from None
    return factory(name, dimension)


def server_transport(config: FederationConfig, port: int | None = None) -> Any:
    """A started gRPC server transport with mTLS and peer checks from the config."""
    from secagg.transport import certs
    from secagg.transport.grpc_transport import GrpcServerTransport

    directory = config.server.certificates
    allowed = [*config.clients, *filter(None, [config.backend.key_holder])]
    verifier = certs.PeerVerifier(directory, allowed=allowed)
    bind = config.server.bind if port is None else f"{config.server.bind.rsplit(':', 1)[0]}:{port}"

    def identify(context: Any) -> str:
        return verifier.identify(context.auth_context()).name

    transport = GrpcServerTransport(
        bind,
        server_credentials=certs.load_server_credentials(directory).to_grpc(),
        max_message_bytes=config.server.max_message_bytes,
        identify=identify,
        max_clients=max(100, len(config.clients)),
    )
    transport.start()
    return transport


def serve(
    config: FederationConfig,
    *,
    wait_for_clients: float = 60.0,
    initial_model: np.ndarray | None = None,
    port: int | None = None,
) -> tuple[FederationServer, list[RoundResult]]:
    """Run the federation's remaining rounds over gRPC; returns the server and results."""
    transport = server_transport(config, port)
    try:
        from secagg.ledger.chain import Ledger, LedgerKey

        key = LedgerKey.load_or_create(config.server.state + ".ledger-key")
        server = FederationServer(
            config, transport, ServerStore(config.server.state), initial_model,
            ledger=Ledger(config.server.state + ".ledger", key),
        )
        return server, server.run(wait_for_clients=wait_for_clients)
    finally:
        transport.stop(grace=2.0)


def run_branch(
    target: str,
    name: str,
    hook: TrainingHook,
    certificates: str,
    *,
    rounds: int | None = None,
    idle_timeout: float = 120.0,
    max_message_bytes: int = 256 * 1024 * 1024,
    name_override: str | None = None,
    connect_timeout: float = 30.0,
    reconnect: bool = True,
) -> ClientStats:
    """Dial the server as branch ``name`` and serve rounds until told or idle.

    With ``reconnect`` a lost session (a server restart, a network cut) is
    redialled every second until ``idle_timeout`` passes: the branch misses the
    round in flight (to the server, a dropout) and takes part in the next.
    """
    from secagg.transport import certs
    from secagg.transport.grpc_transport import GrpcClientTransport, NotConnected

    credentials = certs.load_client_credentials(certificates, name).to_grpc()
    client: FederationClient | None = None
    deadline = time.monotonic() + max(idle_timeout, connect_timeout)
    while True:
        transport = GrpcClientTransport(
            target,
            channel_credentials=credentials,
            name_override=name_override,
            max_message_bytes=max_message_bytes,
        )
        try:
            transport.connect(timeout=connect_timeout)
            if client is None:
                # a hook that does record-level DP (e.g. torch_hook over a DPSGDTrainer)
                # exposes privacy_report: its accountant's inputs go to the ledger
                client = FederationClient(
                    name, hook, transport, privacy_report=getattr(hook, "privacy_report", None)
                )
            else:  # a reconnect: same branch, same counters, new session
                client.reconnected(transport)
            deadline = time.monotonic() + idle_timeout
            return client.run(idle_timeout=idle_timeout, rounds=rounds)
        except NotConnected as exc:
            if not reconnect or time.monotonic() > deadline:
                if client is None:
                    raise
                log.warning("%s: connection lost (%s), giving up", name, exc)
                return client.stats
            log.warning("%s: connection lost (%s), reconnecting", name, exc)
            time.sleep(1.0)
        finally:
            transport.close()


def run_key_holder(
    target: str,
    name: str,
    certificates: str,
    *,
    idle_timeout: float = 600.0,
    connect_timeout: float = 30.0,
    max_message_bytes: int = 256 * 1024 * 1024,
) -> int:
    """Serve as the CKKS key holder ``name``; returns the number of sums decrypted."""
    from secagg.server.keyholder import KeyHolderService
    from secagg.transport import certs
    from secagg.transport.grpc_transport import GrpcClientTransport

    transport = GrpcClientTransport(
        target,
        channel_credentials=certs.load_client_credentials(certificates, name).to_grpc(),
        max_message_bytes=max_message_bytes,
    )
    from secagg.transport.grpc_transport import NotConnected

    transport.connect(timeout=connect_timeout)
    service = KeyHolderService(name, transport)
    try:
        return service.run(idle_timeout=idle_timeout)
    except NotConnected as exc:  # the server ended the session: done
        log.info("%s: session ended (%s)", name, exc)
        return service.decryptions
    finally:
        transport.close()
