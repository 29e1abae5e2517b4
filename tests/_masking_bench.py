"""The masking benchmark's machine measurements made cheap, for tests of tiny cells.

Each benchmark run measures the AES and addition floors (64 MiB per buffer size, five
runs, twice per cell), prices X25519 (2 000 operations, twice per cell) and opens
20 000 AES contexts to estimate their untraced memory: seconds per tiny cell that no
test of a tiny cell depends on the precision of. Within
:func:`cheap_masking_measurements` the same measurements run, best-of at every buffer
size, over a few MiB. The production defaults are checked unshrunk by
tests/apps/test_bench_masking.py::test_the_aes_floor_is_the_fastest_rate_not_the_speed_of_memory
and tests/apps/test_bench_floors.py.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import pytest

from secagg.apps.bench import floors, masking

#: the bytes each run of a floor processes at each buffer size, and the runs of each
#: (the defaults, floors.FLOOR_TOTAL_BYTES and floors.FLOOR_RUNS, are 64 MiB and 5)
TINY_FLOOR_BYTES = 1 << 20
TINY_FLOOR_RUNS = 2
#: the AES floor's buffer sizes: the production ones with the out-of-cache 64 MiB buffer
#: (two of them made and faulted in per measurement, four measurements a cell) replaced
#: by a 4 MiB one, still beyond a core's L2
TINY_AES_BUFFER_BYTES = (*floors.FLOOR_BUFFER_BYTES[:-1], 4 << 20)
#: X25519 operations per price (the default is 5 batches of 200 of each kind, twice a cell)
TINY_X25519_BATCH = 5
#: AES contexts the untraced-memory estimate opens per benchmark (the default is 20 000,
#: 2.5 s a run): the estimate only feeds server_peak_bytes_with_aes_contexts
TINY_CONTEXT_COUNT = 500


@contextlib.contextmanager
def cheap_masking_measurements() -> Iterator[None]:
    """The benchmark's floors and its AES-context estimate measured over a few MiB."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("aes_ctr_rate", "uint32_add_rate"):
            shrunk = functools.partial(
                getattr(floors, name), total_bytes=TINY_FLOOR_BYTES, runs=TINY_FLOOR_RUNS
            )
            patch.setattr(floors, name, shrunk)
        patch.setattr(floors, "FLOOR_BUFFER_BYTES", TINY_AES_BUFFER_BYTES)
        patch.setattr(
            floors,
            "x25519_prices",
            functools.partial(floors.x25519_prices, batch=TINY_X25519_BATCH, runs=1),
        )
        fewer_contexts = functools.partial(
            masking._untraced_bytes_per_aes_context, count=TINY_CONTEXT_COUNT
        )
        patch.setattr(masking, "_untraced_bytes_per_aes_context", fewer_contexts)
        yield
