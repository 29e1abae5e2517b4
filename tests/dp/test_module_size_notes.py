"""The "Size: about N lines" notes of secagg/dp's module docstrings are true.

A module's docstring says why it is as long as it is, with its length; accounting.py
said "about 1 000 lines" at 1 690, dpsgd.py "about 750" at 1 099. Within 15 %."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import secagg.dp

DP = Path(secagg.dp.__file__).parent
NOTE = re.compile(r"Size: about ([0-9][0-9 ]*) lines")
NOTED = sorted(p for p in DP.glob("*.py") if NOTE.search(p.read_text(encoding="utf-8")))


def test_the_notes_are_found() -> None:
    assert {p.name for p in NOTED} >= {"accounting.py", "dpsgd.py"}


@pytest.mark.parametrize("module", NOTED, ids=lambda p: p.name)
def test_a_size_note_is_within_15_percent(module: Path) -> None:
    text = module.read_text(encoding="utf-8")
    match = NOTE.search(text)
    assert match is not None
    stated = int(match.group(1).replace(" ", ""))
    actual = len(text.splitlines())
    assert abs(stated - actual) <= 0.15 * actual, f"{module.name}: about {stated}, has {actual}"
