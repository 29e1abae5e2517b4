"""An integer past the floats, where a number belongs, is one line naming the key.

Review of the config loaders (2026-12-06): tomllib reads a TOML integer of any size
(the TOML spec's 64 bits are not enforced), so ``value_bound = 1`` followed by 400
zeros reached the range checks, where ``math.isfinite`` and every comparison with a
float convert it and raise ``OverflowError``: ``secagg server --config`` printed a
traceback, for every number key of every section of a federation file (``[dp] clip``,
``[deadlines] phase_seconds``, ``[server] session_rate``, ...), of a ``[branch]``
table and of ``[key_holder] noise_stddev``. One of more than 4 300 digits failed
earlier, inside tomllib (Python's limit on ``int()`` of a string), as a ``ValueError``
traceback. The keys are read from the dataclasses' own type hints, so a number key
added later is covered.
"""

from __future__ import annotations

import typing
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.keyholder_policy import KeyHolderPolicy
from secagg.aggregation.policy import BranchPolicy
from secagg.dp.config import DPSettings
from secagg.errors import ConfigurationError
from secagg.runtime.config import (
    BackendConfig,
    DeadlineConfig,
    FederationConfig,
    SamplingConfig,
    ServerSettings,
    read_toml,
)
from tests._config_fuzz import names_key, one_line

#: past the largest float (about 1.8e308) in magnitude, up to about 4 000 digits
HUGE = st.integers(min_value=2**1024, max_value=10**4000).flatmap(
    lambda n: st.sampled_from((n, -n))
)


def _number_keys(kind: type) -> list[str]:
    """The fields of ``kind`` a number (a float) fills, as its type hints say."""
    keys = []
    for name, hint in typing.get_type_hints(kind).items():
        options = typing.get_args(hint) or (hint,)
        if float in options:
            keys.append(name)
    return keys


SECTIONS: dict[str, type] = {
    "sampling": SamplingConfig,
    "backend": BackendConfig,
    "dp": DPSettings,
    "deadlines": DeadlineConfig,
    "server": ServerSettings,
    "federation": FederationConfig,
}
FILE_KEYS = [(section, key) for section, kind in SECTIONS.items() for key in _number_keys(kind)]
BRANCH_KEYS = _number_keys(BranchPolicy)


def _load(section: str, key: str, value: Any) -> FederationConfig:
    data: dict[str, Any] = {
        "federation": {"name": "huge", "clients": ["b1", "b2", "b3"], "dimension": 10},
    }
    data.setdefault(section, {})[key] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a plan's cost warnings
        return FederationConfig.from_dict(data)


def test_every_number_key_is_enumerated() -> None:
    """The enumeration finds the keys this review found failing (a guard on the test)."""
    for place in [("backend", "value_bound"), ("dp", "clip"), ("server", "session_rate")]:
        assert place in FILE_KEYS
    assert {"max_clip", "epsilon_budget", "delta"} <= set(BRANCH_KEYS)


@pytest.mark.parametrize(("section", "key"), FILE_KEYS)
@settings(max_examples=5, deadline=None)
@given(value=HUGE)
def test_a_federation_file_refuses_it_naming_the_key(section: str, key: str, value: int) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _load(section, key, value)
    message = str(refused.value)
    assert one_line(message) and names_key(message, section, key), message
    assert "floating-point range" in message and len(message) < 300, message


@pytest.mark.parametrize("key", BRANCH_KEYS)
@settings(max_examples=5, deadline=None)
@given(value=HUGE)
def test_a_branch_table_refuses_it_naming_the_key(key: str, value: int) -> None:
    with pytest.raises(ConfigurationError) as refused:
        BranchPolicy.from_dict({key: value})
    message = str(refused.value)
    assert one_line(message) and f"branch.{key}" in message, message
    assert len(message) < 300, message


@settings(max_examples=10, deadline=None)
@given(value=HUGE)
def test_a_key_holder_table_refuses_it_naming_the_key(value: int) -> None:
    with pytest.raises(ConfigurationError) as refused:
        KeyHolderPolicy.from_dict({"noise_stddev": value, "max_decryptions": 10})
    message = str(refused.value)
    assert one_line(message) and "[key_holder] noise_stddev" in message, message
    assert len(message) < 300, message


def test_an_integer_tomllib_cannot_read_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """More digits than ``int()`` reads from a string (4 300): tomllib's ValueError."""
    path = tmp_path / "federation.toml"
    path.write_text("[backend]\nvalue_bound = 1" + "0" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as refused:
        read_toml(path)
    message = str(refused.value)
    assert one_line(message) and str(path) in message and "4300 digits" in message, message


def test_the_largest_float_still_reaches_the_range_checks() -> None:
    """An integer the floats hold is a number, judged by its key's own range."""
    with pytest.raises(ConfigurationError, match=r"backend\.value_bound must be .* at most"):
        _load("backend", "value_bound", 2**1023)
    assert _load("backend", "value_bound", 1000).backend.value_bound == 1000


#: (an integer past the floats, its digits): on each side of a power of ten, where the
#: bit length's estimate ``floor(bits * log10(2)) + 1`` said 401 for both of the first two
DIGITS = [(10**400 - 1, 400), (-(10**400 - 1), 400), (10**400, 401), (2**1024, 309)]


@pytest.mark.parametrize(
    ("value", "digits"), DIGITS, ids=["1e400-1", "-(1e400-1)", "1e400", "2**1024"]
)
def test_each_reader_counts_the_digits_of_the_integer_it_refuses(value: int, digits: int) -> None:
    """The federation file, a branch's table and the key holder's table count the same
    way (:func:`secagg.errors.decimal_digits`), and exactly: 10**400 - 1 was "an
    integer of about 401 digits" in all three."""
    readers = [
        lambda: _load("dp", "clip", value),
        lambda: BranchPolicy.from_dict({"max_clip": value}),
        lambda: KeyHolderPolicy.from_dict({"noise_stddev": value, "max_decryptions": 10}),
    ]
    for read in readers:
        with pytest.raises(ConfigurationError) as refused:
            read()
        assert f"an integer of {digits} digits" in str(refused.value), str(refused.value)


def test_a_value_is_printed_up_to_40_digits_and_counted_past_them() -> None:
    """Past 40 digits a refusal gives the count, never the value: ``repr`` of an integer
    past 4 300 digits raises ValueError, so a count that fell short there would turn the
    one-line refusal into a traceback."""
    with pytest.raises(ConfigurationError) as printed:
        _load("server", "session_burst", -(10**39))  # 40 digits
    assert str(-(10**39)) in str(printed.value), str(printed.value)
    for value, digits in [(10**40, 41), (10**4400, 4401), (-(10**20_000), 20_001)]:
        with pytest.raises(ConfigurationError) as counted:
            _load("server", "session_burst", value)
        message = str(counted.value)
        assert one_line(message) and f"not an integer of {digits} digits" in message, message
