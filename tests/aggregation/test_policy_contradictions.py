"""A branch's policy whose settings contradict each other is refused where it is built.

Hostile review of the branch's own policy (2026-12-06): ``secagg client`` refused
``--allow-plain`` beside ``--require-active`` or a pinned key holder, but a program
building :class:`~secagg.aggregation.policy.BranchPolicy` itself got a policy that took a
plain round whatever its pin or its active requirement said: the server it guarded
against ran plain and received the update in clear. The constructor now refuses the pair
with :class:`~secagg.errors.ContradictoryPolicy` naming both keys.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from secagg.aggregation import get_backend
from secagg.aggregation.ckks import CKKSSpec, DesignPoint
from secagg.aggregation.policy import BranchPolicy
from secagg.errors import ConfigurationError, ContradictoryPolicy, PolicyRefused
from secagg.protocol.config import DEFAULT_CORRUPT_FRACTION
from secagg.protocol.graph_params import minimum_threshold

PIN = bytes(range(32))

#: a guard of the update against the server that a plain round does not have
GUARDS = [
    pytest.param({"require_active": True}, "require_active", id="active"),
    pytest.param({"key_holder_fingerprint": PIN}, "key_holder_fingerprint", id="pin"),
]


@pytest.mark.parametrize(("guard", "key"), GUARDS)
def test_plain_beside_a_guard_is_refused_naming_both_keys(guard: dict, key: str) -> None:
    with pytest.raises(ContradictoryPolicy) as caught:
        BranchPolicy(allow_plain=True, **guard)
    error = caught.value
    assert error.settings == ("allow_plain", key)
    message = str(error)
    assert f"branch.allow_plain with branch.{key}:" in message and "in clear" in message
    assert "\n" not in message
    assert isinstance(error, ConfigurationError)  # every caller's catch still holds


@pytest.mark.parametrize(("guard", "key"), GUARDS)
def test_no_way_of_building_it_takes_a_plain_round(guard: dict, key: str) -> None:
    """The file's table and a changed copy of a policy are refused too; the evidence of
    the old behaviour: the policy was built, and ``backend.client`` took the plain round
    and encoded the update for the server in clear."""
    table = {"allow_plain": True, key: PIN.hex() if key == "key_holder_fingerprint" else True}
    with pytest.raises(ContradictoryPolicy):
        BranchPolicy.from_dict(table)
    with pytest.raises(ContradictoryPolicy):
        dataclasses.replace(BranchPolicy(**guard), allow_plain=True)
    with pytest.raises(ContradictoryPolicy):
        dataclasses.replace(BranchPolicy(allow_plain=True), **guard)


@pytest.mark.parametrize(
    "settings",
    [{"allow_plain": True}, {"require_active": True}, {"key_holder_fingerprint": PIN}, {}],
    ids=["plain", "active", "pin", "default"],
)
def test_each_alone_is_a_policy_and_plain_is_taken_only_when_allowed(settings: dict) -> None:
    policy = BranchPolicy(**settings)
    backend = get_backend("plain")
    spec = backend.plan(4, 8)
    if policy.allow_plain:
        assert backend.client(spec, 0, policy=policy).set_input(np.zeros(8))
    else:
        with pytest.raises(PolicyRefused, match=r"branch\.allow_plain"):
            backend.client(spec, 0, policy=policy)


def test_a_bad_value_is_named_before_the_contradiction() -> None:
    """Checked last: a table with a wrong value and the pair names the wrong value."""
    with pytest.raises(ConfigurationError, match=r"branch\.max_clip") as caught:
        BranchPolicy(allow_plain=True, require_active=True, max_clip=-1.0)
    assert not isinstance(caught.value, ContradictoryPolicy)


# --- a policy under which no backend's round can be taken ----------------------------

#: (settings, the keys named): each constructed before, and refused every round it saw
NO_BACKEND_SERVES = [
    pytest.param({"backends": ()}, ("branch.backends",), id="none"),
    pytest.param({"backends": ("ckks",)}, ("branch.backends", "key_holder"), id="ckks-unpinned"),
    pytest.param(
        {"backends": ("ckks",), "key_holder_fingerprint": PIN, "min_noise_multiplier": 1.0},
        ("branch.backends", "branch.min_noise_multiplier"),
        id="ckks-floor",
    ),
    pytest.param(
        {"backends": ("ckks",), "key_holder_fingerprint": PIN, "record_sensitivity": 0.1},
        ("branch.backends", "branch.record_sensitivity"),
        id="ckks-record",
    ),
    pytest.param(
        {
            "backends": ("ckks",),
            "key_holder_fingerprint": PIN,
            "epsilon_budget": 1.0,
            "delta": 1e-6,
        },
        ("branch.backends", "branch.epsilon_budget"),
        id="ckks-budget",
    ),
    pytest.param(
        {"backends": ("plain",), "allow_plain": True, "min_noise_multiplier": 1.0},
        ("branch.backends", "branch.min_noise_multiplier"),
        id="plain-floor",
    ),
]


@pytest.mark.parametrize(("settings", "named"), NO_BACKEND_SERVES)
def test_a_policy_no_round_can_satisfy_is_refused_where_it_is_built(
    settings: dict, named: tuple[str, ...]
) -> None:
    """Each refused every round instead (checked on the policy built without the new
    check): a branch started, dialled, and stopped at its first round (exit 3), for a
    mistake its policy alone showed."""
    with pytest.raises(ConfigurationError) as caught:
        BranchPolicy(**settings)
    message = str(caught.value)
    assert all(word in message for word in named), message
    assert "every round would be refused" in message and "\n" not in message


@pytest.mark.parametrize(
    ("settings", "taken"),
    [
        ({"backends": ("ckks",), "key_holder_fingerprint": PIN}, "ckks"),
        ({"backends": ("plain",), "allow_plain": True}, "plain"),
        ({"backends": ("ckks", "plain"), "allow_plain": True}, "plain"),  # ckks unpinned
        # a masking backend carries any requirement (its rounds: the oracle's property)
        ({"backends": ("secagg+",), "min_noise_multiplier": 1.0}, None),
        ({"backends": ("secagg", "ckks"), "epsilon_budget": 1.0, "delta": 1e-6}, None),
    ],
    ids=["ckks-pinned", "plain", "plain-beside-ckks", "masking-floor", "masking-budget"],
)
def test_a_policy_some_round_satisfies_is_built(settings: dict, taken: str | None) -> None:
    policy = BranchPolicy(**settings)
    if taken == "ckks":
        CKKSSpec(4, 8, DesignPoint(4, 1.0, 1e-6), PIN, b"a public context").check_policy(policy)
    elif taken == "plain":
        get_backend("plain").plan(4, 8).check_policy(policy)


# --- no masking round private under the branch's own assumptions ------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"require_active": True, "expected_clients": 2}, ("require_active", "expected_clients")),
        ({"require_active": True, "max_clients": 2}, ("require_active", "max_clients")),
        (
            {"require_active": True, "expected_clients": 2, "backends": ("secagg", "secagg+")},
            ("require_active", "expected_clients"),
        ),
        (
            {"corrupt_fraction": 0.999, "expected_clients": 10},
            ("corrupt_fraction", "expected_clients"),
        ),
        ({"expected_clients": 1}, ("backends", "expected_clients")),
    ],
    ids=["active-expected", "active-max", "active-masking-only", "colluders", "one-client"],
)
def test_no_masking_round_private_under_the_branchs_assumptions_is_refused(
    settings: dict, named: tuple[str, str]
) -> None:
    """A two-bank federation requiring the active variant (no threshold keeps 2 private:
    its active rounds are refused as round_spec, its passive ones by require_active), a
    corrupt fraction no threshold of 10 clients withstands, a cohort of 1: before, each
    policy was built, and every masking round, and every unpinned CKKS round, refused."""
    with pytest.raises(ContradictoryPolicy) as caught:
        BranchPolicy(**settings)
    assert caught.value.settings == named
    assert "every masking round would be refused" in str(caught.value)
    cohort = settings.get("expected_clients", settings.get("max_clients"))
    if cohort >= 2:  # the evidence: the branch's own rule finds no threshold for it
        assert (
            minimum_threshold(
                cohort,
                cohort - 1,
                semi_malicious=bool(settings.get("require_active")),
                corrupt_fraction=settings.get("corrupt_fraction", DEFAULT_CORRUPT_FRACTION),
            )
            is None
        )


def test_a_pinned_ckks_round_serves_where_no_masking_round_does() -> None:
    policy = BranchPolicy(require_active=True, expected_clients=2, key_holder_fingerprint=PIN)
    CKKSSpec(2, 8, DesignPoint(2, 1.0, 1e-6), PIN, b"a public context").check_policy(policy)
    BranchPolicy(require_active=True, expected_clients=3)  # an active round of 3 is private
    BranchPolicy(corrupt_fraction=0.999, expected_clients=1000)  # t = 1000 of 1000 is


@pytest.mark.parametrize(
    "settings",
    [
        {"expected_clients": 1, "key_holder_fingerprint": PIN},
        {"expected_clients": 1, "key_holder_fingerprint": PIN, "backends": ("ckks",)},
    ],
    ids=["masking-and-ckks", "ckks-only"],
)
def test_a_pinned_key_holder_does_not_serve_a_cohort_of_one(settings: dict) -> None:
    """A CKKS round of one is refused (its sum is the branch's update: 2026-12-07), so a
    pinned key holder no longer makes ``expected_clients = 1`` a policy some round
    satisfies: it was built, and then refused every round it was offered."""
    with pytest.raises(ContradictoryPolicy) as caught:
        BranchPolicy(**settings)
    assert caught.value.settings == ("backends", "expected_clients")
    assert "round of one" in str(caught.value)
    policy = BranchPolicy(key_holder_fingerprint=PIN, expected_clients=2)
    alone = CKKSSpec(1, 8, DesignPoint(2, 1.0, 1e-6), PIN, b"a public context")
    with pytest.raises(PolicyRefused, match="round of 1 client"):  # the round it would get
        alone.check_policy(policy)
