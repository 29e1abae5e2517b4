"""secagg.aggregation.policy: a branch refuses any round weaker than its own policy
(security review H2), where its client side is built from the spec."""

from __future__ import annotations

import os
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import get_backend
from secagg.aggregation.ckks import CKKSSpec, DesignPoint
from secagg.aggregation.masking import MaskingSpec
from secagg.aggregation.policy import BranchPolicy, parse_fingerprint
from secagg.dp.distributed import DistributedDiscreteGaussian, NoiseShareRound
from secagg.errors import ConfigurationError, PolicyRefused


def _refused(setting: str, spec: object, policy: BranchPolicy) -> PolicyRefused:
    with pytest.raises(PolicyRefused) as caught:
        spec.check_policy(policy)  # type: ignore[attr-defined]
    assert caught.value.setting == f"branch.{setting}", caught.value
    assert f"branch.{setting}" in str(caught.value)
    return caught.value


def _ddg_spec(z: float = 1.0, clip: float = 1.0, expected: int = 10) -> MaskingSpec:
    mechanism = DistributedDiscreteGaussian(
        dimension=16, clip=clip, noise_multiplier=z, expected_clients=expected, bits=32
    )
    share = NoiseShareRound(mechanism, os.urandom(16))
    return get_backend("secagg+").plan(10, 16, noise_share=share)  # type: ignore[return-value]


def _ckks_spec(fingerprint: bytes) -> CKKSSpec:
    return CKKSSpec(4, 8, DesignPoint(4, 1.0, 1e-6), fingerprint, b"public context")


# --- H2: the server's choice of backend, key and DP parameters ------------------------


def test_h2_plain_backend_refused_by_default() -> None:
    spec = get_backend("plain").plan(4, 8)
    _refused("allow_plain", spec, BranchPolicy())
    BranchPolicy(allow_plain=True).check_backend("plain")  # the explicit opt-in


def test_h2_plain_refused_before_the_client_side_exists() -> None:
    """backend.client checks first: no PlainClient, so no update can be handed to one."""
    backend = get_backend("plain")
    with pytest.raises(PolicyRefused, match="allow_plain"):
        backend.client(backend.plan(4, 8), 0, policy=BranchPolicy())
    client = backend.client(backend.plan(4, 8), 0, policy=BranchPolicy(allow_plain=True))
    assert client.set_input(np.zeros(8))


def test_h2_ckks_needs_the_pinned_key_holder() -> None:
    pin = os.urandom(32)
    _refused("key_holder_fingerprint", _ckks_spec(pin), BranchPolicy())
    _refused(
        "key_holder_fingerprint",
        _ckks_spec(os.urandom(32)),
        BranchPolicy(key_holder_fingerprint=pin),
    )
    _ckks_spec(pin).check_policy(BranchPolicy(key_holder_fingerprint=pin))


def test_h2_backend_outside_the_allowed_list_refused() -> None:
    spec = get_backend("secagg").plan(4, 8)
    _refused("backends", spec, BranchPolicy(backends=("secagg+",)))


def test_h2_unclipped_or_larger_clip_refused() -> None:
    policy = BranchPolicy(max_clip=1.0)
    with pytest.raises(PolicyRefused, match="does not clip"):
        policy.check_clip(None)
    with pytest.raises(PolicyRefused, match="clip 2 > 1"):
        policy.check_clip(2.0)
    with pytest.raises(PolicyRefused):
        policy.check_clip(float("nan"))
    policy.check_clip(0.5)
    BranchPolicy().check_clip(None)  # no requirement configured


def test_h2_server_shrinking_the_noise_share_refused() -> None:
    policy = BranchPolicy(min_noise_multiplier=1.0, max_clip=1.0, expected_clients=10)
    _ddg_spec().check_policy(policy)
    _refused("min_noise_multiplier", _ddg_spec(z=1e-6), policy)  # the review's 1e-6
    _refused("max_clip", _ddg_spec(clip=4.0), policy)
    _refused("expected_clients", _ddg_spec(expected=1000), policy)
    # a round with no share of the branch's own: the branch cannot check any noise
    _refused("min_noise_multiplier", get_backend("secagg+").plan(10, 16), policy)


def test_passive_round_refused_when_the_branch_requires_the_active_variant() -> None:
    _refused(
        "require_active", get_backend("secagg+").plan(10, 16), BranchPolicy(require_active=True)
    )


def test_oversized_rounds_refused() -> None:
    _refused("max_clients", get_backend("secagg+").plan(50, 4), BranchPolicy(max_clients=20))
    _refused("max_dimension", get_backend("secagg+").plan(5, 64), BranchPolicy(max_dimension=32))
    _refused(
        "expected_clients", get_backend("secagg+").plan(50, 4), BranchPolicy(expected_clients=10)
    )


def test_refusal_survives_the_spec_codec() -> None:
    """What a branch checks is what it decoded: a round spec over the wire."""
    from secagg.aggregation import decode_spec
    from secagg.aggregation.spec import encode_spec

    spec = decode_spec(encode_spec(_ddg_spec(z=0.01)))
    _refused("min_noise_multiplier", spec, BranchPolicy(min_noise_multiplier=0.5))


# --- the [branch] table ------------------------------------------------------------------


def test_policy_from_a_branch_table() -> None:
    pin = os.urandom(32)
    policy = BranchPolicy.from_dict(
        {
            "key_holder_fingerprint": ":".join(f"{b:02x}" for b in pin),
            "max_clip": 1,
            "min_noise_multiplier": 0.8,
            "expected_clients": 20,
            "require_active": True,
        }
    )
    assert policy.key_holder_fingerprint == pin and policy.max_clip == 1
    assert "plain" not in policy.backends
    assert "plain" in BranchPolicy.from_dict({"allow_plain": True}).backends


@pytest.mark.parametrize(
    ("section", "names"),
    [
        ({"max_clipp": 1.0}, "max_clipp"),
        ({"max_clip": "1.0"}, "branch.max_clip"),
        ({"max_clip": -1.0}, "branch.max_clip"),
        ({"record_sensitivity": "0.01"}, "branch.record_sensitivity"),
        ({"record_sensitivity": 0.0}, "branch.record_sensitivity"),
        ({"allow_plain": "yes"}, "branch.allow_plain"),
        ({"expected_clients": 2.5}, "branch.expected_clients"),
        ({"key_holder_fingerprint": "abc"}, "branch.key_holder_fingerprint"),
        ({"key_holder_fingerprint": "zz" * 32}, "branch.key_holder_fingerprint"),
        ({"backends": ["plain"]}, "branch.allow_plain"),
        ({"backends": "secagg"}, "branch.backends"),
        ({"corrupt_fraction": 1.5}, "branch.corrupt_fraction"),
    ],
)
def test_bad_branch_tables_name_the_key(section: dict[str, object], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        BranchPolicy.from_dict(section)


def test_fingerprint_parsing() -> None:
    raw = os.urandom(32)
    assert parse_fingerprint(raw.hex().upper()) == raw
    with pytest.raises(ConfigurationError):
        parse_fingerprint(raw.hex()[:-2])


# --- record-level distributed DP: the noise sized for one of the branch's customers --------


def _record_spec(clip: float = 0.001, z: float = 2.0, bound: float = 10.0) -> MaskingSpec:
    mechanism = DistributedDiscreteGaussian(
        dimension=16,
        clip=clip,
        noise_multiplier=z,
        expected_clients=10,
        bits=32,
        vector_bound=bound,
    )
    share = NoiseShareRound(mechanism, os.urandom(16))
    return get_backend("secagg+").plan(10, 16, noise_share=share)  # type: ignore[return-value]


def test_record_level_noise_sized_below_the_branchs_customer_is_refused() -> None:
    policy = BranchPolicy(record_sensitivity=0.001, min_noise_multiplier=2.0, expected_clients=10)
    _record_spec().check_policy(policy)
    _record_spec(clip=0.002).check_policy(policy)  # sized for more: more noise, accepted
    # the server announces a smaller per-customer change: the noise shrinks with it
    _refused("record_sensitivity", _record_spec(clip=0.0005), policy)
    # a client-level share (the clip bounds the whole vector) is not what the branch sends
    _refused("record_sensitivity", _ddg_spec(z=2.0, clip=1.0), policy)
    # no share at all: the branch's gradient sum would go into the sum un-noised
    _refused(
        "record_sensitivity",
        get_backend("secagg+").plan(10, 16),
        BranchPolicy(record_sensitivity=0.001),
    )
    _refused("min_noise_multiplier", _record_spec(z=1.0), policy)


def test_record_level_refusal_survives_the_spec_codec() -> None:
    from secagg.aggregation import decode_spec
    from secagg.aggregation.spec import encode_spec

    spec = decode_spec(encode_spec(_record_spec(clip=0.0001)))
    assert spec.noise_share.mechanism.vector_bound == 10.0  # type: ignore[attr-defined]
    _refused("record_sensitivity", spec, BranchPolicy(record_sensitivity=0.001))


# --- dp H1 (review of af7efd4), variants found still open on 2026-12-03 -----------------


def test_a_record_level_share_is_refused_by_a_branch_protecting_its_whole_update() -> None:
    """The documented policy (z floor, clip, cohort) once accepted noise sized for a
    1e-6 change per "customer" while its whole update went in clipped at 1: a share
    of 3e-7 in update units where an honest round gives 0.32."""
    from secagg.aggregation import decode_spec
    from secagg.aggregation.spec import encode_spec

    policy = BranchPolicy(min_noise_multiplier=1.0, max_clip=1.0, expected_clients=10)
    tiny = decode_spec(encode_spec(_record_spec(clip=1e-6, bound=1.0)))
    refusal = _refused("min_noise_multiplier", tiny, policy)
    assert "record_sensitivity" in str(refusal)
    # the same at a per-unit clip as large as the update's bound is a client-level share
    _ddg_spec(clip=1.0).check_policy(policy)
    # a branch that states no noise floor claims nothing about noise: it may take part
    _record_spec(clip=1e-6, bound=1.0).check_policy(BranchPolicy(expected_clients=10))


def test_max_clip_holds_the_updates_own_bound_in_a_record_level_round() -> None:
    # the per-unit clip (0.001) is far below max_clip; the update goes in at up to 10
    refusal = _refused("max_clip", _record_spec(clip=0.001), BranchPolicy(max_clip=1.0))
    assert "clip 10 > 1" in str(refusal)
    _record_spec(clip=0.001, bound=1.0).check_policy(BranchPolicy(max_clip=1.0))
    # and a record-level branch's own policy: the unit and the update both bounded
    policy = BranchPolicy(record_sensitivity=0.001, min_noise_multiplier=2.0, max_clip=10.0)
    _record_spec().check_policy(policy)
    _refused("max_clip", _record_spec(bound=20.0), policy)


@pytest.mark.parametrize(
    ("expected", "z", "accepted"),
    [
        (10**6, 1.0, False),  # the review's inflated cohort: 1/316 of the noise
        (11, 1.0, False),  # even one too many leaves the round below the floor
        (11, 1.1, True),  # ... unless z has the headroom: 1.1 sqrt(10/11) = 1.049
        (10, 1.0, True),
        (5, 1.0, True),  # fewer expected than present: more noise, never less
    ],
)
def test_a_branch_without_a_pinned_cohort_requires_its_floor_from_the_round_itself(
    expected: int, z: float, accepted: bool
) -> None:
    """Without ``expected_clients`` in its policy a branch still knows the round's size:
    noise split over more clients than that cannot reach z in any outcome."""
    from secagg.aggregation import decode_spec
    from secagg.aggregation.spec import encode_spec

    policy = BranchPolicy(min_noise_multiplier=1.0)
    spec = decode_spec(encode_spec(_ddg_spec(z=z, expected=expected)))
    if accepted:
        spec.check_policy(policy)
    else:
        refusal = _refused("expected_clients", spec, policy)
        assert "round of 10" in str(refusal)
    # a pinned cohort is the branch's own word: the round's size does not override it
    # (the noise check: a round of 10 named as its own population is refused anyway by
    # a branch expecting 10**6, whose 50 000 colluders it counts; docs/protocol.md)
    pinned = BranchPolicy(min_noise_multiplier=1.0, expected_clients=max(expected, 10))
    spec.check_noise_policy(pinned)


def test_a_record_level_share_without_its_vector_bound_is_refused_not_a_type_error() -> None:
    """The library entry point, called without ``vector_bound`` (the masking spec always
    passes it): the refusal names the setting instead of failing to format None."""
    policy = BranchPolicy(min_noise_multiplier=1.0, max_clip=1.0)
    with pytest.raises(PolicyRefused, match="min_noise_multiplier"):
        policy.check_noise_share(
            noise_multiplier=2.0, clip=1e-3, expected_clients=10, record_level=True
        )
    BranchPolicy(max_clip=1.0).check_noise_share(
        noise_multiplier=2.0, clip=1e-3, expected_clients=10, record_level=True
    )


# --- every field's type is checked, naming its key (honesty audit 2026-12-05) -----------

#: what each BranchPolicy field may hold: None (where optional), a number (float
#: fields), an integer (int fields), true/false, a list of names or 32 bytes
_KINDS = {
    "backends": "names",
    "allow_plain": "bool",
    "key_holder_fingerprint": "pin",
    "max_clip": "optional_real",
    "min_noise_multiplier": "optional_real",
    "record_sensitivity": "optional_real",
    "expected_clients": "optional_int",
    "min_threshold": "optional_int",
    "require_active": "bool",
    "corrupt_fraction": "real",
    "dropout_fraction": "real",
    "min_colluders": "int",
    "max_clients": "int",
    "max_dimension": "int",
    "federation": "name",
    "epsilon_budget": "optional_real",
    "delta": "optional_real",
}


def _wrong_for(kind: str) -> st.SearchStrategy[object]:
    """Values of a type the field does not take (whatever their range)."""
    text = st.text(max_size=8)
    junk = st.one_of(text, st.lists(st.integers(), max_size=2), st.dictionaries(text, text))
    if kind == "names":
        return st.one_of(
            text, st.none(), st.integers(), st.lists(st.integers(), min_size=1, max_size=3)
        )
    if kind == "bool":
        return st.one_of(junk, st.none(), st.integers(), st.floats())
    if kind == "name":  # a federation's name: text only
        return st.one_of(st.integers(), st.booleans(), st.binary(max_size=4), st.lists(text))
    if kind == "pin":
        return st.one_of(text, st.integers(), st.lists(st.integers(), max_size=2))
    if kind in ("real", "optional_real"):
        wrong = st.one_of(junk, st.booleans(), st.binary(max_size=4))
        return wrong if kind == "optional_real" else st.one_of(wrong, st.none())
    wrong = st.one_of(junk, st.booleans(), st.floats(), st.binary(max_size=4))
    return wrong if kind == "optional_int" else st.one_of(wrong, st.none())


def test_the_type_table_covers_every_field() -> None:
    assert set(_KINDS) == {f.name for f in fields(BranchPolicy)}


@settings(max_examples=300)
@given(data=st.data())
def test_a_wrongly_typed_field_is_a_configuration_error_naming_its_key(data: st.DataObject) -> None:
    """Before: ``corrupt_fraction="0.1"`` or ``None`` raised a bare TypeError from
    ``0 <= value < 1``, ``max_clip="1"`` one from ``math.isfinite``, ``backends="secagg+"``
    became a tuple of letters that refused every round, ``require_active="no"`` counted
    as true and ``min_threshold=2.5`` passed. Now each names ``branch.<field>``, from the
    constructor and from a parsed ``[branch]`` table alike."""
    name = data.draw(st.sampled_from(sorted(_KINDS)), label="field")
    value = data.draw(_wrong_for(_KINDS[name]), label="value")
    with pytest.raises(ConfigurationError, match=rf"^branch\.{name} must") as caught:
        BranchPolicy(**{name: value})
    assert type(caught.value) is ConfigurationError
    with pytest.raises(ConfigurationError, match=rf"^branch\.{name} must"):
        BranchPolicy.from_dict({name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("corrupt_fraction", np.float64(0.1)),
        ("max_clip", 2),  # an integer is a number
        ("expected_clients", np.int64(10)),
        ("backends", ["secagg", "secagg+"]),
        ("key_holder_fingerprint", bytes(32)),
        ("min_threshold", None),
    ],
)
def test_well_typed_values_still_pass(name: str, value: object) -> None:
    policy = BranchPolicy(**{name: value})
    assert isinstance(policy.backends, tuple)


@pytest.mark.parametrize(
    ("section", "said"),
    [
        (
            {"max_clp": 1.0},
            "unknown keys in [branch]: ['max_clp'] (did you mean 'max_clip'?)",
        ),
        (
            {"allow_plane": True, "min_treshold": 3},
            "unknown keys in [branch]: ['allow_plane', 'min_treshold'] ('allow_plane': did "
            "you mean 'allow_plain'?; 'min_treshold': did you mean 'min_threshold'?)",
        ),
        ({"weather": 1}, "unknown keys in [branch]: ['weather']"),
    ],
)
def test_an_unknown_policy_key_gets_its_likely_spelling(
    section: dict[str, object], said: str
) -> None:
    """Before: ``unknown keys in [branch]: ['max_clp']`` with no hint (review,
    2026-12-05); a key nothing is close to is still named alone."""
    with pytest.raises(ConfigurationError) as refused:
        BranchPolicy.from_dict(section)
    assert str(refused.value) == said
