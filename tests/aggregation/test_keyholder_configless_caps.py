"""A key holder without the federation's config caps the design point it makes a key
for by its own ``[key_holder] max_clients`` and ``max_value_bound``.

Before, ``secagg keyholder --backend ckks`` (no ``--config``) made its key for whatever
design point the server's first key request carried: the clients and value bound in it
set the plausible range (``c·B``) every decryption is held to, the one bound on what a
crafted query learns of the key under the key holder's own noise, so the server decided
what the key holder's protection was worth (10⁵ clients at B = 10⁶: a range 10⁸ times
that of 1 000 clients at B = 1). Now a request beyond the key holder's caps (defaults
1 000 clients and B = 1 without a config, or its table's) is refused before any key work,
nothing made, opened or written; one within them is answered as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, Announce
from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession
from secagg.aggregation.keyholder_policy import KeyHolderPolicy, KeyHolderRefusal
from secagg.errors import ConfigurationError
from secagg.runtime.keyholder import KeyHolderService

HOLDER = "compliance"
D = 8


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from secagg.apps import devca

    directory = tmp_path_factory.mktemp("configless-caps-ca") / "certs"
    devca.init_ca(directory)
    devca.issue_client(directory, HOLDER)
    return directory


def _configless_key_holder(
    ca: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any] | None = None
) -> KeyHolderSession:
    """The session ``secagg keyholder --backend ckks [--policy P]`` serves with: what
    ``run_key_holder`` builds without a config (only the dialling is a stand-in)."""
    from secagg.runtime import launch

    built: list[Any] = []

    def serve(self: KeyHolderService, dial: Any, **options: Any) -> int:
        built.append(self.session)
        return 0

    monkeypatch.setattr(KeyHolderService, "serve", serve)
    launch.run_key_holder("127.0.0.1:1", HOLDER, str(ca), backend="ckks", settings=settings)
    (session,) = built
    assert isinstance(session, KeyHolderSession)
    return session


def _key_request(clients: int, value_bound: float) -> bytes:
    backend = CKKSBackend(value_bound=value_bound, max_clients=clients)
    (request,) = backend.server(backend.plan(2, D)).start()
    return request.payload


def _state(helper: KeyHolderSession) -> tuple[object, ...]:
    return (helper.fingerprint, helper.decryptions, tuple(helper.record.rounds), helper.opened)


@pytest.mark.parametrize(
    ("clients", "value_bound", "key"),
    [
        (1001, 1.0, "max_clients"),  # one client past the default
        (3, 2.0, "max_value_bound"),  # twice the default bound
        (100_000, 1e6, "max_clients"),  # a range 10⁸ times the default's
    ],
)
def test_a_configless_key_holder_refuses_a_design_point_beyond_its_defaults(
    ca: Path, monkeypatch: pytest.MonkeyPatch, clients: int, value_bound: float, key: str
) -> None:
    helper = _configless_key_holder(ca, monkeypatch)
    before = _state(helper)
    with pytest.raises(KeyHolderRefusal, match=rf"\[key_holder\] {key} = ") as caught:
        helper.handle(_key_request(clients, value_bound), round_number=1)
    assert "\n" not in str(caught.value)
    assert _state(helper) == before == (None, 0, (), None)  # no key made, nothing opened


def test_a_configless_key_holder_answers_within_its_caps(
    ca: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helper = _configless_key_holder(ca, monkeypatch)
    backend = CKKSBackend(value_bound=1.0, max_clients=3)
    server = backend.server(backend.plan(2, D))
    (request,) = server.start()
    events = server.handle(HELPER, helper.handle(request.payload, round_number=1))
    assert any(isinstance(e, Announce) for e in events)
    assert helper.opened == (1, D) and helper._holder.params.num_clients == 3


def test_the_policy_table_sets_the_caps_of_a_configless_key_holder(
    ca: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A federation of more clients or a larger bound says so in the key holder's own
    ``--policy`` table; a smaller cap there is held too."""
    wider = _configless_key_holder(ca, monkeypatch, {"max_clients": 2000, "max_value_bound": 4.0})
    wider.handle(_key_request(2000, 4.0), round_number=1)
    assert wider._holder.params.num_clients == 2000
    narrower = _configless_key_holder(ca, monkeypatch, {"max_clients": 3})
    with pytest.raises(KeyHolderRefusal, match=r"max_clients = 3"):
        narrower.handle(_key_request(4, 1.0), round_number=1)
    assert narrower.fingerprint is None


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ({"max_clients": 1}, "[key_holder] max_clients: must be in [2, 1000000]"),
        ({"max_clients": 3, "min_contributions": 4}, "[key_holder] max_clients: must be in [4,"),
        ({"max_clients": True}, "[key_holder] max_clients: must be an integer"),
        ({"max_value_bound": 0}, "[key_holder] max_value_bound: must be above 0"),
        ({"max_value_bound": 1e7}, "[key_holder] max_value_bound: must be above 0 and at most"),
        ({"max_value_bound": "1"}, "[key_holder] max_value_bound: must be a finite number"),
    ],
)
def test_a_bad_cap_is_one_line_naming_its_key(table: dict[str, Any], said: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        KeyHolderPolicy.from_dict(table)
    assert str(caught.value).startswith(said) and "\n" not in str(caught.value)
