"""The server's launch from its configuration: what its transport is sized for."""

from __future__ import annotations

import pytest

from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import session_capacity


def _config(clients: int, key_holder: bool) -> FederationConfig:
    backend: dict[str, object] = {"name": "ckks" if key_holder else "secagg+", "value_bound": 1.0}
    if key_holder:
        backend["key_holder"] = "compliance"
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "sized",
                "clients": [f"branch-{i:04d}" for i in range(clients)],
                "dimension": 8,
                "rounds": 1,
            },
            "backend": backend,
        }
    )


@pytest.mark.parametrize(
    ("clients", "key_holder"), [(3, False), (99, True), (100, True), (400, True), (1000, False)]
)
def test_every_party_has_a_session_and_a_redial_has_room(clients: int, key_holder: bool) -> None:
    """Review of 2026-12-04: the transport held max(100, clients) sessions, so with 100
    branches and a CKKS key holder the last to connect was refused every time (no CKKS
    round could start), and a mass redial had no room for the sessions it opens before
    the ones they supersede are seen gone."""
    config = _config(clients, key_holder)
    capacity = session_capacity(config)
    parties = clients + key_holder
    assert len(config.parties) == parties
    assert capacity >= parties + 8 and capacity >= 100
    assert capacity >= parties * 5 // 4
