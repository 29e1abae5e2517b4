"""``AuditResult.shown_epsilon`` looks a row's replayed epsilon up in a dict built from
``epsilons``; it was rebuilt only when ``epsilons`` changed length, so an entry
replaced in place (as ``verify_ledger`` does when it raises a row's replay to the
from-scratch accountant's figure) kept showing the figure it replaced: a smaller
epsilon than the one verify settled on. It is rebuilt whenever the content changes."""

from __future__ import annotations

import math

from secagg.ledger.chain import ChainReport
from secagg.ledger.verify import AuditResult


def _result() -> AuditResult:
    chain = ChainReport(rows=[], public_key=b"", head_hash=None, failure=None, key_source="given")
    return AuditResult(chain, epsilons=[(1, 0.5), (2, 1.0)])


def test_an_epsilon_replaced_in_place_is_shown_not_the_one_it_replaced() -> None:
    result = _result()
    assert result.shown_epsilon(2, None) == 1.0
    result.epsilons[-1] = (2, 1.25)  # the same length: the cache used to stay
    assert result.shown_epsilon(2, None) == 1.25
    assert result.shown_epsilon(2, 1.1) == 1.25  # the larger of claim and replay
    result.epsilons[0] = (1, math.inf)
    assert result.shown_epsilon(1, 0.5) == math.inf


def test_the_list_replaced_whole_or_grown_is_followed_too() -> None:
    result = _result()
    assert result.shown_epsilon(1, None) == 0.5
    result.epsilons = [(1, 0.75), (2, 1.0)]
    assert result.shown_epsilon(1, None) == 0.75
    result.epsilons.append((3, 2.0))
    assert result.shown_epsilon(3, 1.5) == 2.0
    assert result.shown_epsilon(4, 1.5) == 1.5  # no replay for that row: its claim
