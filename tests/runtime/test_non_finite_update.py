"""A training hook that returns NaN or an infinity under a clip: the zero vector, no leave.

Known since the review of 2026-12-06 (secagg/runtime/client.py, ``_start``): a branch
whose hook returned a non-finite update refused it and left the round. Whether a branch
left then depended on its data, which no epsilon covers (under the zero-out adjacency
the neighbouring dataset never leaves that way), and the server and its ledger saw the
dropout. Now, in a round with a clip (a DP round), the branch sends the zero vector
(inside the clip ball), counts it in ``non_finite_updates``, logs one warning naming no
value, and takes part as usual: the round completes with the others' sum. Without a
clip (no DP) it still leaves, saying it could not take part.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _endpoints import SentMessages

from secagg.aggregation import encode_spec
from secagg.aggregation.masking import MaskingBackend
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Leave, Relay, RoundStart, encode_message
from secagg.transport.inprocess import InProcessHub

D = 8
NAMES = [f"branch-{i}" for i in range(4)]
BOUND = 60.0  # seconds: the upper bound of every wait on another thread
SPEC = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D))
NON_FINITE = [np.nan, np.inf, -np.inf]


def _constant(value: float) -> Callable[[np.ndarray], np.ndarray]:
    def hook(model: np.ndarray) -> np.ndarray:
        update = np.full_like(model, 0.01)
        update[1] = value  # one coordinate is enough
        return update

    return hook


@pytest.mark.parametrize("value", NON_FINITE, ids=str)
def test_under_a_clip_a_non_finite_update_is_sent_as_zero_not_a_leave(
    value: float, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = SentMessages()
    client = FederationClient("branch-0", _constant(value), outbox)
    start = RoundStart(1, 0, SPEC, np.zeros(D), 1.0, deadline=60.0, federation="fed")
    with caplog.at_level(logging.INFO, logger="secagg.client"):
        client.handle(encode_message(start))
    assert not [m for m in outbox.sent if not isinstance(m, Relay)], outbox.sent
    assert client._round == 1 and client._session is not None  # its input taken
    assert client.stats.non_finite_updates == 1
    assert client.stats.refused_messages == 0
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "secagg.client" and r.levelno >= logging.WARNING
    ]
    assert warnings == [
        "branch-0: its training hook returned NaN or infinite values in round 1; it sends "
        "the zero vector instead (inside the clip, so the round's DP holds)"
    ]


def test_without_a_clip_a_non_finite_update_still_leaves_the_round() -> None:
    """No DP, no epsilon to protect: a zero counted as a trained update would pull the
    others' FedAvg towards no change; the branch leaves instead, as before."""
    outbox = SentMessages()
    client = FederationClient("branch-0", _constant(np.nan), outbox)
    client.handle(encode_message(RoundStart(1, 0, SPEC, np.zeros(D), None, federation="fed")))
    assert outbox.sent == [Leave(1, "could not take part (ConfigurationError)")]
    assert getattr(client.stats, "non_finite_updates", 0) == 0  # kept: passes before too


def _config() -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "nonfinite",
                "clients": NAMES,
                "dimension": D,
                "rounds": 1,
                "seed": 11,
                "replay_noise": True,  # both runs below add the same central noise
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.4},
            "dp": {"clip": 1.0, "noise_multiplier": 0.5, "delta": 1e-3},
            "deadlines": {"phase_seconds": 20.0, "round_seconds": 120.0},
        }
    )


def _run(tmp_path: Path, last: Callable[[np.ndarray], np.ndarray]) -> tuple[object, np.ndarray]:
    """One DP round of NAMES, the last branch training with ``last``."""
    hub = InProcessHub()
    threads = []
    for i, name in enumerate(NAMES):
        hook = last if name == NAMES[-1] else _constant(0.01 * (i + 1))
        client = FederationClient(name, hook, hub.connect(name))
        thread = threading.Thread(
            target=client.run, kwargs={"idle_timeout": BOUND, "rounds": 1}, daemon=True
        )
        thread.start()
        threads.append(thread)
    server = FederationServer(_config(), hub, ServerStore(tmp_path / "state.sqlite"))
    (result,) = server.run(wait_for_clients=BOUND)
    for thread in threads:
        thread.join(BOUND)
    return result, server.model


def test_a_dp_round_with_a_nan_branch_completes_with_it_contributing_zero(
    tmp_path: Path,
) -> None:
    """Before: the NaN branch left (a dropout the server and its ledger saw). Now it
    contributes, and the released model is the one of a branch that sent zeros."""
    (tmp_path / "nan").mkdir()
    (tmp_path / "zero").mkdir()
    nan_result, nan_model = _run(tmp_path / "nan", _constant(np.nan))
    zero_result, zero_model = _run(tmp_path / "zero", lambda model: np.zeros_like(model))
    assert nan_result.status == "complete", nan_result.reason  # type: ignore[attr-defined]
    assert nan_result.contributed == tuple(NAMES)  # type: ignore[attr-defined]
    assert zero_result.contributed == tuple(NAMES)  # type: ignore[attr-defined]
    # the same seeded noise, the same inputs: only the encoding's rounding may differ
    assert np.max(np.abs(nan_model - zero_model)) < 1e-6
