"""Hypothesis strategies for file names that hold what breaks a one-line error.

Shared by the tests that every error or verdict naming a typed path stays one printable
line (tests/apps/test_path_flag_one_line.py, test_audit_verdict_one_line.py,
test_client_state_path_shown.py, test_folded_naming_properties.py): each had its own
copy of these two strategies.
"""

from __future__ import annotations

from hypothesis import strategies as st

#: one character of a file's name: anything Linux takes but ``/`` and NUL (and no lone
#: surrogate, which no file system name encodes)
NAME_CHARACTER = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")

#: a character that splits a line, moves the cursor or reorders the text in a terminal
LINE_BREAKER = st.sampled_from(
    ["\n", "\r", "\t", "\x1b", "\x7f", "\x85", "\u2028", "\u202e", "\x0b"]
)
