"""A branch policy's refusal of an odd number is a typed line that shows the number given.

Second review of the merged policy changes (2026-12-07). 36c1ade made an integer past
the floats a typed line "naming its digits", and 10d2f7d refused a noise share's
numbers that no share has, whoever calls. Three gaps were left, each the library's own
callers' case (the wire's decoder gives floats and 32-bit counts):

* a count that is a valid count but too long to print (a share's ``expected_clients``
  or a round's ``num_clients`` of 10**5000) passed the checks and the refusal's own
  f-string raised a bare ValueError (``str`` stops at 4 300 digits);
* a ``Fraction`` (a real number the checks take) as a noise multiplier below the floor,
  a clip above ``max_clip`` or a record-level clip below ``record_sensitivity`` made the
  refusal raise TypeError (``format(Fraction, "g")`` is refused before Python 3.12);
* an integer of 400 digits was shown cut to its first 40 (``not 1000...0``, a number 360
  digits shorter than the one given), and ``check_size`` took a round of 3.5 clients.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from secagg.aggregation.policy import BranchPolicy
from secagg.errors import ConfigurationError, PolicyRefused

HUGE = 10**5000  # 5001 digits: past what str() prints


@pytest.mark.parametrize(
    "policy",
    [
        BranchPolicy(min_noise_multiplier=1.0),
        BranchPolicy(min_noise_multiplier=1.0, expected_clients=10),
    ],
    ids=["floor", "floor and pin"],
)
def test_a_share_split_over_a_count_too_long_to_print_is_refused_in_one_line(
    policy: BranchPolicy,
) -> None:
    with pytest.raises(PolicyRefused, match="an integer of 5001 digits") as refused:
        policy.check_noise_share(
            noise_multiplier=1.0, clip=1.0, expected_clients=HUGE, num_clients=3
        )
    assert refused.value.setting == "branch.expected_clients"
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 400


@pytest.mark.parametrize(
    ("num_clients", "dimension", "setting"),
    [(HUGE, 5, "branch.max_clients"), (3, HUGE, "branch.max_dimension")],
    ids=["clients", "dimension"],
)
def test_a_round_too_large_to_print_is_refused_naming_its_digits(
    num_clients: int, dimension: int, setting: str
) -> None:
    with pytest.raises(PolicyRefused, match="an integer of 5001 digits") as refused:
        BranchPolicy().check_size(num_clients, dimension)
    assert refused.value.setting == setting


@pytest.mark.parametrize(
    "num_clients", [Fraction(7, 2), 3.0, True, "3", None], ids=["7/2", "3.0", "True", "'3'", "None"]
)
def test_a_round_of_no_whole_number_of_clients_is_a_typed_error(num_clients: object) -> None:
    with pytest.raises(ConfigurationError, match="count"):
        BranchPolicy().check_size(num_clients, 5)  # type: ignore[arg-type]


def test_a_fraction_below_the_noise_floor_is_refused_showing_it() -> None:
    with pytest.raises(PolicyRefused, match=r"noise multiplier 0\.333333 < 1"):
        BranchPolicy(min_noise_multiplier=1.0, expected_clients=5).check_noise_share(
            noise_multiplier=Fraction(1, 3), clip=1.0, expected_clients=5, num_clients=5
        )


def test_a_fraction_clip_above_the_cap_is_refused_showing_it() -> None:
    with pytest.raises(PolicyRefused, match=r"clip 3 > 1"):
        BranchPolicy(max_clip=1.0).check_clip(Fraction(3))


def test_a_record_level_fraction_clip_below_the_sensitivity_is_refused_showing_it() -> None:
    with pytest.raises(PolicyRefused, match=r"change of 0\.25 per protected unit"):
        BranchPolicy(record_sensitivity=0.5).check_noise_share(
            noise_multiplier=1.0,
            clip=Fraction(1, 4),
            expected_clients=3,
            record_level=True,
            vector_bound=1.0,
        )


def test_an_integer_past_the_floats_is_shown_by_its_digits_not_cut_to_40() -> None:
    with pytest.raises(ConfigurationError, match="an integer of 401 digits"):
        BranchPolicy().check_clip(10**400)
    with pytest.raises(ConfigurationError, match="an integer of 401 digits"):
        BranchPolicy().check_noise_share(
            noise_multiplier=10**400, clip=1.0, expected_clients=3, num_clients=3
        )
