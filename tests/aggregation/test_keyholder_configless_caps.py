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


# --- the precision: [key_holder] min_precision -------------------------------------------

#: about the finest precision a ring admits for 2 clients bounded by 1 (1.14·10⁻¹³;
#: docs/backends.md): a crafted query there learns about 44 bits a coordinate at the floor,
#: against about 21 at the default precision 10⁻⁶
FINEST = 1.2e-13


def _key_request_at(clients: int, value_bound: float, precision: float) -> bytes:
    backend = CKKSBackend(value_bound=value_bound, precision=precision, max_clients=clients)
    (request,) = backend.server(backend.plan(2, D)).start()
    return request.payload


@pytest.mark.parametrize("precision", [FINEST, 1e-9, 9.99e-7])
def test_a_configless_key_holder_refuses_a_precision_finer_than_its_default(
    ca: Path, monkeypatch: pytest.MonkeyPatch, precision: float
) -> None:
    """Before, the config-less key holder made a key for any precision the server asked:
    the floor (its noise without a ``noise_stddev``) follows the precision, so the finest
    one let a crafted query learn about 44 bits a coordinate instead of about 21. Now a
    precision finer than its ``min_precision`` (default 10⁻⁶, the default federation's)
    is refused in one line, before any key work."""
    helper = _configless_key_holder(ca, monkeypatch)
    before = _state(helper)
    with pytest.raises(KeyHolderRefusal, match=r"\[key_holder\] min_precision = 1e-06") as caught:
        helper.handle(_key_request_at(2, 1.0, precision), round_number=1)
    assert "\n" not in str(caught.value)
    assert _state(helper) == before == (None, 0, (), None)  # no key made, nothing opened


def test_the_default_federations_precision_and_coarser_ones_are_answered(
    ca: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default federation (value bound 1, precision 10⁻⁶ · 1) and every documented
    example (value bound 1.0; the CLI test's 4.0 with its own max_value_bound) stay
    within the default cap."""
    from secagg.runtime.config import FederationConfig

    default = FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": ["a", "b", "c"], "dimension": D},
            "backend": {"name": "ckks", "key_holder": HOLDER},
        }
    ).aggregation_backend()
    assert isinstance(default, CKKSBackend)
    for clients, bound, precision in [
        (3, default.value_bound, default.precision),  # the default federation's
        (1000, 1.0, 1e-6),
        (3, 1.0, 1e-3),
    ]:
        helper = _configless_key_holder(ca, monkeypatch)
        helper.handle(_key_request_at(clients, bound, precision), round_number=1)
        assert helper._holder.params.precision == precision
    wider = _configless_key_holder(ca, monkeypatch, {"max_value_bound": 4.0})
    wider.handle(_key_request_at(5, 4.0, CKKSBackend(value_bound=4.0).precision), round_number=1)
    assert wider.fingerprint is not None


def test_the_policy_table_sets_min_precision(ca: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    finer = _configless_key_holder(ca, monkeypatch, {"min_precision": 1e-9})
    finer.handle(_key_request_at(2, 1.0, 1e-9), round_number=1)
    assert finer._holder.params.precision == 1e-9
    coarser = _configless_key_holder(ca, monkeypatch, {"min_precision": 1e-4})
    with pytest.raises(KeyHolderRefusal, match=r"min_precision = 0\.0001"):
        coarser.handle(_key_request_at(2, 1.0, 1e-6), round_number=1)
    assert coarser.fingerprint is None


def test_min_precision_holds_in_memory_when_the_policy_sets_it() -> None:
    """The cap is the policy's, with or without a config (like max_clients)."""
    helper = CKKSBackend().helper(policy=KeyHolderPolicy(min_precision=1e-6))
    with pytest.raises(KeyHolderRefusal, match=r"min_precision"):
        helper.handle(_key_request_at(2, 1.0, FINEST), round_number=1)
    assert helper.fingerprint is None


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ({"min_precision": 0}, "[key_holder] min_precision: must be above 0"),
        ({"min_precision": -1e-6}, "[key_holder] min_precision: must be above 0"),
        ({"min_precision": 1e7}, "[key_holder] min_precision: must be above 0 and at most"),
        ({"min_precision": "1e-6"}, "[key_holder] min_precision: must be a finite number"),
        ({"min_precision": float("nan")}, "[key_holder] min_precision: must be a finite number"),
        ({"min_precission": 1e-6}, "unknown key 'min_precission' in [key_holder]; did you mean"),
    ],
)
def test_a_bad_min_precision_is_one_line_naming_its_key(table: dict[str, Any], said: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        KeyHolderPolicy.from_dict(table)
    assert str(caught.value).startswith(said) and "\n" not in str(caught.value)


@pytest.mark.parametrize("bound", [0.01, 0.5])
def test_a_narrower_value_bound_lowers_the_default_min_precision_with_it(
    ca: Path, monkeypatch: pytest.MonkeyPatch, bound: float
) -> None:
    """A table that narrows ``max_value_bound`` below 1 admits its federation's default
    precision (10⁻⁶ times its bound): the default ``min_precision`` is 10⁻⁶ times the
    smaller of 1 and ``max_value_bound``, so the bound-to-precision ratio the floor
    protects (10⁶) is the same. Without it a key holder narrowed to B = 0.01 refused its
    own federation's rounds (precision 10⁻⁸) for a precision it had not set. Finer than
    that ratio is still refused."""
    default = CKKSBackend(value_bound=bound).precision
    helper = _configless_key_holder(ca, monkeypatch, {"max_value_bound": bound})
    helper.handle(_key_request_at(3, bound, default), round_number=1)
    assert helper._holder.params.precision == default
    finer = _configless_key_holder(ca, monkeypatch, {"max_value_bound": bound})
    with pytest.raises(KeyHolderRefusal, match=r"min_precision"):
        finer.handle(_key_request_at(3, bound, default / 10), round_number=1)
    assert finer.fingerprint is None
