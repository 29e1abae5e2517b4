"""The key holder's policy refuses an empty or blank ``state`` (or ``key``) path at the
library, with a :class:`~secagg.errors.ConfigurationError` naming the key.

Second review of b2979adf (helper brief 324, 2026-12-07): ``secagg keyholder --policy``
refuses ``state = "  "`` since b2979adf, but only in the command; the library's
:func:`~secagg.aggregation.keyholder_policy.config_path` refused an empty string only,
so ``KeyHolderPolicy.from_dict({"state": "  "})`` (a key holder built from Python:
``CKKSBackend.helper(settings)``, the command's checks skipped) was taken, the key holder
then keeping its count of decryptions in a file called "  " beside the policy: the cap
on decryptions, which bounds the privacy loss, held in a file nobody meant. The same
for ``KeyHolderPolicy(state_path="  ")`` and for a blank ``key`` through
``config_path``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.aggregation.keyholder_policy import KeyHolderPolicy, config_path
from secagg.errors import ConfigurationError

#: whitespace only: what a blank value of a generated file holds (an unset variable)
BLANKS = st.text(
    st.characters(whitelist_categories=("Zs",), whitelist_characters="\t\n\r\x0b\x0c"),
    min_size=1,
    max_size=6,
)


def _refused_naming(exc: pytest.ExceptionInfo[ConfigurationError], key: str) -> None:
    message = str(exc.value)
    assert message.startswith(f"[key_holder] {key}: "), message
    assert "\n" not in message, message  # one line, whatever the value held


@given(value=BLANKS, relative_to=st.sampled_from([None, Path("/srv/kh")]))
def test_from_dict_refuses_a_blank_state(value: str, relative_to: Path | None) -> None:
    """Before: taken as the file ``value`` (beside ``base_dir``). Now: refused, naming
    ``state``."""
    with pytest.raises(ConfigurationError) as exc:
        KeyHolderPolicy.from_dict({"state": value}, base_dir=relative_to)
    _refused_naming(exc, "state")


@given(value=BLANKS, as_path=st.booleans())
def test_the_dataclass_refuses_a_blank_state_path(value: str, as_path: bool) -> None:
    """``KeyHolderPolicy(state_path="  ")`` built from Python (a str or a ``Path``) is
    refused the same way."""
    with pytest.raises(ConfigurationError) as exc:
        KeyHolderPolicy(state_path=Path(value) if as_path else value)
    _refused_naming(exc, "state")


@given(key=st.sampled_from(["key", "state"]), value=BLANKS)
def test_config_path_refuses_a_blank_path(key: str, value: str) -> None:
    """Every path key read through :func:`config_path` (the CKKS key holder's ``key``
    too): refused naming the key, a blank ``Path`` as a blank string."""
    for given_value in (value, Path(value)):
        with pytest.raises(ConfigurationError) as exc:
            config_path(key, given_value, Path("/srv/kh"))
        _refused_naming(exc, key)


def test_an_empty_state_is_still_refused() -> None:
    """Guard: the empty string was refused before and still is."""
    with pytest.raises(ConfigurationError, match=r"^\[key_holder\] state: "):
        KeyHolderPolicy.from_dict({"state": ""})


@given(
    name=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"),
        min_size=1,
        max_size=12,
    ).filter(lambda s: s.strip() != "" and s not in {".", ".."} and not s.startswith("~"))
)
def test_a_named_state_is_still_taken(name: str) -> None:
    """Guard: a state name with blanks in it (not only blanks) is a name, and taken,
    relative ones against ``base_dir``."""
    policy = KeyHolderPolicy.from_dict({"state": name}, base_dir=Path("/srv/kh"))
    assert policy.state_path == Path("/srv/kh") / name
