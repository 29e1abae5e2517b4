"""Every numeric key of a federation file is bounded above, refused past it in one line
naming the key and the bound.

Upper-bounds review (2026-12-05): the config fuzz checked lower bounds, types and
nan/inf, and left these loading: ``deadlines.round_seconds = 1e300`` (the unmasking's
Ray timeout and the key holder's idle wait), ``[server] quorum_wait_seconds = 1e300``,
``[server] max_message_bytes = 2**70`` (refused only when the transport was built, in
words naming no key), ``[server] max_connections = 2**31 - 1`` (gRPC's connection quota
aborts the whole process at start: no Python error at all), ``dp.noise_multiplier =
1e30`` (which ``secagg simulate`` refused past 10^4) and a negative ``federation.seed``
(which simulate refused too).

Upper-bounds review (2026-12-06): ``backend.value_bound = 1e300`` (plain, SecAgg,
SecAgg+; CKKS refused it in words naming its ring) and ``dp.clip = 1e300`` (central)
loaded: the masking ring's step was 2.5e291, so every update rounded to 0, and the
central noise z x 1e300; both are at most 10^6 (``MAX_CLIP``), simulate's clip cap.

Config review (2026-12-06): ``backend.precision = 1e6`` (a typo of ``1e-6``) loaded
beside ``value_bound = 1``: the key holder's noise floor, the error bound that precision
buys, was 17 000 per coordinate of a sum of values of at most 1; at most the bound now.
``[server] session_burst = 10**400`` loaded, and every
branch's session then failed in the transport (its token bucket's ``float(burst)``
raised OverflowError); at most 2**53, where the bucket's float count is still exact.
``federation.rounds`` had no upper bound (``2**70`` loaded, a plan no federation lives
to run): at most 10^9 now, as ``secagg client --rounds`` and ``secagg privacy -T``.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import pytest

from secagg.aggregation.policy import MAX_CLIP
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.errors import ConfigurationError
from secagg.runtime.config import (
    MAX_ROUNDS,
    MAX_SEED,
    MAX_SESSION_BURST,
    MIN_SESSION_RATE,
    FederationConfig,
)
from secagg.runtime.launch import key_holder_idle
from secagg.transport.base import MAX_WAIT_SECONDS
from secagg.transport.framing import MAX_INCOMING_CONNECTIONS, MAX_MESSAGE_BYTES
from tests._config_fuzz import names_key, one_line


def _load(**sections: dict[str, Any]) -> FederationConfig:
    data: dict[str, Any] = {
        "federation": {"name": "bounds", "clients": ["b1", "b2", "b3"], "dimension": 10},
        "dp": {"unit": "client", "mechanism": "central", "delta": 1e-3},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warnings
        return FederationConfig.from_dict(data)


WEEK = MAX_WAIT_SECONDS

#: (sections, the key the refusal names, the bound it states): each loaded before
REFUSED = [
    pytest.param(
        {"deadlines": {"phase_seconds": 1e300, "round_seconds": 1e300}},
        ("deadlines", "phase_seconds"),
        "at most 604800",
        id="phase_seconds",
    ),
    pytest.param(
        {"deadlines": {"round_seconds": 1e300}},
        ("deadlines", "round_seconds"),
        "at most 604800",
        id="round_seconds",
    ),
    pytest.param(
        {"deadlines": {"round_seconds": WEEK + 1}},
        ("deadlines", "round_seconds"),
        "at most 604800",
        id="round_seconds-a-week-and-a-second",
    ),
    pytest.param(
        {"server": {"quorum_wait_seconds": 1e300}},
        ("server", "quorum_wait_seconds"),
        "at most 604800",
        id="quorum_wait_seconds",
    ),
    pytest.param(
        {"server": {"max_message_bytes": 2**70}},
        ("server", "max_message_bytes"),
        f"at most {MAX_MESSAGE_BYTES}",
        id="max_message_bytes",
    ),
    pytest.param(
        {"server": {"max_message_bytes": MAX_MESSAGE_BYTES + 1}},
        ("server", "max_message_bytes"),
        f"at most {MAX_MESSAGE_BYTES}",
        id="max_message_bytes-one-past",
    ),
    pytest.param(
        {"server": {"max_connections": 2**31 - 1}},
        ("server", "max_connections"),
        f"at most {MAX_INCOMING_CONNECTIONS}",
        id="max_connections-aborted-grpc",
    ),
    pytest.param(
        {"server": {"max_connections": 2**70}},
        ("server", "max_connections"),
        f"at most {MAX_INCOMING_CONNECTIONS}",
        id="max_connections",
    ),
    pytest.param(
        {"server": {"session_burst": 10**400}},
        ("server", "session_burst"),
        "in [0, 2**53]",
        id="session_burst-past-the-floats",
    ),
    pytest.param(
        {"server": {"session_burst": MAX_SESSION_BURST + 1}},
        ("server", "session_burst"),
        "in [0, 2**53]",
        id="session_burst-past-exact-floats",
    ),
    *(
        pytest.param(
            {"backend": {"name": "ckks", "key_holder": "holder", "precision": precision}},
            ("backend", "precision"),
            "above backend.value_bound = 1.0",
            id=f"precision-{precision:g}",
        )
        for precision in (1e6, 1.5)
    ),
    pytest.param(
        {"dp": {"noise_multiplier": 1e30}},
        ("dp", "noise_multiplier"),
        "[0, 10000]",
        id="noise_multiplier",
    ),
    pytest.param(
        {"dp": {"noise_multiplier": MAX_NOISE_MULTIPLIER * 1.01}},
        ("dp", "noise_multiplier"),
        "[0, 10000]",
        id="noise_multiplier-just-past",
    ),
    *(
        pytest.param(
            {"backend": backend | {"value_bound": bound}},
            ("backend", "value_bound"),
            "at most 1e+06",
            id=f"value_bound-{backend['name']}-{bound:g}",
        )
        for backend in (
            {"name": "plain"},
            {"name": "secagg+"},
            {"name": "secagg"},
            {"name": "ckks", "key_holder": "holder"},
        )
        for bound in (1e300, 1e30, MAX_CLIP * 1.01)
    ),
    *(
        pytest.param(
            {"backend": {"value_bound": bound}, "dp": dp | {"clip": bound}},
            ("backend", "value_bound"),
            "at most 1e+06",
            id=f"value_bound-and-clip-{dp['mechanism']}-{bound:g}",
        )
        for dp in ({"mechanism": "central"}, {"mechanism": "distributed"})
        for bound in (1e300, MAX_CLIP * 1.01)
    ),
    pytest.param({"dp": {"clip": 1e300}}, ("dp", "clip"), "at most 1e+06", id="clip"),
    pytest.param(
        {"dp": {"clip": MAX_CLIP * 1.01}}, ("dp", "clip"), "at most 1e+06", id="clip-just-past"
    ),
    *(
        pytest.param(
            {"federation": {"rounds": rounds}},
            ("federation", "rounds"),
            "at most 1000000000",
            id=f"rounds-{name}",
        )
        for name, rounds in (("one-past", MAX_ROUNDS + 1), ("2**70", 2**70), ("1e400", 10**400))
    ),
    pytest.param(
        {"federation": {"seed": -1}}, ("federation", "seed"), f"[0, {MAX_SEED}]", id="seed-negative"
    ),
    pytest.param(
        {"federation": {"seed": MAX_SEED + 1}},
        ("federation", "seed"),
        f"[0, {MAX_SEED}]",
        id="seed-past-32-bits",
    ),
]


@pytest.mark.parametrize(("sections", "place", "bound"), REFUSED)
def test_a_value_past_its_bound_is_refused_in_one_line_naming_the_key(
    sections: dict[str, dict[str, Any]], place: tuple[str, str], bound: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _load(**sections)
    message = str(refused.value)
    assert one_line(message), message
    assert names_key(message, *place), message
    assert bound in message, message


def test_the_bounds_themselves_load_and_the_longest_wait_is_waitable() -> None:
    """At every bound the file loads, and the longest wait it configures (the key
    holder's: quorum wait + round + grace) stays far inside what threading takes."""
    config = _load(
        federation={"seed": MAX_SEED, "rounds": MAX_ROUNDS},
        dp={"noise_multiplier": MAX_NOISE_MULTIPLIER},
        deadlines={"phase_seconds": WEEK, "training_seconds": WEEK, "round_seconds": WEEK},
        server={
            "quorum_wait_seconds": WEEK,
            "max_message_bytes": MAX_MESSAGE_BYTES,
            "max_connections": MAX_INCOMING_CONNECTIONS,
            "session_burst": MAX_SESSION_BURST,
        },
    )
    assert config.seed == MAX_SEED and config.deadlines.round_seconds == WEEK
    assert config.rounds == MAX_ROUNDS
    for mechanism in ("central", "distributed"):
        clipped = _load(
            backend={"value_bound": MAX_CLIP}, dp={"mechanism": mechanism, "clip": MAX_CLIP}
        )
        assert clipped.backend.value_bound == MAX_CLIP and clipped.dp is not None
        assert clipped.dp.clip == MAX_CLIP
    assert key_holder_idle(config) < threading.TIMEOUT_MAX / 1000
    ckks = {"name": "ckks", "key_holder": "holder", "value_bound": 2.0, "precision": 2.0}
    assert _load(backend=ckks).backend.precision == 2.0
    assert _load(federation={"seed": 0}).seed == 0


def test_the_transport_refuses_a_connection_cap_grpc_would_abort_on() -> None:
    """The transport's own check, for a caller that builds it without a config: 2**31 - 1
    reached gRPC's connection quota, whose failed check aborts the process."""
    from secagg.transport.grpc_transport import GrpcServerTransport

    with pytest.raises(ConfigurationError, match="max_connections must be at most"):
        GrpcServerTransport(
            "127.0.0.1:0",
            server_credentials=None,
            allow_insecure=True,
            max_message_bytes=1 << 20,
            identify=lambda context: "branch",
            max_connections=2**31 - 1,
        )


def test_the_largest_session_burst_is_one_the_transport_admits_with() -> None:
    """The bound is one the transport's token bucket counts exactly: a session is
    admitted and takes one token (past 2**53, taking one would leave the count as it
    was; at 10**400 the bucket raised OverflowError at every admission)."""
    from secagg.transport.grpc_server import _SessionRate

    config = _load(server={"session_burst": MAX_SESSION_BURST})
    bucket = _SessionRate(config.server.session_burst, config.server.session_rate)
    assert bucket.admit("branch-1", now=0.0) == (0.0, 0)
    assert bucket.admit("branch-1", now=0.0) == (0.0, 0)
    assert bucket._buckets["branch-1"][0] == MAX_SESSION_BURST - 2


def test_the_rounds_bound_is_the_clis() -> None:
    """A federation file and ``secagg client --rounds`` (and ``privacy -T``) stop at the
    same count: the config layer cannot import the CLI's constant, so this holds them
    equal."""
    from secagg.apps.commands.common import MAX_FEDERATION_ROUNDS

    assert MAX_ROUNDS == MAX_FEDERATION_ROUNDS == 10**9


@pytest.mark.parametrize("rate", [5e-324, 1e-300, 1e-7, MIN_SESSION_RATE * 0.999, 0.0, -1.0])
def test_a_session_rate_slower_than_one_a_week_is_refused(rate: float) -> None:
    """``session_rate = 5e-324`` loaded, and a refused branch was told "retry in inf s"
    (the transport's wait is ``(1 - tokens) / rate``): at least one session a week now."""
    with pytest.raises(ConfigurationError) as refused:
        _load(server={"session_rate": rate})
    message = str(refused.value)
    assert one_line(message) and names_key(message, "server", "session_rate"), message
    assert "at least 1.65e-06 (one a week" in message, message


def test_the_slowest_session_rate_tells_a_refused_branch_a_finite_wait() -> None:
    """At the least rate an emptied bucket's wait is at most a week, the longest
    deadline a federation has, and prints as a number."""
    from secagg.transport.grpc_server import _SessionRate

    config = _load(server={"session_rate": MIN_SESSION_RATE, "session_burst": 1})
    bucket = _SessionRate(config.server.session_burst, config.server.session_rate)
    assert bucket.admit("branch-1", now=0.0) == (0.0, 0)
    wait, refusals = bucket.admit("branch-1", now=0.0)
    assert refusals == 1 and wait == pytest.approx(WEEK) and f"{wait:.1f}" == "604800.0"
