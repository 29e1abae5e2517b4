"""A federation config of very many unknown names is refused in one short line, quickly.

``secagg server --config`` on a file of a million unknown ``[federation]`` keys took
232 s (a spelling looked up for each against every section) and printed one line of
10.9 MB (hostile CLI review, 2026-12-06: the same fault the branch's ``--policy`` had).
So many names are not a typo: the line lists a few, counts the rest, and still gives
each listed name its likely spelling."""

from __future__ import annotations

import time
from typing import Any

import pytest

from secagg.errors import ConfigurationError
from secagg.runtime.config import FederationConfig

MANY = 20_000


def _refusal(data: dict[str, Any]) -> str:
    started = time.process_time()
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.from_dict(data)
    # a spelling per name cost ~0.2 ms each: 4 s CPU here before; generous bound
    assert time.process_time() - started < 2.0
    return str(refused.value)


@pytest.mark.parametrize("section", ["federation", "dp", "server"])
def test_many_unknown_keys_are_listed_briefly(section: str) -> None:
    data: dict[str, Any] = {"federation": {"name": "f", "clients": ["a", "b", "c"]}}
    data.setdefault(section, {}).update({f"unknown_key_{i:06d}": 1 for i in range(MANY)})
    message = _refusal(data)
    assert len(message) < 2_000, len(message)
    assert f"and {MANY - 8} more" in message
    assert "\n" not in message


def test_many_unknown_sections_are_listed_briefly() -> None:
    data: dict[str, Any] = {f"table_{i:06d}": {} for i in range(MANY)}
    data["dpp"] = {}
    message = _refusal(data)
    assert len(message) < 2_000, len(message)
    assert "more" in message


def test_a_few_misspellings_keep_their_hints() -> None:
    data = {"federation": {"name": "f", "clients": ["a"]}, "dp": {"epsilon_budgt": 1.0}}
    message = _refusal(data)
    assert "did you mean 'epsilon_budget'?" in message, message
