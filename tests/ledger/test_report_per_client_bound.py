"""``audit report`` of a per-client ledger gives the figure that does not rest on who the
rows say took part, as ``audit verify`` does.

Why: a central row charged per client claims the most charged client's epsilon, from
the identity hashes the rows list, which are the server's word (docs/audit.md, point
5). ``audit verify`` prints "who took part is the server's word: every client charged
for every round spends epsilon E", the bound no rewriting of the lists moves; the
report, which a compliance officer may read alone, gave only the claim. A client in all
4 rounds, re-signed as in 2 of them (the other rounds shifted to fill the counts), read
as the epsilon of 2 rounds and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _ledgers import central_client_rows, write_ledger

from secagg.dp.display import shown
from secagg.ledger import report
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.0, 1e-5
#: client a in every round, as it ran
HONEST = [("a", "b"), ("a", "c"), ("a", "d"), ("a", "b")]
#: the same counts, a's rounds spread over the others (the server's rewrite)
SPREAD = [("a", "b"), ("c", "d"), ("a", "c"), ("b", "d")]


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    tmp = tmp_path_factory.mktemp("per-client")
    out = {}
    for name, cohorts in (("honest", HONEST), ("spread", SPREAD)):
        rows, _ = central_client_rows(cohorts, Z, DELTA)
        path, key = write_ledger(tmp / f"{name}.ledger", rows)
        out[name] = (path, key.public_key)
    return out


def test_the_spread_ledger_claims_less_and_verify_gives_the_bound(
    ledgers: dict[str, tuple[Path, bytes]],
) -> None:
    """The limit the report must state: the rewritten lists verify with a smaller claim,
    and the every-round figure is the honest ledger's claim (a was in every round)."""
    honest, spread = (verify_ledger(*ledgers[name]) for name in ("honest", "spread"))
    assert honest.ok and spread.ok
    assert spread.epsilons[-1][1] < honest.epsilons[-1][1]
    assert spread.per_client is not None
    every = spread.per_client["every_round_epsilon"]
    assert every == pytest.approx(honest.epsilons[-1][1], rel=1e-9)


def test_the_report_gives_the_every_round_figure_at_its_delta(
    ledgers: dict[str, tuple[Path, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = verify_ledger(*ledgers["spread"])
    assert result.per_client is not None
    every = result.per_client["every_round_epsilon"]
    monkeypatch.setattr(report, "_plot", lambda *_args, **_kwargs: None)  # text only: cheap
    text, _ = report.build_report(*ledgers["spread"])
    (line,) = [x for x in text.split("\n\n") if "every client charged for every round" in x]
    # rounded up, at the claim's delta (rounded up too), as verify prints it
    assert f"spends epsilon {shown(every, 3)} at delta = {shown(DELTA, 6, significant=True)}" in (
        " ".join(line.split())
    )
    assert "server's word" in line
