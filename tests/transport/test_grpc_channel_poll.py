"""gRPC's connectivity poller ending on a closed channel prints no traceback.

Operator pass of 2026-12-04: ``secagg client`` stopped by Ctrl-C while dialling printed
``Exception in thread Thread-1 (_run): ... ValueError: Cannot monitor channel state:
Channel closed!`` after its one line in about 1 run in 4 (grpc/grpc#18995: the poller
thread can still be inside its 0.2 s watch when the channel closes). The transport's
filter drops exactly that exception and passes every other one on.
"""

from __future__ import annotations

import threading

from _threads import BOUND

from secagg.transport import grpc_transport


def _raise_in_thread(target: object) -> None:
    thread = threading.Thread(target=target)  # type: ignore[arg-type]
    thread.start()
    thread.join(BOUND)
    assert not thread.is_alive()


def test_only_the_pollers_closed_channel_error_is_dropped() -> None:
    seen: list[BaseException | None] = []
    saved = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.exc_value)
    try:
        grpc_transport._install_closed_channel_filter()
        grpc_transport._install_closed_channel_filter()  # once: no second wrapper

        def _poll_connectivity() -> None:  # the name of gRPC's poller function
            raise ValueError("Cannot monitor channel state: Channel closed!")

        def elsewhere() -> None:
            raise ValueError("Cannot monitor channel state: Channel closed!")

        def _poll_connectivity_other_error() -> None:
            raise RuntimeError("something else")

        _raise_in_thread(_poll_connectivity)
        _raise_in_thread(elsewhere)
        _raise_in_thread(_poll_connectivity_other_error)
        assert getattr(threading.excepthook, "_secagg_closed_channel_filter", False)
    finally:
        threading.excepthook = saved
    assert [type(exc).__name__ for exc in seen] == ["ValueError", "RuntimeError"]
