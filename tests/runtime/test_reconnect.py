"""The key holder and the branches ride out a server restart over gRPC.

Before: the CKKS key holder dialled once and exited when its session ended, so a
server that crashed and resumed from its database waited for its key holder (the
quorum of a CKKS round) until it gave up. Now the key holder redials like a branch:
bounded exponential back-off, jitter from the OS CSPRNG, one log line per attempt,
for up to a configurable give-up time counted from the loss.

The restart here is real: the gRPC server transport stops (every session ends) and
a new server resumes from the same database on the same port, as
``test_restart_aborts_the_running_round_and_continues_from_the_checkpoint`` does over
the in-process hub. Every wait is on an event with a generous bound.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import pytest
from _threads import BOUND, Party, free_port, wait_until

from secagg.aggregation.policy import BranchPolicy
from secagg.runtime import redial
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import KeyHolderGaveUp, KeyHolderService
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.base import NotAccepted, NotConnected

NAMES = ["branch-a", "branch-b", "branch-c"]
HOLDER = "compliance"
D = 16


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from secagg.apps import devca

    directory = tmp_path_factory.mktemp("reconnect-ca") / "certs"
    devca.init_ca(directory)
    for name in [*NAMES, HOLDER]:
        devca.issue_client(directory, name)
    return directory


def test_a_ckks_round_completes_after_the_server_restarts(ca: Path, tmp_path: Path) -> None:
    """Round 1 completes, the server dies in round 2 and is started again on its
    database; the resumed server marks round 2 aborted and round 3 completes, which
    needs the key holder back: it redialled (before the fix it had exited, and the
    resumed server stopped with "no quorum ...: the key holder compliance is not
    connected")."""
    from secagg.runtime.launch import (
        demo_hook,
        make_key_holder_key,
        run_branch,
        run_key_holder,
        server_transport,
    )

    port = free_port()
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": NAMES, "dimension": D, "rounds": 2},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": HOLDER},
            "deadlines": {"phase_seconds": 30.0},
            "server": {
                "bind": f"127.0.0.1:{port}",
                "certificates": str(ca),
                "quorum_wait_seconds": BOUND,
            },
        }
    )
    key = tmp_path / "compliance.key"
    pin = make_key_holder_key(config, key)
    target = f"127.0.0.1:{port}"
    state = tmp_path / "he.sqlite"

    first_transport = server_transport(config, port)
    first = FederationServer(config, first_transport, ServerStore(state))
    holder = Party(
        lambda: run_key_holder(
            target,
            HOLDER,
            str(ca),
            config=config,
            settings={"key": str(key)},
            idle_timeout=BOUND,
            connect_timeout=BOUND,
            give_up_after=BOUND,
        )
    )
    branches = [
        Party(
            lambda n=name: run_branch(
                target,
                n,
                demo_hook(n, D),
                str(ca),
                policy=BranchPolicy(key_holder_fingerprint=pin),
                idle_timeout=None,
                connect_timeout=BOUND,
                give_up_after=BOUND,
                dimension=D,
            )
        )
        for name in NAMES
    ]
    try:
        assert wait_until(
            lambda: first.quorum_missing() is None and len(first_transport.connected()) == 4
        )
        assert first.run_round().status == "complete"
        first.store.begin_round(2, NAMES)  # the server dies here, mid-round
        first_transport.stop(grace=0.0)  # every session ends, as when the process dies
        first.store.close()

        second_transport = server_transport(config, port)
        try:
            second = FederationServer(config, second_transport, ServerStore(state))
            results = second.run(wait_for_clients=BOUND)
        finally:
            second_transport.stop(grace=2.0)
    finally:
        first_transport.stop(grace=0.0)
    store = ServerStore(state)
    statuses = [(r["number"], r["status"]) for r in store.rounds()]
    store.close()
    assert statuses == [(1, "complete"), (2, "aborted"), (3, "complete")], second.stop_reason
    assert [r.status for r in results] == ["complete"] and second.finished
    assert holder.done.wait(BOUND)
    assert holder.error is None, holder.error
    assert holder.value.decryptions == 2  # rounds 1 and 3, over two sessions
    assert holder.value.finished and holder.value.sessions == 2
    for branch in branches:
        assert branch.done.wait(BOUND)
        assert branch.error is None, branch.error
        assert branch.value.outcome == "finished" and branch.value.sessions == 2


# --- the back-off itself ------------------------------------------------------------


def test_the_backoff_doubles_to_its_cap_with_csprng_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded: every pause within [first, cap] spread by 20 %; the jitter comes from
    secrets.SystemRandom (os.urandom), not the seedable ``random`` module."""
    import random

    def seeded(*_: object) -> float:
        raise AssertionError("the back-off drew from the random module")

    monkeypatch.setattr(random, "uniform", seeded)
    monkeypatch.setattr(random, "random", seeded)
    assert isinstance(redial._CSPRNG, __import__("secrets").SystemRandom)
    backoff = redial.Backoff()
    pauses = [backoff.next_pause() for _ in range(40)]
    assert 0.2 <= pauses[0] <= 0.3
    assert all(0.8 * 0.25 <= p <= 1.2 * redial.MAX_REDIAL_PAUSE for p in pauses)
    assert all(p >= 0.8 * redial.MAX_REDIAL_PAUSE for p in pauses[5:])  # at the cap
    assert len({round(p, 9) for p in pauses[5:]}) > 1  # jittered, not a fixed pause
    backoff.reset()
    assert backoff.next_pause() <= 0.3


class _Refusing:
    """A dial that never opens a session (the server is down); counts its calls."""

    def __init__(self, error: NotConnected) -> None:
        self.error = error
        self.calls = 0

    def __call__(self, timeout: float) -> Any:
        self.calls += 1
        raise self.error


def test_the_key_holder_gives_up_after_its_window_logging_one_line_per_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = KeyHolderService(HOLDER, None, object())  # type: ignore[arg-type]
    dial = _Refusing(NotConnected("cannot reach 127.0.0.1:1: connection refused"))
    began = time.monotonic()
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        with pytest.raises(KeyHolderGaveUp) as gave_up:
            service.serve(dial, connect_timeout=1.5)
    took = time.monotonic() - began
    assert 1.5 <= took < BOUND
    assert "cannot open a session with the server within 1.5 s" in str(gave_up.value)
    attempts = [r.getMessage() for r in caplog.records if "dial attempt" in r.getMessage()]
    assert dial.calls >= 3 and len(attempts) == dial.calls - 1  # the last one gives up
    assert all("connection refused" in line for line in attempts)
    assert [int(line.split("dial attempt ")[1].split()[0]) for line in attempts] == list(
        range(1, dial.calls)
    )


def test_the_key_holder_does_not_redial_a_server_that_refuses_it() -> None:
    service = KeyHolderService(HOLDER, None, object())  # type: ignore[arg-type]
    dial = _Refusing(NotAccepted("the server refused compliance"))
    with pytest.raises(NotAccepted):
        service.serve(dial, connect_timeout=BOUND)
    assert dial.calls == 1


def test_the_key_holder_waits_as_long_as_its_server_may_be_silent(
    ca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the key holder stopped after 600 s of silence (``--idle``), which was also
    the default quorum wait and the default round: with the guide's training_seconds of
    1800 it left between a round's key request and its decryption request, and the
    federation stopped for want of it. Now, with the federation's config, its idle
    timer is the server's longest silence towards it (quorum wait + round + 30 s), and
    a shorter one given is warned about."""
    from secagg.runtime import launch

    config = FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": NAMES, "dimension": D, "rounds": 2},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": HOLDER},
            "deadlines": {"training_seconds": 1800.0, "round_seconds": 3600.0},
        }
    )
    key = tmp_path / "compliance.key"
    launch.make_key_holder_key(config, key)
    seen: dict[str, Any] = {}

    def serve(self: KeyHolderService, dial: Any, **options: Any) -> int:
        seen.update(options)
        return 0

    monkeypatch.setattr(KeyHolderService, "serve", serve)
    arguments = ("127.0.0.1:1", HOLDER, str(ca))
    launch.run_key_holder(*arguments, config=config, settings={"key": str(key)})
    assert seen["idle_timeout"] == 600.0 + 3600.0 + 30.0 == launch.key_holder_idle(config)
    with caplog.at_level(logging.WARNING, logger="secagg.network"):
        launch.run_key_holder(
            *arguments, config=config, settings={"key": str(key)}, idle_timeout=600.0
        )
    assert seen["idle_timeout"] == 600.0  # the operator's choice stands, with a warning
    assert "shorter than the server's longest silence" in caplog.text
    launch.run_key_holder(*arguments, backend="ckks")  # no config: the old default
    assert seen["idle_timeout"] == 600.0
    # a server whose --wait for its branches is longer says nothing before round 1: the
    # operator can turn the timer off (it was capped at a finite value)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="secagg.network"):
        launch.run_key_holder(
            *arguments, config=config, settings={"key": str(key)}, idle_timeout=math.inf
        )
    assert seen["idle_timeout"] is None  # the transport's receive waits without a bound
    assert "shorter than" not in caplog.text


def test_a_branch_redials_with_the_same_backoff_one_line_per_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from secagg.runtime.client import BranchGaveUp, FederationClient

    branch = FederationClient("branch-a", lambda m: m, None)
    dial = _Refusing(NotConnected("cannot reach 127.0.0.1:1: connection refused"))
    with caplog.at_level(logging.INFO, logger="secagg.client"):
        with pytest.raises(BranchGaveUp):
            branch.serve(dial, connect_timeout=1.5)
    attempts = [r.getMessage() for r in caplog.records if "dial attempt" in r.getMessage()]
    assert dial.calls >= 3 and len(attempts) == dial.calls - 1
    assert all(line.startswith("branch-a: dial attempt ") for line in attempts)
    assert all("connection refused" in line and "giving up in" in line for line in attempts)
