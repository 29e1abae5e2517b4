"""Property tests: every tampering of the privacy ledger is caught, at the row it starts.

Why: tests/ledger/test_chain.py names each kind of tampering once, on one hand-built
five-row ledger, and a review noted that nothing checks tamper detection beyond those
cases. Here hypothesis draws the ledger (2-8 rounds, completed or aborted, random
participant and contributed counts, dropouts and model digests, its keys, and every
epsilon claim from the real accountant, so the untouched ledger verifies) and the
tampering, made as someone without the key would make it: direct sqlite3 edits of the
``ledger`` and ``ledger_head`` tables.

The expected verdict comes from the rows the ledger wrote, not from the verifier: a
row that is not byte for byte the one written, after rows that are, fails its link,
hash or signature (the chain's whole point), so ``verify_ledger`` must fail at the
first row that differs from the written ledger, accept every row before it, and say
what :func:`~secagg.ledger.chain.read_chain` says of that kind of change ("edited",
"deleted", "inserted", "reordered", "truncated", the signature, the head). Its words:
an entry or a row hash changed is "edited"; a broken link (a ``prev_hash`` changed, a
row inserted or two swapped) and a gap in the sequence numbers (a row deleted) are
"deleted, inserted or reordered rows"; rows cut from the end leave every row valid
and fail the signed head ("truncated"), which does not name a row.

1. one tampering of any kind is caught at its row, in its words;
2. two tamperings are caught at the first row that differs from the written ledger:
   the first row either touched, or a later one where the second tampering put that row
   back as written; two that undo each other leave the written ledger, which verifies;
3. rows re-linked and re-signed with another key fail the first one's signature (and
   that key written into the file fails against the auditor's pinned public key);
4. an epsilon claim altered and re-signed with the ledger's own key (the key holder
   lying) leaves a valid chain and fails the epsilon replay at that row.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.signing import SigningKey
from secagg.dp.accounting import PrivacyAccountant
from secagg.ledger import Ledger, LedgerKey, verify_ledger
from secagg.ledger.chain import canonical, genesis_hash, head_message, row_hash
from secagg.ledger.entry import LedgerEntry

DELTA = 1e-5
MAX_ROUNDS = 8
#: (noise multiplier, sample rate) a drawn ledger records: q < 1 takes the accountant's
#: sampled composition (and, for a claim that does not match, the verifier's from-scratch
#: fallback), q = 1 the Gaussian's closed form
MECHANISMS = ((1.1, 0.5), (2.0, 1.0))
DROPOUT_STAGES = ("advertise_keys", "share_keys", "masked_input", "unmasking")


def _examples(count: int) -> settings:
    """Each example builds and verifies fresh ledgers (0.01-2 s a verify): no deadline."""
    return settings(max_examples=count, deadline=None)


Row = tuple[int, str, str, str, str]  # seq, entry, prev_hash, hash, signature
Head = tuple[int, str, str]  # seq, hash, signature


# --- the ledger as written ---------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    complete: bool
    participants: int
    contributed: int
    dropouts: dict[str, int]
    model_sha256: str


@dataclass(frozen=True)
class LedgerSpec:
    mechanism: tuple[float, float]
    rounds: tuple[Round, ...]
    key_seed: bytes
    salt: bytes


@functools.cache
def _true_epsilons(z: float, q: float) -> tuple[float, ...]:
    """The cumulative epsilon after 1..MAX_ROUNDS completed rounds, from the accountant
    the server holds (as ``_entries()`` in test_chain.py computes it)."""
    accountant = PrivacyAccountant(DELTA, "pld", unit="client")
    epsilons = []
    for _ in range(MAX_ROUNDS):
        accountant.step(z, q)
        epsilons.append(accountant.epsilon())
    return tuple(epsilons)


def _signing_key(seed: bytes) -> SigningKey:
    return SigningKey(Ed25519PrivateKey.from_private_bytes(seed))


def _key(spec: LedgerSpec) -> LedgerKey:
    return LedgerKey(_signing_key(spec.key_seed), spec.salt)


@st.composite
def _rounds(draw: st.DrawFn) -> Round:
    complete = draw(st.booleans())
    participants = draw(st.integers(2, 12))
    contributed = draw(st.integers(1 if complete else 0, participants))
    stages = st.sampled_from(DROPOUT_STAGES)
    dropouts = draw(st.dictionaries(stages, st.integers(0, participants), max_size=3))
    digest = draw(st.binary(min_size=32, max_size=32)).hex()
    return Round(complete, participants, contributed, dropouts, digest)


_seeds = st.binary(min_size=32, max_size=32)
_ledgers = st.builds(
    LedgerSpec,
    mechanism=st.sampled_from(MECHANISMS),
    rounds=st.lists(_rounds(), min_size=2, max_size=MAX_ROUNDS).map(tuple),
    key_seed=_seeds,
    salt=_seeds,
)


def _entries(spec: LedgerSpec, key: LedgerKey) -> list[dict[str, Any]]:
    """The rows a central-DP server writes for these rounds, each claiming the true
    cumulative epsilon (aborted rounds repeat the last; none before the first) and the
    model the round released (an aborted round the previous row's: the model did not
    move, and verify fails an aborted row whose model moved)."""
    z, q = spec.mechanism
    epsilons = _true_epsilons(z, q)
    completed = 0
    rows = []
    for number, drawn in enumerate(spec.rounds, start=1):
        completed += drawn.complete
        dp = {
            "unit": "client",
            "mechanism": "central",
            "clip": 1.0,
            "noise_multiplier": z,
            "noise_std": z,
            "sample_rate": q,
            "accountant": "pld",
            "delta": DELTA,
            "adjacency": "add/remove one client",
            "sampling": {"kind": "poisson", "rate": q, "population": 20, "seeded": False},
        }
        entry = LedgerEntry(
            federation="ledger-properties",
            round=number,
            status="complete" if drawn.complete else "aborted",
            reason=None if drawn.complete else "too few clients",
            started_at=1000.0 * number,
            finished_at=1000.0 * number + 5.0,
            backend={"name": "secagg+"},
            participants=tuple(f"client-{n}" for n in range(drawn.participants)),
            contributed=drawn.contributed,
            dropouts=drawn.dropouts,
            dp=dp,
            epsilon=epsilons[completed - 1] if completed else None,
            delta=DELTA,
            model_sha256=(
                drawn.model_sha256 if drawn.complete or not rows else rows[-1]["model_sha256"]
            ),
            # the identity hashes may only be published when no amplification is claimed
            publish_participants=q == 1.0,
        )
        rows.append(entry.row(key.identity_hash))
    return rows


@contextmanager
def _ledger(spec: LedgerSpec) -> Iterator[tuple[Path, LedgerKey]]:
    """A fresh ledger file holding the drawn rounds, deleted afterwards."""
    key = _key(spec)
    with tempfile.TemporaryDirectory(prefix="ledger-properties-") as folder:
        path = Path(folder) / "ledger.sqlite"
        ledger = Ledger(path, key)
        for entry in _entries(spec, key):
            ledger.append(entry)
        ledger.close()
        yield path, key


# --- the tables, read and written with sqlite3 as a tamperer would --------------------------


@dataclass(frozen=True)
class Tables:
    rows: tuple[Row, ...]
    head: Head | None
    public_key: str  # ledger_meta's, hex


def _read(path: Path) -> Tables:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT seq, entry, prev_hash, hash, signature FROM ledger ORDER BY seq")
        written = tuple((int(s), str(e), str(p), str(h), str(g)) for s, e, p, h, g in rows)
        stored = db.execute("SELECT seq, hash, signature FROM ledger_head").fetchone()
        (key,) = db.execute("SELECT value FROM ledger_meta WHERE key = 'public_key'").fetchone()
    finally:
        db.close()
    head = None if stored is None else (int(stored[0]), str(stored[1]), str(stored[2]))
    return Tables(written, head, str(key))


def _write(path: Path, tables: Tables) -> None:
    """Replace both tables' contents (``seq`` is the rowid: the order the verifier reads)."""
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute("DELETE FROM ledger")
            db.executemany("INSERT INTO ledger VALUES (?, ?, ?, ?, ?)", tables.rows)
            db.execute("DELETE FROM ledger_head")
            if tables.head is not None:
                db.execute("INSERT INTO ledger_head VALUES (1, ?, ?, ?)", tables.head)
            db.execute(
                "UPDATE ledger_meta SET value = ? WHERE key = 'public_key'", (tables.public_key,)
            )
    finally:
        db.close()


def _first_difference(written: tuple[Row, ...], now: tuple[Row, ...]) -> int | None:
    """The first row (1-based) of ``now`` that is not the written row at its place;
    None when ``now`` is the written rows or a prefix of them (rows cut from the end)."""
    for index, (old, new) in enumerate(zip(written, now, strict=False), start=1):
        if old != new:
            return index
    return len(written) + 1 if len(now) > len(written) else None


def _reseal(tables: Tables, signing: SigningKey, genesis: str, start: int) -> Tables:
    """Rows ``start`` on renumbered, re-linked, re-hashed over canonical entries and
    signed by ``signing``, and the head signed by it: the chain as a forger with that
    key would leave it."""
    rows = list(tables.rows[: start - 1])
    prev = rows[-1][3] if rows else genesis
    for seq, (_, text, _, _, _) in enumerate(tables.rows[start - 1 :], start=start):
        body = canonical(json.loads(text))
        digest = row_hash(seq, prev, body)
        rows.append((seq, body.decode(), prev, digest, signing.sign(bytes.fromhex(digest)).hex()))
        prev = digest
    head = (len(rows), prev, signing.sign(head_message(len(rows), prev)).hex())
    return replace(tables, rows=tuple(rows), head=head)


# --- tamperings --------------------------------------------------------------------------

ROW_KINDS = ("edit", "flip", "delete", "truncate", "insert", "swap")
KINDS = (*ROW_KINDS, "head")
DETAILS = {
    "edit": ("replace", "remove", "add", "reformat"),
    "flip": ("prev_hash", "hash", "signature"),
    "head": ("hash", "signature", "seq", "delete"),
}
#: what read_chain says of a flipped byte in each column of a row
FLIP_WORDS = {"prev_hash": ("does not link",), "hash": ("edited",), "signature": ("signature",)}

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**9), 10**9)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=4,
)


@dataclass(frozen=True)
class Tamper:
    """One tampering; rows and positions are drawn before the table's length is known
    (an earlier tampering may change it) and taken modulo it."""

    kind: str
    a: int
    b: int
    detail: str
    value: Any  # edit: the new JSON value; flip: the byte's XOR mask (1-255)


def _tampers(kinds: tuple[str, ...]) -> st.SearchStrategy[Tamper]:
    def of(kind: str) -> st.SearchStrategy[Tamper]:
        return st.builds(
            Tamper,
            kind=st.just(kind),
            a=st.integers(0, 63),
            b=st.integers(0, 63),
            detail=st.sampled_from(DETAILS.get(kind, ("",))),
            value=_json_values if kind == "edit" else st.integers(1, 255),
        )

    return st.sampled_from(kinds).flatmap(of)


@dataclass(frozen=True)
class Effect:
    row: int | None  # the first row no longer the written one (None: every row is)
    touched: int | None  # the first position changed, a row cut from the end included
    words: tuple[str, ...]  # what the verifier says of this kind of change


def _flipped(hex_text: str, index: int, mask: int) -> str:
    data = bytearray(bytes.fromhex(hex_text))
    data[index % len(data)] ^= mask
    return data.hex()


def _leaves(value: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths to every value that is not a non-empty object."""
    out = []
    for key, inner in value.items():
        if isinstance(inner, dict) and inner:
            out += _leaves(inner, (*path, key))
        else:
            out.append((*path, key))
    return out


def _edited(text: str, tamper: Tamper) -> str:
    """The entry with one field replaced, removed or added (canonical JSON, so only the
    hash can tell), or the same entry written out of canonical form."""
    entry = json.loads(text)
    if tamper.detail == "reformat":
        return json.dumps(entry, indent=1)
    path = sorted(_leaves(entry))[tamper.b % len(_leaves(entry))]
    parent = entry
    for key in path[:-1]:
        parent = parent[key]
    if tamper.detail == "remove":
        del parent[path[-1]]
    elif tamper.detail == "add":
        parent[path[-1] + "+"] = tamper.value
    else:
        parent[path[-1]] = tamper.value
        if canonical(entry).decode() == text:  # drew the value it had: change it anyway
            parent[path[-1]] = [tamper.value]
    return canonical(entry).decode()


def _apply(tamper: Tamper, tables: Tables) -> tuple[Tables, Effect]:
    if tamper.kind == "head":
        return _tamper_head(tamper, tables)
    rows = list(tables.rows)
    n = len(rows)
    if n == 0 or (tamper.kind in ("delete", "swap") and n < 2):
        return tables, Effect(None, None, ())  # no row of that kind left to tamper with
    i = 1 + tamper.a % n
    if tamper.kind == "edit":
        seq, text, prev, digest, signature = rows[i - 1]
        rows[i - 1] = (seq, _edited(text, tamper), prev, digest, signature)
        words: tuple[str, ...] = ("edited",)
    elif tamper.kind == "flip":
        seq, text, *columns = rows[i - 1]  # prev_hash, hash, signature
        column = DETAILS["flip"].index(tamper.detail)
        columns[column] = _flipped(columns[column], tamper.b, tamper.value)
        rows[i - 1] = (seq, text, *columns)
        words = FLIP_WORDS[tamper.detail]
    elif tamper.kind == "delete":  # a row before the last (the last one is truncation)
        i = 1 + tamper.a % (n - 1)
        del rows[i - 1]
        words = ("deleted",)
    elif tamper.kind == "truncate":
        cut = 1 + tamper.a % n
        cut_back = replace(tables, rows=tuple(rows[: n - cut]))
        return cut_back, Effect(None, n - cut + 1, ("truncated",))
    elif tamper.kind == "insert":  # a copy of row j, at i; the rows from i on move up one
        j, i = i, 1 + tamper.b % (n + 1)
        copy = (rows[i - 2][0] + 1 if i > 1 else 1, *rows[j - 1][1:])
        rows = [*rows[: i - 1], copy, *((r[0] + 1, *r[1:]) for r in rows[i - 1 :])]
        if i <= n and copy == tables.rows[i - 1]:
            i += 1  # a copy of the row it displaces: that row, moved up, is the stray one
        words = ("inserted",)
    else:  # swap the contents of rows i < j, their sequence numbers kept
        j = 1 + (i + tamper.b % (n - 1)) % n
        i, j = min(i, j), max(i, j)
        first, second = rows[i - 1], rows[j - 1]
        rows[i - 1], rows[j - 1] = (first[0], *second[1:]), (second[0], *first[1:])
        words = ("reordered",)
    return replace(tables, rows=tuple(rows)), Effect(i, i, words)


def _tamper_head(tamper: Tamper, tables: Tables) -> tuple[Tables, Effect]:
    if tables.head is None:
        return tables, Effect(None, None, ())
    seq, digest, signature = tables.head
    head: Head | None
    if tamper.detail == "delete":
        head, words = None, ("head", "truncated")
    elif tamper.detail == "seq":
        head, words = (seq + 1 + tamper.a % 5, digest, signature), ("head", "signature")
    elif tamper.detail == "hash":
        head = (seq, _flipped(digest, tamper.b, tamper.value), signature)
        words = ("head", "signature")
    else:
        head = (seq, digest, _flipped(signature, tamper.b, tamper.value))
        words = ("head", "signature")
    return replace(tables, head=head), Effect(None, None, words)


def _named_row(failure: str) -> int | None:
    """The row a chain failure names (``row N (seq M): ...``); None for the head's."""
    if not failure.startswith("row "):
        return None
    return int(failure.split()[1])


# --- the properties ------------------------------------------------------------------------


@_examples(60)
@given(spec=_ledgers, tamper=_tampers(KINDS))
def test_one_tampering_is_named_at_its_row_in_its_words(spec: LedgerSpec, tamper: Tamper) -> None:
    with _ledger(spec) as (path, key):
        untouched = verify_ledger(path, key.public_key)
        assert untouched.ok, untouched.first_failure
        assert len(untouched.chain.rows) == len(spec.rounds)
        written = _read(path)
        tampered, effect = _apply(tamper, written)
        _write(path, tampered)
        result = verify_ledger(path, key.public_key)
    assert tampered != written  # every drawn tampering changes a ledger of 2+ rows
    assert effect.row == _first_difference(written.rows, tampered.rows)  # the harness's own
    failure = result.first_failure
    assert not result.ok and failure is not None
    assert _named_row(failure) == effect.row, failure
    # every row before it is the one written, and verified
    assert len(result.chain.rows) == (len(tampered.rows) if effect.row is None else effect.row - 1)
    for word in effect.words:
        assert word in failure, (word, failure)


@_examples(60)
@given(spec=_ledgers, first=_tampers(KINDS), second=_tampers(KINDS))
def test_two_tamperings_are_named_at_the_first_row_not_as_written(
    spec: LedgerSpec, first: Tamper, second: Tamper
) -> None:
    with _ledger(spec) as (path, key):
        written = _read(path)
        once, first_effect = _apply(first, written)
        twice, second_effect = _apply(second, once)
        _write(path, twice)
        result = verify_ledger(path, key.public_key)
    if twice == written:  # the second undid the first: the ledger is as written
        assert result.ok, result.first_failure
        return
    failure = result.first_failure
    assert not result.ok and failure is not None
    row = _first_difference(written.rows, twice.rows)
    assert _named_row(failure) == row, failure
    if row is None:  # every row is a written one (some cut from the end): the head fails
        assert "head" in failure, failure
        assert len(result.chain.rows) == len(twice.rows)
        return
    assert len(result.chain.rows) == row - 1
    # rows before the first either touched are untouched, so the named row is never before
    # it; it is later only where the second tampering put the written row back
    touched = [e.touched for e in (first_effect, second_effect) if e.touched is not None]
    assert touched and row >= min(touched)


@_examples(40)
@given(
    spec=_ledgers,
    tamper=st.none() | _tampers(ROW_KINDS),
    start=st.integers(0, 63),
    impostor_seed=_seeds,
    key_in_file=st.booleans(),
)
def test_rows_re_signed_with_another_key_fail_on_the_pinned_public_key(
    spec: LedgerSpec, tamper: Tamper | None, start: int, impostor_seed: bytes, key_in_file: bool
) -> None:
    if impostor_seed == spec.key_seed:  # another key, whatever was drawn
        impostor_seed = bytes([impostor_seed[0] ^ 1, *impostor_seed[1:]])
    impostor = _signing_key(impostor_seed)
    with _ledger(spec) as (path, key):
        written = _read(path)
        tampered = written if tamper is None else _apply(tamper, written)[0]
        row = _first_difference(written.rows, tampered.rows)
        if tampered.rows == written.rows:  # re-signs rows as written, from a drawn one on
            row = 1 + start % len(written.rows)
        resign_from = len(tampered.rows) + 1 if row is None else row  # None: just the head
        forged = _reseal(tampered, impostor, genesis_hash(key.public_key), resign_from)
        if key_in_file:  # the forger's public key in ledger_meta too
            forged = replace(forged, public_key=impostor.verify_key.raw.hex())
        _write(path, forged)
        result = verify_ledger(path, key.public_key)
    failure = result.first_failure
    assert not result.ok and failure is not None
    if key_in_file:
        assert "another public key" in failure, failure
        assert result.chain.rows == []
    elif row is None:  # rows cut from the end, the head re-signed
        assert failure == "the head's signature does not verify"
        assert len(result.chain.rows) == len(forged.rows)
    else:  # links and hashes hold: only the signatures tell
        assert _named_row(failure) == row, failure
        assert "signature does not verify" in failure and "another key" in failure
        assert len(result.chain.rows) == row - 1


@_examples(10)
@given(
    spec=_ledgers,
    at=st.integers(0, 63),
    lie=st.none() | st.floats(0.05, 0.95) | st.floats(1.05, 20.0),
    onward=st.booleans(),
)
def test_an_epsilon_claim_re_signed_with_the_ledger_key_fails_the_replay(
    spec: LedgerSpec, at: int, lie: float | None, onward: bool
) -> None:
    """``lie``: the factor the claim is scaled by (None: the claim dropped); a row that
    claims none yet (no round completed) claims ``lie`` itself (or 1.0).
    ``onward``: every later row's claim is altered the same way, as a consistent liar
    would."""
    n = len(spec.rounds)
    row = 1 + at % n
    with _ledger(spec) as (path, key):
        written = _read(path)
        rows = list(written.rows)
        truth: float | None = None
        claim: float | None = None
        for index in range(row, (n if onward else row) + 1):
            seq, text, prev, digest, signature = rows[index - 1]
            entry = json.loads(text)
            true = entry["privacy"]["epsilon"]
            lied = (lie or 1.0) if true is None else (None if lie is None else true * lie)
            entry["privacy"]["epsilon"] = lied
            rows[index - 1] = (seq, canonical(entry).decode(), prev, digest, signature)
            if index == row:
                truth, claim = true, lied
        lying = replace(written, rows=tuple(rows))
        _write(path, _reseal(lying, key.signing, genesis_hash(key.public_key), row))
        result = verify_ledger(path, key.public_key)
    assert result.chain.ok, result.chain.failure  # signed by the ledger's key: a valid chain
    failure = result.first_failure
    assert not result.ok and failure is not None
    assert failure.startswith(f"row {row} (round {row}): claims epsilon {claim} "), failure
    assert len(result.epsilons) == row  # the replay got to that row and stopped there
    understated = claim is not None and truth is not None and claim < truth
    assert ("the claim is below the mechanism's" in failure) == understated, failure
