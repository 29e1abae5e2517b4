"""``folded_naming(message, path)``, which every one-line failure naming a typed file
goes through (``in_file``, ``_one_line_naming``, the audit's ``_verdict_line``): one
printable line, the file shown by ``shown_path`` wherever the message names it apart,
and nothing else of the message changed but its whitespace.

Second review of 4a61a824 / 1f278885 (helper brief 324, 2026-12-07): the name was
replaced wherever it occurred as a substring, so a name of only blanks (``" "``) turned
every blank of the message into ``' '`` (``cannot' 'read' 'the' 'file``), and a name
``'a '`` was shown inside the reason's words (``the key 'a 'b``); folding a folded line
again changed it (not idempotent); and the reason's own characters a terminal acts on
(an escape in the file as the ledger layer names it, ``./`` dropped) were kept raw.
Hypothesis over random names and random reason texts containing the name.
"""

from __future__ import annotations

import re

from _odd_names import NAME_CHARACTER
from hypothesis import assume, given
from hypothesis import strategies as st

from secagg.apps.commands.common import folded_naming, shown_path

#: any character of a file's name but ``/`` and NUL (no lone surrogate)
NAMES = st.text(NAME_CHARACTER, min_size=1, max_size=8).filter(lambda n: n not in {".", ".."})
#: any text at all, control characters and line breaks among them
TEXTS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
#: reason words that cannot spell a name holding one character outside them
_PLAIN_WORDS = st.text(st.sampled_from("xyz \t\n:"), max_size=12)


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@given(message=TEXTS, path=NAMES, a=TEXTS, b=TEXTS)
def test_the_result_is_one_printable_line_and_folding_it_again_changes_nothing(
    message: str, path: str, a: str, b: str
) -> None:
    """Before: a reason's control characters kept raw; a blank name's line changed by a
    second fold (``' '`` shown inside ``' '``)."""
    for text in (message, f"{a} {path}: {b}", f"{a} {path} {path}{b}"):
        said = folded_naming(text, path)
        assert said.isprintable(), said
        assert folded_naming(said, path) == said, (text, said)


@given(path=NAMES, a=_PLAIN_WORDS, b=_PLAIN_WORDS, twice=st.booleans())
def test_a_mention_apart_is_shown_and_the_rest_only_folded(
    path: str, a: str, b: str, twice: bool
) -> None:
    """The oracle: ``A <name>: B`` is ``fold(A) <shown>: fold(B)``, the name shown as
    often as the message names it, whatever the name holds."""
    assume(path.strip() and any(c not in "xyz \t\n:" for c in path))
    second = f" {path}" if twice else ""
    said = folded_naming(f"{a} {path}{second}: {b}", path)
    shown = shown_path(path)
    again = f" {shown}" if twice else ""
    assert said == f"{_fold(a + ' ')}{shown}{again}{_fold(': ' + b)}".strip(), said


@given(blank=st.text(st.sampled_from(" \t\n\u3000"), min_size=1, max_size=3), text=_PLAIN_WORDS)
def test_a_blank_name_changes_nothing_but_the_folding(blank: str, text: str) -> None:
    """Before: ``cannot read  the file`` with the name ``" "`` became ``cannot' 'read' '
    ...``, each blank shown as the name."""
    message = f"cannot read {text} the file"
    assert folded_naming(message, blank) == _fold(message).strip()


def test_a_name_inside_longer_words_is_not_shown_there() -> None:
    """A name ``'a '`` (a blank at its end) is not the ``a `` of ``a b``; a relative name
    is not the tail of a longer path; the mention that stands apart is shown."""
    assert folded_naming("the key a b: a  is bad", "a ") == "the key a b: 'a ' is bad"
    assert folded_naming("cannot read /d/p\x1bq here", "p\x1bq") == ("cannot read /d/p\\x1bq here")


def test_the_path_as_path_writes_it_is_shown_too() -> None:
    """``./L`` typed, ``L`` in the reason (the ledger layer's ``Path``): shown, not raw."""
    said = folded_naming("a\x1bb is not a readable ledger", "./a\x1bb")
    assert said == f"{shown_path('a' + chr(27) + 'b')} is not a readable ledger", said


def test_a_plain_name_and_its_message_are_as_they_were() -> None:
    """Guard: a plain name (``a``, ``key``, ``:``, ``.``) leaves the message as folded."""
    for path in ("a", "key", ":", ".", "l.ledger", "C:\\x\\y"):
        message = f"key  a: the\nkey {path} . : x"
        assert folded_naming(message, path) == _fold(message).strip()
