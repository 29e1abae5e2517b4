"""A hand-written CKKS parameter set whose ring, prime sizes, scale bits or security
level is no integer: a typed HEParameterError naming the field, never Python's
TypeError, and never a scale that is no power of two.

``CKKSParameters`` says that construction validates everything, so a hand-written set
that is insecure, can overflow or misses its precision is refused like a chosen one. Its
integer fields were not checked by type: a ring of ``2048.0`` passed the HE-standard
table (``2048.0 == 2048`` as a dict key) and failed in the prime search as "pow() 3rd
argument not allowed unless all arguments are integers"; prime sizes of ``29.0`` failed
in ``1 << bits``; and ``scale_bits=25.5`` passed, a scale of 2^25.5, no power of two,
which the parameters' own documentation and the packed wire format's scale assume.
numpy integers are integers and are taken (as Python ints).
"""

from __future__ import annotations

import numpy as np
import pytest

from secagg.he.errors import HEParameterError
from secagg.he.params import CKKSParameters

#: a valid hand-written set (choose_parameters(4, 1.0, 1e-3) picks it)
VALID = {
    "poly_modulus_degree": 2048,
    "coeff_mod_bit_sizes": (29, 14),
    "scale_bits": 25,
    "num_clients": 4,
    "value_bound": 1.0,
    "precision": 1e-3,
    "security_bits": 128,
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("poly_modulus_degree", 2048.0),
        ("poly_modulus_degree", "2048"),
        ("poly_modulus_degree", True),
        ("coeff_mod_bit_sizes", (29.0, 14)),
        ("coeff_mod_bit_sizes", (29, True)),
        ("coeff_mod_bit_sizes", "ab"),
        ("coeff_mod_bit_sizes", 43),
        ("coeff_mod_bit_sizes", None),
        ("scale_bits", 25.5),
        ("scale_bits", 25.0),
        ("scale_bits", None),
        ("scale_bits", True),
        ("security_bits", 128.0),
        ("security_bits", None),
    ],
    ids=repr,
)
def test_a_field_that_is_no_integer_is_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(HEParameterError, match=field):
        CKKSParameters(**{**VALID, field: value})  # type: ignore[arg-type]


def test_numpy_integers_are_taken_as_python_integers() -> None:
    params = CKKSParameters(
        **{
            **VALID,
            "poly_modulus_degree": np.int64(2048),
            "coeff_mod_bit_sizes": np.array([29, 14]),
            "scale_bits": np.int32(25),
            "security_bits": np.int16(128),
        }
    )
    assert params == CKKSParameters(**VALID)
    for value in (
        params.poly_modulus_degree,
        params.scale_bits,
        params.security_bits,
        *params.coeff_mod_bit_sizes,
    ):
        assert type(value) is int
