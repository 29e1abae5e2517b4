"""The threshold a server announces and the minimum a branch computes itself agree, after
the complete graph's survivors were counted one lower (6508b53).

Second review of the merged policy changes (2026-12-07). The complete graph's threshold
became ``max(n - floor((delta + 1e-14) n), security minimum)`` where fcp's float
``ceil((1 - delta) n)`` was sometimes one higher. The questions, each pinned here:

* does every announced t still meet the security minimum, computed exactly from the
  decimal fractions (no colluders plus the server reconstruct: ``t > ceil(gamma n)`` and
  ``t > c``; active: ``2t > k + 1 + c`` and ``t > ceil((n + gamma n) / 2)``)? Yes: the
  change touched the survivors' count only, and the minimum is folded in after it;
* does a branch accept what the server announces, and refuse anything below its own
  minimum? Yes: its check (:class:`~secagg.protocol.config.ClientPolicy`) is privacy
  only and never used the survivors' count, so a branch running the old rule takes
  the new t (the setup's threshold is not among the fields a branch holds to its spec);
* is the new t ever more than one below the old rule's? No.

An offline sweep (n <= 2000 with 3-digit fractions for each part, and n <= 300 with
2-digit gamma and delta end to end, both variants) found no case against any of these;
the properties below run a sample of it (hypothesis, 40 examples each).
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.aggregation.masking import MaskingBackend
from secagg.aggregation.policy import BranchPolicy
from secagg.errors import ConfigurationError, PolicyRefused
from secagg.protocol import graph_params
from secagg.protocol.config import ClientPolicy, RoundConfig
from secagg.protocol.messages import GraphKind, RoundSetup

#: 2- and 3-digit decimal fractions, as operators write them
FRACTIONS = st.one_of(
    st.integers(0, 99).map(lambda k: Fraction(k, 100)),
    st.integers(0, 999).map(lambda k: Fraction(k, 1000)),
)
COHORTS = st.one_of(
    st.integers(2, 60), st.integers(2, 2000), st.integers(1, 40).map(lambda m: 50 * m)
)


def _exact_minimum(n: int, gamma: Fraction, active: bool) -> int:
    """The smallest private complete-graph t from the decimal fraction itself, with the
    colluder floor every round is sized for (``c = max(floor(gamma n), min(2, n - 2))``)."""
    c = max(math.floor(gamma * n), min(graph_params.DEFAULT_MIN_COLLUDERS, n - 2))
    if active:
        return max(math.ceil((n + gamma * n) / 2) + 1, (n + c) // 2 + 1, c + 1, 2)
    return max(math.ceil(gamma * n) + 1, c + 1, 2)


def _setup(config: RoundConfig, threshold: int) -> RoundSetup:
    return RoundSetup(
        round_id=bytes(16),
        recipient=0,
        num_clients=config.num_clients,
        vector_length=config.vector_length,
        bits=config.bits,
        threshold=threshold,
        graph=config.graph,
        degree=config.degree,
        graph_seed=bytes(32),
        active=config.active,
    )


@settings(max_examples=40, deadline=None)
@given(n=COHORTS, gamma=FRACTIONS, delta=FRACTIONS, active=st.booleans())
@example(n=150, gamma=Fraction(5, 100), delta=Fraction(18, 100), active=False)  # t 124 -> 123
@example(n=300, gamma=Fraction(5, 100), delta=Fraction(19, 100), active=False)
@example(n=25, gamma=Fraction(28, 100), delta=Fraction(68, 100), active=False)  # float gamma n
@example(n=2000, gamma=Fraction(999, 1000), delta=Fraction(0), active=True)
def test_the_complete_graph_t_meets_the_exact_minimum_and_the_branch_takes_it(
    n: int, gamma: Fraction, delta: Fraction, active: bool
) -> None:
    """What the server announces (``RoundConfig.create``, as a masking spec plans it) is
    the survivors' exact count or the security minimum, whichever is larger (the latter
    at most one above the exact rule, fcp's float ``ceil(gamma n)``); a branch of the
    same fractions accepts it and refuses one less, unless one less is still the
    survivors' side of the max above its minimum."""
    g, d = float(gamma), float(delta)
    exact = _exact_minimum(n, gamma, active)
    branch = ClientPolicy(corrupt_fraction=g, dropout_fraction=d)
    try:
        config = RoundConfig.create(
            n, 1, graph="complete", corrupt_fraction=g, dropout_fraction=d, active=active
        )
    except ConfigurationError:
        # refused only where no threshold up to n is private, which the branch agrees on
        assert exact > n
        assert branch.minimum_threshold(n, GraphKind.COMPLETE, n - 1, active=active) is None
        return
    t = config.threshold
    survivors = n - math.floor(delta * n)
    assert exact <= t <= max(survivors, exact + 1)
    assert t >= max(survivors, exact)
    # the old float rule: never more than one above, and only on the survivors' side
    old = max(math.ceil((1 - d) * n), t)
    assert old - t in (0, 1)
    branch.check(_setup(config, t))  # the branch takes it
    minimum = branch.minimum_threshold(n, config.graph, config.degree, active=active)
    assert minimum is not None and exact <= minimum <= t
    if minimum >= 2:
        with pytest.raises(PolicyRefused):
            branch.check(_setup(config, minimum - 1))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 400), gamma=FRACTIONS, delta=FRACTIONS, active=st.booleans())
@example(n=150, gamma=Fraction(5, 100), delta=Fraction(18, 100), active=False)
def test_every_default_graph_s_t_is_taken_by_a_branch_of_the_same_fractions(
    n: int, gamma: Fraction, delta: Fraction, active: bool
) -> None:
    """SecAgg+'s default (a Harary graph, or the complete graph it falls back to): the
    setup a server builds passes the branch's own check. ``RoundConfig.create`` says its
    defaults always do; this is that claim, across the fractions."""
    g, d = float(gamma), float(delta)
    try:
        config = RoundConfig.create(
            n, 1, graph="harary", corrupt_fraction=g, dropout_fraction=d, active=active
        )
    except ConfigurationError:
        return  # nothing announced: nothing for a branch to take
    ClientPolicy(corrupt_fraction=g, dropout_fraction=d).check(_setup(config, config.threshold))


@pytest.mark.parametrize(
    ("n", "delta", "new", "old"),
    [(150, 0.18, 123, 124), (300, 0.19, 243, 244)],
)
def test_a_branch_on_the_old_survivor_rule_takes_the_new_server_s_setup(
    monkeypatch: pytest.MonkeyPatch, n: int, delta: float, new: int, old: int
) -> None:
    """A server on the new rule announces t = 123 for 150 clients at 18 % dropouts; a
    branch whose code still counted fcp's float ``ceil((1 - delta) n)`` (124) plans the
    same spec to t = 124, and takes the setup anyway: its policy checks the privacy
    minimum only, and the threshold is the server's to choose within it."""
    backend = MaskingBackend(graph="complete", value_bound=1.0, dropout_fraction=delta)
    spec = backend.plan(n, 4)
    session = backend.server(spec)
    setups = [out.payload for out in session.start() if hasattr(out, "payload")]
    assert spec.round_config().threshold == new
    # the branch's process: fcp's float rule, as before 6508b53
    monkeypatch.setattr(
        graph_params, "_fewest_survivors", lambda n, delta: math.ceil((1 - delta) * n)
    )
    assert spec.round_config().threshold == old
    policy = BranchPolicy(dropout_fraction=delta)
    client = backend.open_client(spec, 0, rounding=None, policy=policy)
    replies = client.handle(setups[0])
    assert replies  # its keys advertised: the setup taken
