"""A customer id that is NaN of any numeric type is a missing id, refused, never a customer.

:func:`~secagg.dp.user_level.group_by_customer` promises to refuse rows with a missing
id (None, NaN, ``""``): taken as customers, each such row becomes an item of its own,
so one person's unattributed rows are several DP-SGD items, each clipped and counted
alone, and that person's epsilon is understated (group privacy over those rows). Only
a Python ``float`` NaN was recognised: NaN as ``numpy.float32``, ``Decimal`` or
``complex`` (an object column of such values) is unequal to itself, so every row
became a new customer (two rows of ``Decimal("NaN")``: two customers). Now any id
unequal to itself, or one whose comparison has no truth value, is missing.
"""

from __future__ import annotations

import decimal

import numpy as np
import pytest

from secagg.dp.user_level import group_by_customer, keep_customer_rows
from secagg.errors import ConfigurationError

NANS = [
    np.float32("nan"),
    np.float16("nan"),
    np.longdouble("nan"),
    decimal.Decimal("NaN"),
    complex("nan"),
]


class _NoTruth:
    """An id whose ``!=`` has no truth value (as pandas' ``NA``)."""

    def __hash__(self) -> int:
        return 0

    def __ne__(self, other: object) -> bool:
        raise TypeError("boolean value of NA is ambiguous")

    def __eq__(self, other: object) -> bool:
        raise TypeError("boolean value of NA is ambiguous")


@pytest.mark.parametrize("missing", [*NANS, _NoTruth()], ids=lambda value: type(value).__name__)
def test_a_nan_id_of_any_type_is_refused(missing: object) -> None:
    ids = np.empty(3, dtype=object)
    ids[:] = [
        "alice",
        type(missing)(missing) if not isinstance(missing, _NoTruth) else missing,
        missing,
    ]
    x = np.zeros((3, 2))
    y = np.zeros(3)
    with pytest.raises(ConfigurationError, match="row 1 has a missing customer id"):
        group_by_customer(x, y, ids, max_rows=4, seed=0)
    with pytest.raises(ConfigurationError, match="missing customer id"):
        keep_customer_rows(ids, max_rows=4, seed=0)


def test_ids_that_are_values_still_group() -> None:
    """The string "nan" is an id like any other (a person may be called so), and equal
    ids of one type group as before."""
    ids = np.array(["nan", "nan", "bob", "nan"], dtype=object)
    grouped = group_by_customer(np.ones((4, 2)), np.zeros(4), ids, max_rows=4, seed=0)
    assert grouped.num_customers == 2
    numbers_ = np.array([decimal.Decimal("1.5"), decimal.Decimal("1.50"), 7], dtype=object)
    assert (
        group_by_customer(np.ones((3, 2)), np.zeros(3), numbers_, max_rows=4, seed=0).num_customers
        == 2
    )
