"""A branch's policy refusal names a setting its operator (or the server's) can change:
a ``[branch]`` key, a ``secagg client`` flag, or a federation file's key.

Review (2026-12-06): a round whose certificates did not verify was refused as ``refused
by policy branch.identity`` and a round whose value bound was below its clip as
``refused by policy value_bound``: neither is a ``[branch]`` key, a flag or a key of a
federation file, so the line sent its reader looking for a setting that does not exist.
The first names ``--certs`` now (the folder with this branch's certificate and its CA),
the second the server's ``backend.value_bound``. The setting stays one token, as the
leave a branch sends (``refused by its policy: SETTING``) and the ledger carry it.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import click
import pytest

import secagg
from secagg.aggregation.policy import BranchPolicy
from secagg.apps.cli import main
from secagg.errors import PolicyRefused
from secagg.runtime import client as runtime_client
from secagg.runtime.client import BranchIdentity
from secagg.runtime.config import _section_keys

#: what no operator can change: the server's setup contradicts the spec it announced
#: (an honest server builds both from one plan), or its spec is one the protocol cannot
#: plan (the active variant among 2 clients, which an honest server's own planning
#: refuses), so no setting admits the round
NO_SETTING = {"round_setup", "round_spec"}


def _client_flags() -> set[str]:
    command = main.commands["client"]
    return {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}


def operator_settings() -> set[str]:
    """Every name a refusal may give: ``branch.KEY``, a ``secagg client`` flag, or a
    federation file's ``section.key``."""
    branch = {f"branch.{f.name}" for f in dataclasses.fields(BranchPolicy)}
    federation = {f"{section}.{key}" for section, keys in _section_keys().items() for key in keys}
    return branch | _client_flags() | federation


def _literal_settings(path: Path) -> list[tuple[str, int]]:
    """The settings named by string (or a module constant) in ``path``'s ``PolicyRefused(...)``
    and ``....refuse(...)`` calls, with their lines; ``refuse`` prefixes ``branch.``."""
    tree = ast.parse(path.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name not in ("PolicyRefused", "refuse"):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            setting = first.value
        elif isinstance(first, ast.Name) and first.id in constants:
            setting = constants[first.id]
        else:  # an f-string: the protocol's ``{keys}max_clients``, tested on its own
            continue
        found.append(("branch." + setting if name == "refuse" else setting, node.lineno))
    return found


ROOT = Path(inspect.getfile(secagg)).parent
SOURCES = sorted(
    path
    for package in ("aggregation", "runtime", "protocol")
    for path in (ROOT / package).glob("*.py")
)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_refusal_names_a_setting_an_operator_sets(path: Path) -> None:
    known = operator_settings()
    for setting, line in _literal_settings(path):
        assert setting in known or setting in NO_SETTING, f"{path.name}:{line}: {setting!r}"


def test_the_scan_sees_the_refusals_it_checks() -> None:
    """The scan finds the two renamed refusals (a scan finding nothing passes anything)."""
    names = {s for path in SOURCES for s, _ in _literal_settings(path)}
    assert {"--certs", "backend.value_bound", "branch.max_clip"} <= names, names


def _identity(check: object = None) -> BranchIdentity:
    verify = check if callable(check) else (lambda der: der.decode())
    return BranchIdentity(b"mine", None, verify)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("certificates", "party", "check", "said"),
    [
        ((b"other", b"mine"), 0, None, "does not list this branch's certificate"),
        ((b"mine", b"forged"), 0, "raise", "party 1's certificate does not verify"),
        ((b"mine", b"mine"), 0, None, "one branch's certificate for several parties"),
    ],
)
def test_an_identity_refusal_names_the_certificate_flag(
    certificates: tuple[bytes, ...], party: int, check: str | None, said: str
) -> None:
    def refuse_forged(der: bytes) -> str:
        if der == b"forged":
            raise ValueError("not issued by this CA")
        return der.decode()

    identity = _identity(refuse_forged if check == "raise" else None)
    with pytest.raises(PolicyRefused) as refused:
        identity.round_identity(certificates, party)
    assert refused.value.setting == "--certs"
    assert "--certs" in _client_flags()
    assert str(refused.value).startswith("refused by policy --certs: ") and said in str(
        refused.value
    )


def test_a_bound_below_the_clip_names_the_servers_value_bound() -> None:
    with pytest.raises(PolicyRefused) as refused:
        runtime_client._check_bound_holds_the_clip(0.5, 1.0)
    assert refused.value.setting == "backend.value_bound"
    assert "backend.value_bound" in operator_settings()
    assert "dp.clip" in str(refused.value)
