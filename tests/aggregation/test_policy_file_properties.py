"""A party's own policy file: any mistake in it is one line naming the key.

Hypothesis writes ``[branch]`` and ``[key_holder]`` tables as TOML text (a valid table
of random values, then one key given a value outside what the docs say it takes: another
TOML type, a date, a table, an array, 0, a negative, nan, inf, a huge integer, a fraction
where a count belongs, a misspelt backend, or an unknown key), parses it as the party
does (:mod:`tomllib`) and reads it with the policy's ``from_dict``. The documented
ranges are docs/deployment.md's for ``[branch]`` and :meth:`KeyHolderPolicy.from_dict
<secagg.aggregation.keyholder_policy.KeyHolderPolicy.from_dict>`'s for ``[key_holder]``;
a valid table must be read as written.
"""

from __future__ import annotations

import datetime
import math
import os
import tomllib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.keyholder_policy import KeyHolderPolicy
from secagg.aggregation.policy import DEFAULT_MAX_CLIENTS, MAX_CLIP, BranchPolicy
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.errors import ConfigurationError
from secagg.protocol.config import (
    DEFAULT_CORRUPT_FRACTION,
    DEFAULT_DROPOUT_FRACTION,
    DEFAULT_MIN_COLLUDERS,
)
from secagg.protocol.graph_params import minimum_threshold
from tests._config_fuzz import toml_value

PROPERTY = settings(max_examples=int(os.environ.get("POLICY_EXAMPLES", "300")), deadline=None)
PIN_TEXT = "ab" * 32


def read(table: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` written as the ``[table]`` of a file, and parsed back."""
    text = f"[{table}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items())
    return tomllib.loads(text)[table]


#: values of the wrong TOML type for any key (each key's own wrong values come below)
OTHER_TYPES: list[Any] = [
    "1",
    "",
    True,
    [1, 2],
    [],
    {"a": 1},
    datetime.date(2026, 12, 5),
    datetime.datetime(2026, 12, 5, 12, 0),
]

#: per ``[branch]`` key: (valid values, invalid values of the key's own type)
POSITIVE = ([0.5, 1, 2.5, 1e-3], [0.0, 0, -1.0, -1, math.nan, math.inf, -math.inf])
BRANCH: dict[str, tuple[list[Any], list[Any]]] = {
    "backends": (
        [["secagg"], ["secagg", "secagg+", "ckks"], ["secagg+"]],
        [["secagg", 1], ["secagg", "ckks", ["x"]], ["cks"], ["SecAgg+"], ["secagg +"]],
    ),
    "allow_plain": ([True, False], []),
    "key_holder_fingerprint": (
        [PIN_TEXT, ":".join(["ab"] * 32), PIN_TEXT.upper()],
        ["ab" * 31, "ab" * 33, "zz" * 32, "", "0x" + "ab" * 31],
    ),
    # past the largest clip or noise multiplier a federation can set: no round satisfies
    # them (upper-bounds review, 2026-12-06)
    "max_clip": (POSITIVE[0] + [MAX_CLIP], POSITIVE[1] + [1e300, MAX_CLIP * 1.01]),
    "min_noise_multiplier": (
        POSITIVE[0] + [MAX_NOISE_MULTIPLIER],
        POSITIVE[1] + [1e300, MAX_NOISE_MULTIPLIER * 1.01],
    ),
    "record_sensitivity": (POSITIVE[0] + [MAX_CLIP], POSITIVE[1] + [1e300, MAX_CLIP * 1.01]),
    "expected_clients": ([1, 10, 10**6], [0, -1, 2.0, 2.5, math.inf, 10**6 + 1, 2**40]),
    # more share holders than the largest round secagg plans (whatever max_clients says)
    "min_threshold": ([1, 7], [0, -3, 1.5, math.nan, 10**6 + 1]),
    "require_active": ([True, False], []),
    "corrupt_fraction": ([0.0, 0, 0.05, 0.999], [1.0, 1, -0.1, 2.0, math.nan, math.inf]),
    "dropout_fraction": ([0.0, 0.1, 0.5], [1.0, -0.5, math.nan, -math.inf]),
    "min_colluders": ([0, 2, 100], [-1, 2.0, 0.5]),
    "max_clients": ([2, 100_000, 10**6], [1, 0, -5, 100.0, 10**6 + 1]),
    "max_dimension": ([1, 2**28], [0, -1, 1e9]),
    "federation": (["fed-a", "a", "A.b_c-9", "x" * 64], ["", "x" * 65, "a b", "-a", "é", "a\n"]),
}

#: per ``[key_holder]`` key (its table's keys, without the key file the CLI reads)
KEY_HOLDER: dict[str, tuple[list[Any], list[Any]]] = {
    # 1e10: the most central noise a federation can plan; 1e300 left every sum noise
    "noise_stddev": ([0.0, 0, 1.0, 3, 1e10], [-1.0, -1, math.nan, math.inf, 1e300, 10**11]),
    # above the most clients a round can have (10^6) no round could be decrypted
    "min_contributions": ([2, 3, 1000, 10**6], [1, 0, -2, 2.0, 2.5, 10**6 + 1, 10**400]),
    "max_decryptions": ([1, 500], [0, -1, 1.0, math.inf]),
    "dimension": ([1, 1000, 2**32 - 1], [0, -1, 2**32, 10.0]),
    "state": (["keyholder-state.json", "/srv/kh/state.json"], [""]),
    "federation": (["fed-a"], ["", "a b", "x" * 65]),
}


@st.composite
def tables(
    draw: st.DrawFn, keys: dict[str, tuple[list[Any], list[Any]]]
) -> tuple[dict[str, Any], str | None]:
    """A table of valid values for some keys, and the key made invalid (None: none)."""
    chosen = draw(st.lists(st.sampled_from(sorted(keys)), unique=True, max_size=len(keys)))
    values = {key: draw(st.sampled_from(keys[key][0])) for key in chosen}
    spoiled = draw(st.none() | st.sampled_from(sorted(keys)) | st.just("unknown"))
    if spoiled == "unknown":
        spoiled = draw(st.sampled_from(["max_clp", "backend", "noise", "x"]))
        values[spoiled] = draw(st.sampled_from([1, "a", True]))
    elif spoiled is not None:
        valid = keys[spoiled][0]
        # another type: not one of the key's own (True for a flag, "1" for a name or path)
        other = [v for v in OTHER_TYPES if type(v) not in {type(x) for x in valid}]
        values[spoiled] = draw(st.sampled_from(keys[spoiled][1] + other))
    return values, spoiled


def _threshold_unsatisfiable(values: dict[str, Any]) -> bool:
    """Whether a valid table's ``min_threshold`` exceeds the largest round it accepts
    (``max_clients``, or a smaller ``expected_clients``)."""
    if "min_threshold" not in values:
        return False
    most = min(
        values.get("max_clients", DEFAULT_MAX_CLIENTS), values.get("expected_clients", 2**63)
    )
    return bool(values["min_threshold"] > most)


def _plain_beside_a_guard(values: dict[str, Any]) -> bool:
    """Whether a valid table allows plain beside a guard a plain round does not have
    (``require_active`` or a pinned key holder): a contradiction, refused naming both."""
    guarded = values.get("require_active") is True or "key_holder_fingerprint" in values
    return values.get("allow_plain") is True and guarded


def _no_round_without_a_private_threshold(values: dict[str, Any]) -> str | None:
    """The cohort key (``max_clients`` or a smaller ``expected_clients``) of a valid table
    under which no masking round is private by the branch's own rule (docs/protocol.md:
    ``graph_params.minimum_threshold`` of the complete graph, the loosest, for the
    largest round it takes; a round has 2 clients at least), when no pinned CKKS round
    or plain round serves either (a noise key refuses those, and a CKKS round of one is
    refused: a cohort of 1 has none, since 2026-12-07); None otherwise."""
    cohort, key = values.get("max_clients", DEFAULT_MAX_CLIENTS), "max_clients"
    if values.get("expected_clients", cohort) < cohort:
        cohort, key = values["expected_clients"], "expected_clients"
    own_noise = "min_noise_multiplier" in values or "record_sensitivity" in values
    ckks = "ckks" in values.get("backends", ["ckks"])
    if ckks and "key_holder_fingerprint" in values and not own_noise and cohort >= 2:
        return None
    if values.get("allow_plain") is True and not own_noise:
        return None  # a plain round serves
    if cohort >= 2:
        minimum = minimum_threshold(
            cohort,
            cohort - 1,
            semi_malicious=values.get("require_active") is True,
            corrupt_fraction=values.get("corrupt_fraction", DEFAULT_CORRUPT_FRACTION),
            dropout_fraction=values.get("dropout_fraction", DEFAULT_DROPOUT_FRACTION),
            min_colluders=values.get("min_colluders", DEFAULT_MIN_COLLUDERS),
        )
        if minimum is not None:
            return None
    return key


@given(tables(BRANCH))
@PROPERTY
def test_a_branch_table_is_read_as_written_or_refused_naming_the_key(
    case: tuple[dict[str, Any], str | None],
) -> None:
    values, spoiled = case
    section = read("branch", values)
    if spoiled is None and _threshold_unsatisfiable(values):
        spoiled = "min_threshold"  # valid alone, but no round the table accepts has that many
    if spoiled is None and _plain_beside_a_guard(values):
        spoiled = "allow_plain"  # valid alone, but beside a guard plain rounds do not have
    if spoiled is None:
        # valid alone, but no masking round it takes is private under its assumptions
        spoiled = _no_round_without_a_private_threshold(values)
    if spoiled is None:
        policy = BranchPolicy.from_dict(section)
        for key, value in values.items():
            got = getattr(policy, key)
            if key == "key_holder_fingerprint":
                assert got == bytes.fromhex(PIN_TEXT)
            elif key == "backends":
                assert got[: len(value)] == tuple(value)
            else:
                assert got == value, key
        return
    with pytest.raises(ConfigurationError) as caught:
        BranchPolicy.from_dict(section)
    message = str(caught.value)
    assert "\n" not in message, message
    assert spoiled in message, f"{spoiled}: {message}"


@given(tables(KEY_HOLDER))
@PROPERTY
def test_a_key_holder_table_is_read_as_written_or_refused_naming_the_key(
    case: tuple[dict[str, Any], str | None],
) -> None:
    values, spoiled = case
    noised = isinstance(values.get("noise_stddev"), int | float) and not isinstance(
        values.get("noise_stddev"), bool
    )
    noised = noised and values["noise_stddev"] > 0 and spoiled != "noise_stddev"
    # documented: max_decryptions is required when noise_stddev > 0
    missing_cap = noised and "max_decryptions" not in values
    section = read("key_holder", values)
    if spoiled is None and not missing_cap:
        policy = KeyHolderPolicy.from_dict(section)
        for key, value in values.items():
            got = policy.state_path if key == "state" else getattr(policy, key)
            assert (str(got) if key == "state" else got) == value, key
        return
    with pytest.raises(ConfigurationError) as caught:
        KeyHolderPolicy.from_dict(section)
    message = str(caught.value)
    assert "\n" not in message, message
    named = {spoiled} if spoiled is not None else set()
    named |= {"max_decryptions"} if missing_cap else set()
    assert any(key in message for key in named), f"{sorted(named)}: {message}"


@pytest.mark.parametrize(
    ("names", "hint"),
    [
        (["cks"], "did you mean 'ckks'?"),
        (["secagg", "SecAgg+"], "did you mean 'secagg+'?"),
        (["secagg +"], "did you mean 'secagg+'?"),
        (["homomorphic"], "known: plain, secagg, secagg+, ckks"),
    ],
)
def test_a_misspelt_backend_is_a_mistake_in_the_file_not_a_refused_round(
    names: list[str], hint: str
) -> None:
    """Found by the property above: ``backends = ["cks"]`` was read as written, and the
    branch refused every CKKS round as weaker than its policy (exit 3, mid-federation)
    instead of naming the mistake at start (exit 2). All four failed before."""
    with pytest.raises(ConfigurationError, match=r"branch\.backends") as caught:
        BranchPolicy.from_dict(read("branch", {"backends": names}))
    assert hint in str(caught.value)


def _federation(dimension: int = 1000) -> Any:
    from secagg.runtime.config import FederationConfig

    return FederationConfig.from_dict(
        {
            "federation": {"name": "fed-a", "clients": ["b-1", "b-2"], "dimension": dimension},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
        }
    )


@given(tables(KEY_HOLDER))
@PROPERTY
def test_a_key_holder_table_bound_to_its_federation_agrees_or_names_the_key(
    case: tuple[dict[str, Any], str | None],
) -> None:
    """``secagg keyholder --config``: the table's ``federation`` and ``dimension`` must be
    the federation config's (docs/backends.md: "one given in [key_holder] must agree, or
    the key holder refuses to start naming the key"); left out, they are bound from it."""
    from secagg.runtime.keyholder import bound_to_federation

    config = _federation()
    values, spoiled = case
    named = {spoiled} if spoiled is not None else set()
    if isinstance(values.get("federation"), str) and values["federation"] != "fed-a":
        named.add("federation")
    if values.get("dimension") not in (None, 1000) and spoiled != "dimension":
        named.add("dimension")
    noise = values.get("noise_stddev")
    if isinstance(noise, int | float) and not isinstance(noise, bool) and spoiled != "noise_stddev":
        if noise > 0 and "max_decryptions" not in values:
            named.add("max_decryptions")
    try:
        policy = KeyHolderPolicy.from_dict(bound_to_federation(config, read("key_holder", values)))
    except ConfigurationError as exc:
        assert named, f"refused a table that agrees: {exc}"
        assert "\n" not in str(exc), exc
        assert any(key in str(exc) for key in named), f"{sorted(named)}: {exc}"
        return
    assert not named, f"took a table with {sorted(named)} wrong: {values}"
    assert (policy.federation, policy.dimension) == ("fed-a", 1000)
