"""A crash at every durable write of a federation, enumerated, not sampled.

Standard: a crashed server resumes from its database or aborts the round cleanly; a
round below threshold aborts, never returns a wrong sum; every epsilon in the ledger is
the epsilon of what actually ran. tests/integration/test_faults.py kills the server at
one point of a round and tests/runtime/test_store_safety.py injects a few failed writes;
this file walks *every* durable write a short federation makes, one run per point.

How (tests/_crash_points.py). A clean run of the federation (three branches over the
in-process transport, SecAgg+, two rounds, under central DP and under distributed DP,
both charging the ledger) records, in order, each durable write of the server (every
SQLite commit of its state and of its ledger, every
:func:`~secagg.durable.write_atomically` of its ledger key, the auditor's public key
file) and of one branch (its round mark). Then, for every write ``k`` and each way a
process can die there (*before* the write, *after* it took effect, and for a file
*torn*: the temporary file left behind, no rename), the same federation runs again, the
process dies at ``k``, a fresh one starts over the same files, as a restart would, and
the federation runs to its end. Each restarted server's recovery writes (the ledger
reopened, the running round aborted, rows rebuilt) are crashed in turn too: a second
crash while it recovers.

Invariants, against oracles the test computes itself:

* every complete round's checkpoint is the previous one plus the learning rate times
  (the plain sum of its contributors' clipped updates + the noise drawn for it, recorded
  as the mechanism draws it) over the expected cohort; an aborted round says why and
  stores no model;
* no round number starts twice, is released twice, or has two ledger rows; every
  finished round has its row;
* ``audit verify`` passes, also against the auditor's public key file;
* every row's epsilon: central DP, the exact Gaussian epsilon in closed form (not the
  project's accountant) of the most charged branch's rounds so far; distributed DP, a
  fresh accountant over the rounds charged so far. A round is charged when the state
  stored its model or, aborted, committed its revealed sum's charge first
  (docs/audit.md), both seen by the test as the commits happen;
* no branch trains a round twice.
"""

from __future__ import annotations

import time

import pytest
from _crash_points import CENTRAL, CRASHED_BRANCH, DISTRIBUTED, enumerate_crashes

FEDERATIONS = {"central": CENTRAL, "distributed": DISTRIBUTED}
#: each case's config plans a costly federation on purpose (three branches; a tiny noise
#: multiplier for the distributed one): its PrivacyCostWarning, hundreds of times, says
#: nothing here
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning"),
]


@pytest.mark.parametrize("mechanism", sorted(FEDERATIONS))
def test_every_durable_write_survives_a_crash_before_after_and_torn(
    tmp_path_factory: pytest.TempPathFactory, mechanism: str
) -> None:
    """One run per (write, variant) of the server and of branch b1, and one per write of
    each restarted server's recovery. Central: 11 server writes, 3 of the branch's; 34
    single crashes and 186 during a recovery. Distributed: 13 (each round's reveal is
    noted), 3; 38 and 218."""
    began = time.monotonic()
    points, cases, failures = enumerate_crashes(
        tmp_path_factory.mktemp, FEDERATIONS[mechanism], ("server", f"branch:{CRASHED_BRANCH}")
    )
    for role in ("server", f"branch:{CRASHED_BRANCH}"):
        print(f"{mechanism}, {role}: {len(points[role])} durable writes")
        for k, point in enumerate(points[role]):
            print(f"  {k:2d} {point}")
    print(f"{mechanism}: {cases} cases in {time.monotonic() - began:.1f} s")
    assert not failures, f"{len(failures)} of {cases} cases fail:\n" + "\n".join(failures)
