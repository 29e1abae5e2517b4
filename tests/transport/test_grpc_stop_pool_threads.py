"""``GrpcServerTransport.stop`` ends its handler pool's threads (review leftover,
2026-12-07).

Before: ``stop`` stopped the gRPC server but never shut down the ``ThreadPoolExecutor``
it had been given, so the pool's idle threads lived until the transport was
garbage-collected (measured 10, then 20, then 30 threads across three servers started and
stopped in one process). Checked by joining the pool's own threads, never by sleeping.

Real gRPC on loopback, plaintext (the threads, not TLS, are under test).
"""

from __future__ import annotations

import threading
import time

from _threads import BOUND

from secagg.transport.grpc_transport import GrpcClientTransport, GrpcServerTransport

#: ThreadPoolExecutor names its workers f"{prefix}_{n}"; the server's prefix is this
POOL_THREAD_PREFIX = "secagg-grpc_"


def _pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(POOL_THREAD_PREFIX)}


def test_stop_ends_the_pool_threads_a_session_started() -> None:
    before = _pool_threads()  # other tests' servers in this process are not ours
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=lambda context: "branch-a",
        recheck_interval=None,
    )
    server.start()
    client = GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
    )
    try:
        assert client.connect(timeout=BOUND) == "branch-a"
        # taken while the session's handler runs on one of them: after stop() the pool
        # may already be gone, and an empty set checks nothing (the fresh-clone CI of
        # 5d9ea697 took it after stop and found none)
        ours = _pool_threads() - before
    finally:
        client.close()
        server.stop(grace=0)
    assert ours, "the session ran on none of the pool's threads: nothing is checked"
    deadline = time.monotonic() + BOUND  # one bound for all: a leak fails in BOUND, not n * BOUND
    for thread in ours:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not [t.name for t in ours if t.is_alive()]
