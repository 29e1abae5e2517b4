"""The running accountant: epsilon after every released round, and the ledger's history.

What lives here
    :class:`PrivacyAccountant`: :meth:`~PrivacyAccountant.step` once per released round
    with the noise really added; :meth:`~PrivacyAccountant.epsilon` composes only the
    rounds charged since the last call onto what was composed before (the RDP sum of
    :mod:`secagg.dp.rdp_composition`, or the PLD of :mod:`secagg.dp.pld_composition`),
    so a round costs constant time; a trial copy (the budget check's) shares a small
    memo (:class:`_Memo`) with its original, so the round then charged is not composed
    twice. :attr:`~PrivacyAccountant.history` is plain JSON for the privacy ledger and
    :meth:`~PrivacyAccountant.from_history` recomputes the same epsilon from it: an
    auditor needs nothing but the ledger. :meth:`~PrivacyAccountant.reference_epsilon`
    is the from-scratch computation the tests and old ledgers compare with.

Why a module of its own
    It is the state a federation keeps and an auditor replays, built on the round model
    (:mod:`secagg.dp.accounting_core`) and the two compositions; planning and calibration
    never hold one.
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import dp_accounting

from secagg.dp._checks import _count, _delta, _positive, _sample_rate
from secagg.dp.accounting_core import (
    _NEIGHBOURING,
    _UNITS,
    DEFAULT_COUNT_SENSITIVITY,
    PLD_VALUE_DISCRETIZATION,
    _accountant,
    _Composition,
    _epsilon_of,
    _Round,
    dp_accounting_version,
)
from secagg.dp.pld_composition import (
    _check_pld_size,
    _PldComposition,
    _reference_pld_epsilon,
)
from secagg.dp.rdp_composition import _RdpComposition
from secagg.errors import ConfigurationError

__all__ = ["PrivacyAccountant"]


class _Memo:
    """Results an accountant shares with its trial copies, by history (the last few)."""

    SIZE = 2

    def __init__(self) -> None:
        self.results: OrderedDict[Hashable, tuple[_Composition, float]] = OrderedDict()

    def get(self, key: Hashable) -> tuple[_Composition, float] | None:
        found = self.results.get(key)
        if found is not None:
            self.results.move_to_end(key)
        return found

    def put(self, key: Hashable, composition: _Composition, value: float) -> None:
        self.results[key] = (composition, value)
        self.results.move_to_end(key)
        while len(self.results) > self.SIZE:
            self.results.popitem(last=False)


class PrivacyAccountant:
    """The engine's running accountant for client-level (or record-level) rounds.

    Call :meth:`step` once per *released* round, with the noise that was really
    added; :meth:`epsilon` is then the spend so far at the fixed ``delta``. The
    ``unit`` (``"client"`` or ``"record"``) travels into the ledger because an
    epsilon means nothing without what it protects.

    :meth:`epsilon` costs constant time per round: the rounds charged since the
    last call are composed onto what was composed before (see
    :mod:`secagg.dp.accounting`); :meth:`reference_epsilon` recomputes from scratch.
    """

    def __init__(self, delta: float, accountant: str = "pld", unit: str = "client") -> None:
        self.delta = _delta(delta)
        self.accountant = _accountant(accountant)
        if unit not in _UNITS:
            raise ConfigurationError(
                f"unit must be one of {', '.join(map(repr, _UNITS))}, not {unit!r}"
            )
        self.unit = str(unit)
        self._runs: list[list[Any]] = []  # [_Round, count]; consecutive identical merged
        self._rounds = 0
        self._pending: list[list[Any]] = []  # [_Round, count] charged since the last epsilon
        self._composition: _Composition = (
            _RdpComposition() if self.accountant == "rdp" else _PldComposition()
        )
        self._memo = _Memo()  # shared with trial copies (see __deepcopy__)
        self._cached: float | None = 0.0

    def __deepcopy__(self, memo: dict[int, Any]) -> PrivacyAccountant:
        """A trial copy: its own history, the same memo (so that the round it tries is
        not composed again when the original is charged with it)."""
        clone = copy.copy(self)
        clone._runs = [list(run) for run in self._runs]
        clone._pending = [list(run) for run in self._pending]
        clone._composition = self._composition.copy()
        memo[id(self)] = clone
        return clone

    def step(
        self,
        noise_multiplier: float,
        sample_rate: float,
        *,
        count_noise_stddev: float | None = None,
        count_sensitivity: float = DEFAULT_COUNT_SENSITIVITY,
    ) -> None:
        """Record one round.

        ``noise_multiplier`` is the multiplier applied to the update sum this
        round. For an adaptive-clipping round pass ``count_noise_stddev``
        (``sigma_b``): the multiplier is then ``z_delta``, and the round is
        charged as the composition of both releases.
        """
        z = _positive("noise_multiplier", noise_multiplier)
        q = _sample_rate(sample_rate)
        if count_noise_stddev is None:
            kind = _Round(z, q)
        else:
            kind = _Round(
                z,
                q,
                _positive("count_noise_stddev", count_noise_stddev),
                _count_sensitivity(count_sensitivity),
            )
        if self.accountant == "pld" and q < 1.0:  # a round whose PLD cannot be built
            _check_pld_size(kind.effective_noise_multiplier, q, PLD_VALUE_DISCRETIZATION)
        self._append(kind, 1)

    def _append(self, kind: _Round, count: int) -> None:
        for runs in (self._runs, self._pending):
            if runs and runs[-1][0] == kind:
                runs[-1][1] += count
            else:
                runs.append([kind, count])
        self._rounds += count
        self._cached = None

    @property
    def rounds(self) -> int:
        """Rounds recorded so far."""
        return self._rounds

    def epsilon(self) -> float:
        """Epsilon spent so far at ``self.delta`` (0.0 before the first round).

        Composes only the rounds charged since the last call onto what was composed
        before; a trial copy's result for this same history is reused."""
        if self._cached is not None:
            return self._cached
        key = tuple((kind, count) for kind, count in self._runs)
        found = self._memo.get(key)
        if found is not None:
            self._composition, self._cached = found[0].copy(), found[1]
            self._pending.clear()
            return self._cached
        # composed on a copy and kept only when every pending run went in: a run refused
        # half way (PldTooLarge) would otherwise be composed again at the next call
        composition = self._composition.copy()
        for kind, count in self._pending:
            composition.add(kind, count)
        value = composition.epsilon(self.delta)
        self._composition, self._cached = composition, value
        self._pending.clear()
        self._memo.put(key, self._composition.copy(), self._cached)
        return self._cached

    def reference_epsilon(self) -> float:
        """Epsilon from scratch: the whole history as one dp_accounting event, through
        a fresh accountant (what :meth:`epsilon` computed before it was incremental).

        Slow (the cost grows with the rounds at ``q == 1``); the tests compare
        :meth:`epsilon` with it, and ``audit verify`` falls back to it for a claim
        written by that older code. A sampled round's PLD comes from the cache the
        running accountants share (:func:`~secagg.dp.pld_composition.
        _reference_pld_epsilon`): the same figure, bit for bit, without the 0.55 s
        the library took to build it again on each call."""
        if not self._runs:
            return 0.0
        parts = [
            dp_accounting.SelfComposedDpEvent(kind.event(self.accountant), count)
            for kind, count in self._runs
        ]
        event = parts[0] if len(parts) == 1 else dp_accounting.ComposedDpEvent(parts)
        if self.accountant == "pld":
            return _reference_pld_epsilon(event, self.delta)
        return _epsilon_of(event, self.delta, self.accountant)

    @property
    def history(self) -> list[dict[str, Any]]:
        """The rounds as JSON-ready ledger entries, one per run of identical rounds.

        Each entry is self-describing (mechanism, sampling, multipliers, count,
        adjacency, unit, accountant and dp_accounting version) so an auditor can
        rebuild the exact dp_accounting events from the ledger alone.
        """
        version = dp_accounting_version()
        out = []
        for kind, count in self._runs:
            entry: dict[str, Any] = {
                "mechanism": "adaptive_clip_gaussian" if kind.adaptive else "gaussian",
                "sampling": "poisson" if kind.sample_rate < 1 else "none",
                "noise_multiplier": kind.noise_multiplier,
                "sample_rate": kind.sample_rate,
                "count": count,
            }
            if kind.adaptive:
                entry["count_noise_stddev"] = kind.count_noise_stddev
                entry["count_sensitivity"] = kind.count_sensitivity
                entry["effective_noise_multiplier"] = kind.effective_noise_multiplier
            entry.update(
                neighboring_relation=_NEIGHBOURING,
                unit=self.unit,
                accountant=self.accountant,
                dp_accounting_version=version,
            )
            out.append(entry)
        return out

    @classmethod
    def from_history(
        cls,
        history: Sequence[Mapping[str, Any]],
        delta: float,
        *,
        accountant: str | None = None,
    ) -> PrivacyAccountant:
        """Rebuild an accountant from :attr:`history` (e.g. parsed from the JSON ledger).

        By default the recorded accountant is used, so :meth:`epsilon` recomputes
        the recorded number; pass ``accountant`` to re-check with the other one.
        A different dp_accounting version only warns: the number may move in a
        late digit, which the auditor should know about but can still judge.
        """
        if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
            raise ConfigurationError("history must be a list of ledger entries")
        recorded = {entry.get("accountant") for entry in history if isinstance(entry, Mapping)}
        units = {entry.get("unit") for entry in history if isinstance(entry, Mapping)}
        if len(recorded) > 1 or len(units) > 1:
            raise ConfigurationError(
                "history mixes accountants or privacy units; one ledger is one guarantee"
            )
        chosen = accountant if accountant is not None else (recorded.pop() if recorded else "pld")
        unit = units.pop() if units else "client"
        out = cls(delta, accountant=chosen, unit=unit)
        for i, entry in enumerate(history):
            if not isinstance(entry, Mapping):
                raise ConfigurationError(f"history entry {i} is not a mapping")
        if recorded - {None} != recorded or units - {None} != units:
            raise ConfigurationError("every history entry must name its accountant and unit")
        versions = {entry.get("dp_accounting_version") for entry in history}
        if versions - {dp_accounting_version(), None}:
            warnings.warn(
                f"history was accounted with dp_accounting {sorted(map(str, versions))}, "
                f"recomputing with {dp_accounting_version()}",
                stacklevel=2,
            )
        for i, entry in enumerate(history):
            out._append(*_parse_entry(i, entry))
        return out


def _count_sensitivity(value: object) -> float:
    """An adaptive round's count sensitivity: at least :data:`DEFAULT_COUNT_SENSITIVITY`.

    Why a floor: a client reports ``1[unclipped] - 1/2`` (:func:`secagg.dp.adaptive.
    unclipped_report`), so it moves the count by 1/2, and no engine round has less.
    A smaller one is a lower epsilon for the same noise: a history rewritten to 0.01
    was recomputed by :meth:`PrivacyAccountant.from_history` at 5.30 where the rounds
    spent 5.57 (tests/dp/test_count_sensitivity_floor.py), so an auditor re-checking
    a flattering claim from its ledger found it consistent. A larger one only charges
    more, and is taken."""
    sensitivity = _positive("count_sensitivity", value)
    if sensitivity < DEFAULT_COUNT_SENSITIVITY:
        raise ConfigurationError(
            f"count_sensitivity must be at least {DEFAULT_COUNT_SENSITIVITY:g} (a client "
            f"moves the unclipped count by 1/2), not {value!r}: a smaller one understates "
            "the count release's privacy cost"
        )
    return sensitivity


def _parse_entry(index: int, entry: object) -> tuple[_Round, int]:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"history entry {index} is not a mapping")
    try:
        mechanism = entry["mechanism"]
        z = _positive("noise_multiplier", entry["noise_multiplier"])
        q = _sample_rate(entry["sample_rate"])
        count = _count("count", entry["count"], 1)
        if entry.get("neighboring_relation", _NEIGHBOURING) != _NEIGHBOURING:
            raise ConfigurationError("only add_or_remove_one adjacency is supported")
        if mechanism == "gaussian":
            return _Round(z, q), count
        if mechanism == "adaptive_clip_gaussian":
            sigma_b = _positive("count_noise_stddev", entry["count_noise_stddev"])
            sens = _count_sensitivity(entry["count_sensitivity"])
            return _Round(z, q, sigma_b, sens), count
        raise ConfigurationError(f"unknown mechanism {mechanism!r}")
    except KeyError as exc:
        raise ConfigurationError(f"history entry {index} lacks {exc.args[0]!r}") from None
    except ConfigurationError as exc:
        raise ConfigurationError(f"history entry {index}: {exc}") from None
