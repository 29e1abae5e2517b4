"""The decrypting party's floor of contributions, ``min_contributions``, is a count:
anything else is refused by type when the key holder (or every-client member) is made.

``SecretContext`` compared it only by range: ``2.5`` passed (an aggregate of 2 then
refused and one of 3 taken, a floor nobody wrote), ``True`` passed as a floor of 1 (one
client's ciphertext decrypted alone, the thing the floor is there to refuse), and
``"2"`` failed as Python's TypeError in the comparison. The key holder's policy file is
checked by its own layer; this is the HE layer's own guard for callers in code.
numpy integers are counts and are taken as Python ints.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.errors import ConfigurationError
from secagg.he.keys import KeyHolder
from secagg.he.params import choose_parameters


@pytest.mark.parametrize("floor", [2.5, 2.0, True, False, "2", [2]], ids=repr)
def test_a_floor_that_is_no_count_is_refused(floor: object) -> None:
    with pytest.raises(ConfigurationError, match="min_contributions"):
        KeyHolder(choose_parameters(4, 1.0, 1e-3), min_contributions=floor)  # type: ignore[arg-type]


def test_a_numpy_count_is_taken_as_a_python_int() -> None:
    holder = KeyHolder(choose_parameters(4, 1.0, 1e-3), min_contributions=np.int64(3))
    assert holder.min_contributions == 3
    assert type(holder.min_contributions) is int
