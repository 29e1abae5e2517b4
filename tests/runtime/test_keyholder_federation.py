"""The runtime key holder serves its config's federation, and the server names its own.

``secagg keyholder --config`` (``key_holder_service``) binds ``[federation] name`` as the
key holder's federation, as it binds the round length; the server names its federation
in the key and decryption requests. A key holder of another federation (its own copy of
the config names another, or a state shared between two) refuses the server's first key
request, and the round aborts at once with the reason, the key holder's record untouched.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from secagg.aggregation.ckks import KeyHolderSession
from secagg.errors import ConfigurationError
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import bound_to_federation
from secagg.runtime.launch import key_holder_service, run_key_holder
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = ["branch-a", "branch-b", "branch-c"]
#: the phase deadline the round would wait out if the key holder answered: generous, so
#: that an abort well under it can only be the key holder's refusal
PHASE_SECONDS = 60.0


def _config(name: str) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": name, "clients": NAMES, "dimension": 40, "rounds": 1},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
            "deadlines": {"phase_seconds": PHASE_SECONDS},
        }
    )


def test_the_key_holder_takes_the_configs_federation_and_refuses_another_at_start(
    tmp_path: Path,
) -> None:
    config = _config("fed-b")
    assert bound_to_federation(config, {})["federation"] == "fed-b"
    assert bound_to_federation(config, {"federation": "fed-b"})["federation"] == "fed-b"
    service = key_holder_service(config, None, {})  # type: ignore[arg-type]
    assert isinstance(service.session, KeyHolderSession)
    assert service.session.policy.federation == "fed-b"
    with pytest.raises(ConfigurationError) as refused:
        run_key_holder(
            "127.0.0.1:1",
            "compliance",
            str(tmp_path),
            config=config,
            settings={"federation": "fed-a"},
        )
    said = str(refused.value)
    assert said.startswith("[key_holder] federation: 'fed-a' disagrees") and "\n" not in said
    assert "[federation] name = 'fed-b'" in said


def test_a_key_holder_of_another_federation_refuses_the_servers_round_at_once(
    tmp_path: Path,
) -> None:
    """Server of ``fed-a``, key holder of ``fed-b`` (same key holder name, same round
    length): before, the key holder opened the server's round 1 as its own. Now the
    server's key request names ``fed-a``, the key holder refuses it (wrong federation),
    and the round aborts in well under the 60 s phase deadline with that reason; the key
    holder's record is not written and its opened round is none."""
    state = tmp_path / "kh.state"
    hub = InProcessHub()
    for name in NAMES:
        hub.connect(name)  # connected, never asked anything: the round ends at its key
    holder = key_holder_service(_config("fed-b"), hub.connect("compliance"), {"state": str(state)})
    serving = threading.Thread(target=holder.run, kwargs={"idle_timeout": 120}, daemon=True)
    serving.start()
    server = FederationServer(_config("fed-a"), hub, ServerStore(tmp_path / "he.sqlite"))
    began = time.monotonic()
    (result,) = server.run(wait_for_clients=30, max_attempts=1)
    elapsed = time.monotonic() - began
    assert result.status == "aborted"
    assert (
        "the key holder refused the key request (wrong federation): a key request of round "
        "1 for federation 'fed-a' refused: this key holder serves federation 'fed-b' only"
    ) in str(result.reason)
    assert str(tmp_path) not in str(result.reason)
    assert elapsed < PHASE_SECONDS / 4, f"the round took {elapsed:.1f} s to abort"
    serving.join(timeout=60)
    assert not serving.is_alive() and holder.refused == 1 and holder.answered == 0
    session = holder.session
    assert isinstance(session, KeyHolderSession)
    assert session.opened is None and session.decryptions == 0
    assert not state.exists()  # nothing recorded


def test_the_server_names_its_federation_and_the_key_holder_records_it(
    tmp_path: Path,
) -> None:
    """The same federation's key holder opens the server's round: the key request named
    ``fed-a`` (a request naming none is refused by a key holder of ``fed-a``). No branch
    uploads, so the round aborts in its contribution phase; the opened round is there."""
    hub = InProcessHub()
    for name in NAMES:
        hub.connect(name)
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "fed-a", "clients": NAMES, "dimension": 40, "rounds": 1},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
            "deadlines": {"phase_seconds": 0.5},
        }
    )
    holder = key_holder_service(config, hub.connect("compliance"), {})
    serving = threading.Thread(target=holder.run, kwargs={"idle_timeout": 120}, daemon=True)
    serving.start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    (result,) = server.run(wait_for_clients=30, max_attempts=1)
    serving.join(timeout=60)
    assert not serving.is_alive()
    assert holder.refused == 0 and holder.answered == 1  # the key request, answered
    session = holder.session
    assert isinstance(session, KeyHolderSession) and session.opened == (1, 40)
    assert "wrong federation" not in str(result.reason)
    assert json.dumps(result.reason)  # a reason was recorded (no branch uploaded)
