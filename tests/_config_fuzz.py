"""Shared pieces of the configuration fuzz tests: a TOML writer, wrong values, the oracle.

Why a writer of our own: the suite needs none of the TOML-writing libraries, and a
fuzz test must write what they refuse (``nan``, ``inf``, mixed arrays, keys that need
quoting, control characters in strings). The oracle is the project's rule for a
mistake in a file: a :class:`~secagg.errors.ConfigurationError` whose message is one
line and names the key; any other exception, or a second line, is a failure.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable
from typing import Any

from hypothesis import strategies as st

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quotes, backslashes and control characters
    escaped (TOML refuses them raw), everything else as it is."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else toml_string(name)


def toml_value(value: Any) -> str:
    """Any value a TOML file can hold, inline: nan and inf too, dates, arrays of mixed
    types and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime.date):  # a datetime too: TOML's local date and time
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"no TOML for {value!r}")


def toml_text(document: dict[str, Any]) -> str:
    """A document: top-level values first (before any header), then one ``[section]``
    per table, its nested tables inline."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in document.items() if not _table(v)]
    for name, table in document.items():
        if _table(table):
            lines.append(f"[{toml_key(name)}]")
            lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def _table(value: Any) -> bool:
    return isinstance(value, dict)


#: values a hand-written file gets wrong, whatever the key: each type TOML has, the
#: edges of every range (0, -0.0, -1, 2**63, 2**70, 1e308, the smallest subnormal, one
#: past an upper bound: a week and a second, gRPC's 2**31 - 1, a seed of 2**32, a noise
#: multiplier of 10^5, a clip or value bound of 10^6 + 1, a threshold of 100 001), nan
#: and both infinities, empty, blank and non-ASCII strings, numbers as strings
EDGES: tuple[Any, ...] = (
    10**400,  # past the floats: tomllib reads any integer, range checks raised OverflowError
    -(10**400),
    2**70,
    -(2**70),
    2**63,
    2**32,
    2**31,
    2**31 - 1,
    7 * 24 * 3600 + 1,
    1e5,
    1e6 + 1,
    100_001,
    -1,
    0,
    1,
    2,
    -0.0,
    0.0,
    0.5,
    1.0,
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -1e308,
    5e-324,
    -1e-9,
    "",
    " ",
    "nan",
    "1.0",
    "30",
    "true",
    "é",
    "line\nbreak",
    "\u2028",
    True,
    False,
)

scalars = st.one_of(
    st.sampled_from(EDGES),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
)

#: a wrong value: a scalar, or a list or a table where a scalar was (or the reverse)
wrong_values = st.one_of(
    scalars,
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=6), scalars, max_size=2),
)


def misspelt(name: str) -> st.SearchStrategy[str]:
    """``name`` with one character dropped, doubled, swapped or changed."""

    def edit(args: tuple[int, int, str]) -> str:
        position, kind, char = args
        i = position % len(name)
        if kind == 0:
            return name[:i] + name[i + 1 :]
        if kind == 1:
            return name[:i] + name[i] + name[i:]
        if kind == 2 and i + 1 < len(name):
            return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        return name[:i] + char + name[i + 1 :]

    return (
        st.tuples(st.integers(0, 200), st.integers(0, 3), st.sampled_from("aeiou_xs"))
        .map(edit)
        .filter(lambda spelt: spelt != name and spelt != "")
    )


def one_line(message: str) -> bool:
    """A message of one line: no newline, nor any of the separators ``splitlines``
    breaks at (a line separator in a repr is escaped, so only raw text fails)."""
    return len(message.splitlines()) == 1


def names_key(message: str, section: str, key: str) -> bool:
    """Whether ``message`` names ``key`` of ``section``: ``section.key``, or the key
    beside its ``[section]``, or a ``--flag`` spelling of it."""
    if f"{section}.{key}" in message:
        return True
    return f"[{section}]" in message and re.search(rf"\b{re.escape(key)}\b", message) is not None


def names_any(message: str, places: Iterable[tuple[str, str]]) -> bool:
    return any(names_key(message, section, key) for section, key in places)


# --- edits of a document, as plain tuples (so a found case is an ``@example``) --------

#: an edit: ``(kind, *arguments)``, applied by :func:`apply_edit`
Edit = tuple[Any, ...]
Place = tuple[str, str]

#: lines no TOML parser takes, whatever precedes them
GARBAGE: tuple[str, ...] = (
    "x = ",
    "= 1",
    "[dp",
    "rounds = 1_",
    "clip = 1e",
    'a = "unclosed',
    "a = 'it''s'",
    "\x00",
    "dimension = 0x",
    "a = 1 b = 2",
    "[]",
)


def edit_strategy(
    section_keys: dict[str, list[str]], *, shadow_into: str | None = None
) -> st.SearchStrategy[Edit]:
    """One random edit of a document of ``section_keys`` (every key of every section):
    a wrong value for any key (most often), a key dropped, misspelt or moved to another
    section, a value where a section was, an unknown section, a key above every header,
    a line that is not TOML, and (``shadow_into``) a section written as a key of that
    section (``[federation] dp = ...``, the TOML of the dotted ``dp.clip = 1`` there)."""
    sections = sorted(section_keys)
    keyed = st.sampled_from(sections).flatmap(
        lambda s: st.tuples(st.just(s), st.sampled_from(section_keys[s]))
    )
    not_tables = wrong_values.filter(lambda v: not isinstance(v, dict))
    options = [
        st.tuples(st.just("value"), keyed, wrong_values),
        st.tuples(st.just("value"), keyed, scalars),
        st.tuples(st.just("value"), keyed, scalars),
        st.tuples(st.just("drop"), keyed),
        keyed.flatmap(lambda p: st.tuples(st.just("misspell"), st.just(p), misspelt(p[1]))),
        st.tuples(st.just("move"), keyed, st.sampled_from(sections)),
        st.tuples(st.just("section_value"), st.sampled_from(sections), not_tables),
        st.tuples(
            st.just("unknown"),
            st.one_of(
                st.sampled_from(sections).flatmap(misspelt), st.text(min_size=1, max_size=8)
            ).filter(lambda name: name not in section_keys),
        ),
        st.tuples(st.just("top"), keyed, not_tables),
        st.tuples(st.just("raw"), st.sampled_from(GARBAGE)),
    ]
    if shadow_into is not None:
        others = [s for s in sections if s != shadow_into]
        options.append(st.tuples(st.just("shadow"), st.sampled_from(others), wrong_values))
    return st.one_of(options)


def apply_edit(document: dict[str, Any], edit: Edit, shadow_into: str | None = None) -> list[Place]:
    """Apply ``edit`` to ``document`` in place; returns the ``(section, key)`` places a
    refusal may name (``(name, name)`` for a section or a top-level name). An edit that
    does not apply (a key the document lacks) changes nothing and names nothing."""
    kind = edit[0]
    if kind in ("value", "drop", "misspell", "move", "top"):
        section, key = edit[1]
        table = document.get(section)
        if kind == "value":
            if not isinstance(table, dict):
                table = document[section] = {}
            table[key] = edit[2]
            return [(section, key)]
        if kind == "top":
            if key in document:  # a key named as a section: a value there is section_value
                return []
            document[key] = edit[2]
            return [(key, key)]
        if not isinstance(table, dict) or key not in table:
            return []
        if kind == "drop":
            del table[key]
            return [(section, key)]
        if kind == "misspell":
            table[edit[2]] = table.pop(key)
            return [(section, edit[2]), (section, key)]
        other = edit[2]
        if other == section or not isinstance(document.setdefault(other, {}), dict):
            return []
        document[other][key] = table.pop(key)
        return [(other, key), (section, key)]  # unknown where it went, missing where it was
    if kind == "section_value":  # the section's keys are gone too
        lost = document.get(edit[1])
        document[edit[1]] = edit[2]
        kept = lost if isinstance(lost, dict) else {}
        return [(edit[1], edit[1])] + [(edit[1], key) for key in kept]
    if kind == "unknown":
        document[edit[1]] = {"x": 1}
        return [(edit[1], edit[1])]
    if kind == "shadow":
        assert shadow_into is not None
        document.pop(edit[1], None)
        host = document.setdefault(shadow_into, {})
        if not isinstance(host, dict):
            return []
        host[edit[1]] = edit[2]
        return [(shadow_into, edit[1])]
    raise AssertionError(f"unknown edit {edit!r}")


def edited_text(
    document: dict[str, Any], edits: list[Edit], shadow_into: str | None = None
) -> tuple[str, list[Place], bool]:
    """The TOML text of ``document`` after ``edits`` (a ``raw`` edit appends its line),
    the places a refusal may name, and whether the text is no longer TOML."""
    places: list[Place] = []
    garbage = [edit[1] for edit in edits if edit[0] == "raw"]
    for edit in edits:
        if edit[0] != "raw":
            places.extend(apply_edit(document, edit, shadow_into))
    text = toml_text(document) + "".join(line + "\n" for line in garbage)
    return text, places, bool(garbage)


def refusal_names_a_place(message: str, places: list[Place]) -> bool:
    """Whether a refusal names one of the edited places: a key with its section, or a
    section (or a top-level name) by itself."""
    return names_any(message, places) or any(
        section == key
        and (  # a name no terminal shows is named by its repr: '\x1f'
            repr(key) in message
            or re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", message) is not None
        )
        for section, key in places
    )
