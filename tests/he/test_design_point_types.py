"""A CKKS design point is a count and two positive finite reals, numpy's included,
held as Python numbers; a bool is none of them.

``True`` passed as a value bound or a precision of 1 (an error of up to 1 a coordinate
where 10^-6 was meant), while ``np.float32(1.0)`` and ``np.int64(2)`` were refused as no
numbers. The parameters keep Python floats: float32 arithmetic in the overflow check
would round the bound times the scale to 24 bits.
"""

from __future__ import annotations

import numpy as np
import pytest

from secagg.he import CKKSParameters, HEParameterError, choose_parameters


@pytest.mark.parametrize(
    ("clients", "bound", "precision", "name"),
    [
        (2, True, 1e-3, "value_bound"),
        (2, 1.0, True, "precision"),
        (True, 1.0, 1e-3, "num_clients"),
        (2, "1", 1e-3, "value_bound"),
        (2, 1.0, np.nan, "precision"),
        (2.0, 1.0, 1e-3, "num_clients"),
    ],
)
def test_a_design_point_that_is_no_count_and_reals_is_refused_by_name(
    clients: object, bound: object, precision: object, name: str
) -> None:
    with pytest.raises(HEParameterError, match=name):
        choose_parameters(clients, bound, precision)  # type: ignore[arg-type]
    with pytest.raises(HEParameterError, match=name):
        CKKSParameters(2048, (27, 14), 20, clients, bound, precision)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("clients", "bound", "precision"),
    [
        (np.int64(2), 1.0, 1e-3),
        (2, np.float32(1.0), 1e-3),
        (2, 1.0, np.float64(1e-3)),
        (np.int32(2), np.float16(1.0), np.float32(1e-3)),
    ],
)
def test_numpy_numbers_give_the_parameters_of_python_ones(
    clients: object, bound: object, precision: object
) -> None:
    chosen = choose_parameters(clients, bound, precision)  # type: ignore[arg-type]
    expected = choose_parameters(2, float(bound), float(precision))  # type: ignore[arg-type]
    assert chosen.coeff_mod_bit_sizes == expected.coeff_mod_bit_sizes
    assert chosen.scale_bits == expected.scale_bits
    assert type(chosen.num_clients) is int
    assert type(chosen.value_bound) is float and type(chosen.precision) is float
    by_hand = CKKSParameters(
        chosen.poly_modulus_degree,
        chosen.coeff_mod_bit_sizes,
        chosen.scale_bits,
        clients,  # type: ignore[arg-type]
        bound,  # type: ignore[arg-type]
        precision,  # type: ignore[arg-type]
    )
    assert type(by_hand.value_bound) is float and by_hand == chosen
