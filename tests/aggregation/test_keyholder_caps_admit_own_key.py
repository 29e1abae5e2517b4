"""A key holder whose own caps (``[key_holder] max_clients`` / ``max_value_bound`` /
``min_precision``) can never admit its own key says so at start, in one line.

Before, a key holder started over a key file made for 3 clients at value bound 1 and
precision 10⁻⁶, with ``max_clients = 2`` (or ``max_value_bound = 0.5``, or
``min_precision = 1e-5``) in its table, started, and then refused every key request of
its federation's honest server, one round at a time: the caps are checked against the
request's design point, which must be the key's. The same held with the federation's
config and no key file, whose design point is what its server asks. Now it refuses to
start, naming the key; caps looser than the federation's design point (which holds
instead, so they have no effect) are logged as a warning at start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tenseal")

from secagg.aggregation.ckks import CKKSBackend
from secagg.aggregation.keyholder_policy import KeyHolderRefusal
from secagg.errors import ConfigurationError

CLIENTS = 3
D = 8
#: each cap one step below the federation's design point (3 clients, B = 1, 10⁻⁶)
BELOW = [
    ({"max_clients": 2}, "max_clients: 2 can never admit"),
    ({"max_value_bound": 0.5}, "max_value_bound: 0.5 can never admit"),
    ({"min_precision": 1e-5}, "min_precision: 1e-05 can never admit"),
]


def _federation() -> CKKSBackend:
    """The backend a federation's config of 3 branches at the defaults builds."""
    return CKKSBackend(value_bound=1.0, max_clients=CLIENTS)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("caps-key") / "keyholder.key"
    _federation().make_helper_key(path)
    return path


def _round(helper: Any) -> bytes:
    """The federation's honest server's key request of round 1, answered."""
    backend = _federation()
    (request,) = backend.server(backend.plan(CLIENTS, D)).start()
    return helper.handle(request.payload, round_number=1)


@pytest.mark.parametrize(("caps", "said"), BELOW)
def test_caps_below_a_pinned_keys_design_refuse_to_start(
    key: Path, tmp_path: Path, caps: dict[str, Any], said: str
) -> None:
    settings = {"key": str(key), "state": str(tmp_path / "state.json"), **caps}
    with pytest.raises(ConfigurationError, match=rf"\[key_holder\] {said.split(':')[0]}") as caught:
        helper = _federation().helper(settings)
        _round(helper)  # before: started, then this refused (and every round after it)
    assert not isinstance(caught.value, KeyHolderRefusal)  # at start, not per request
    text = str(caught.value)
    assert "\n" not in text and said in text and "refusing to start" in text
    assert not (tmp_path / "state.json").exists()  # nothing written


@pytest.mark.parametrize(("caps", "said"), BELOW)
def test_caps_below_the_federations_design_refuse_to_start(caps: dict[str, Any], said: str) -> None:
    """With the config and no key file the key is made for the federation's design point
    at most, which is what its honest server asks: caps below it refuse every round."""
    with pytest.raises(ConfigurationError, match=rf"\[key_holder\] {said.split(':')[0]}") as caught:
        helper = _federation().helper(caps)
        _round(helper)
    assert not isinstance(caught.value, KeyHolderRefusal)
    assert "\n" not in str(caught.value) and said in str(caught.value)


def test_caps_at_the_design_point_start_and_serve(key: Path, tmp_path: Path) -> None:
    exact = {"max_clients": CLIENTS, "max_value_bound": 1.0, "min_precision": 1e-6}
    for settings in ({"key": str(key), "state": str(tmp_path / "s.json"), **exact}, exact):
        helper = _federation().helper(settings)
        assert _round(helper)[4:6] == bytes([4, 2])  # version 4, kind 2: the public key


@pytest.mark.parametrize(
    ("caps", "key_name"),
    [
        ({"max_clients": 1000}, "max_clients"),
        ({"max_value_bound": 4.0}, "max_value_bound"),
        ({"min_precision": 1e-9}, "min_precision"),
    ],
)
def test_caps_looser_than_the_federations_design_are_warned_about(
    caplog: pytest.LogCaptureFixture, caps: dict[str, Any], key_name: str
) -> None:
    """Decided: warn, not refuse. Such a cap is harmless (the federation's design point
    holds, and it is stricter), but an operator who set it expecting it to admit a
    larger federation should learn at start that it does not, not from refused rounds."""
    with caplog.at_level(logging.WARNING, logger="secagg.keyholder"):
        helper = _federation().helper(caps)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and f"[key_holder] {key_name}" in warned[0]
    assert "no effect" in warned[0]
    assert _round(helper)[4:6] == bytes([4, 2])


def test_no_warning_without_caps_or_without_a_design_point(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="secagg.keyholder"):
        _federation().helper()  # the federation's config, no caps of its own
        CKKSBackend().helper({"max_clients": 1000, "min_precision": 1e-9})  # no design point
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("with_key", [True, False])
def test_a_minimum_no_round_of_the_design_can_reach_refuses_to_start(
    key: Path, tmp_path: Path, with_key: bool
) -> None:
    """``min_contributions = 4`` over a federation of 3: with the config and no key file
    the key holder started and refused every round ("a design point of 3 client(s) can
    never reach ..."); over a key file it was refused at start by the key's loader, in a
    line that did not name the [key_holder] key. Now both say so at start, naming it."""
    settings: dict[str, Any] = {"min_contributions": 4}
    if with_key:
        settings |= {"key": str(key), "state": str(tmp_path / "state.json")}
    with pytest.raises(ConfigurationError, match=r"^\[key_holder\] min_contributions") as caught:
        helper = _federation().helper(settings)
        _round(helper)
    assert not isinstance(caught.value, KeyHolderRefusal)
    assert "\n" not in str(caught.value) and "refusing to start" in str(caught.value)
