"""``secagg client --help`` states the idle rule the branch keeps.

Why: the help said the branch gives up when the server sends nothing it can take
"this long between rounds", and that after a round run without it the branch waits
"for that round's deadline". The rule that holds (docs/deployment.md, the branch's
``FederationClient.run``) is that the timer counts connected time without progress,
carried across sessions (a server ending every session after 10 s no longer resets
it), and that out of a round it counts from that round's deadline plus the grace
(:data:`~secagg.runtime.client.ROUND_GRACE_SECONDS`). An operator sizing ``--idle``
from the help alone could not tell either.
"""

from __future__ import annotations

import click

from secagg.apps.commands.client import client
from secagg.runtime.client import ROUND_GRACE_SECONDS


def _idle_help() -> str:
    (option,) = [p for p in client.params if isinstance(p, click.Option) and p.name == "idle"]
    return " ".join((option.help or "").split())


def test_the_idle_help_says_the_timer_counts_connected_time_across_sessions() -> None:
    text = _idle_help()
    assert "connected without progress" in text, text
    assert "across sessions" in text and "--give-up-after" in text, text


def test_the_idle_help_says_out_of_a_round_it_counts_from_the_deadline_plus_the_grace() -> None:
    text = _idle_help()
    assert f"deadline plus {ROUND_GRACE_SECONDS:g} s" in text, text
    # what it said before and still must: the server's quorum wait, the bound, 'inf'
    assert "quorum_wait_seconds" in text and "(604800)" in text and "'inf'" in text, text
