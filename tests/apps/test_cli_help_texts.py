"""``secagg ... --help`` as a newcomer reads it: every option says what it is, a
repeatable benchmark option says its default, and a party's help names only its own flags.

Why (help review, 2026-12-06): ``certs init/issue/revoke --dir``, ``keyholder-init
--config`` and ``round --bits`` showed no text at all; ``bench masking/ckks/dp/scale``'s
``--n`` and ``--d`` (and masking's ``--dropout`` and ``--graph``) gave no default, so the
grid a bare run measures was nowhere on the screen; and ``secagg client --help`` said the
message limits' defaults come "with secagg keyholder --config", a flag of another
command. In process: click's own help objects, no subprocess.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import click
import pytest

from secagg.apps.bench import backends, dp, masking, scale
from secagg.apps.cli import main


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


def _option(command_path: str, flag: str) -> click.Option:
    group: click.Command = main
    for word in command_path.split():
        assert isinstance(group, click.Group)
        group = group.commands[word]
    (option,) = [p for p in group.params if isinstance(p, click.Option) and flag in p.opts]
    return option


def _words(values: Sequence[float]) -> str:
    """``100 000, 1 000 000``: the defaults as the help spells them (a space between the
    thousands from 10 000 on)."""
    return ", ".join(f"{v:,}".replace(",", " ") if v >= 10_000 else f"{v:g}" for v in values)


def test_every_visible_option_says_what_it_is() -> None:
    silent = [
        f"secagg {path} {'/'.join(param.opts)}"
        for path, command in _commands(main)
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert silent == []


@pytest.mark.parametrize(
    ("command", "flag", "defaults"),
    [
        ("bench masking", "--n", masking.GRID["ns"]),
        ("bench masking", "--d", masking.GRID["ds"]),
        ("bench masking", "--dropout", masking.GRID["dropouts"]),
        ("bench ckks", "--n", backends.NS),
        ("bench ckks", "--d", backends.DS),
        ("bench dp", "--d", dp.DIMENSIONS),
        ("bench scale", "--n", scale.NS),
        ("bench scale", "--d", (scale.D,)),
    ],
)
def test_a_benchmarks_grid_option_says_its_default(
    command: str, flag: str, defaults: Sequence[float]
) -> None:
    help_text = _option(command, flag).help or ""
    assert f"default {_words(defaults)})" in help_text, help_text


def test_the_graphs_default_is_both() -> None:
    assert set(masking.GRID["graphs"]) == {"complete", "harary"}
    assert "default both" in (_option("bench masking", "--graph").help or "")


@pytest.mark.parametrize("flag", ["--max-message-bytes", "--message-receive-timeout"])
def test_a_partys_message_limits_name_only_its_own_flags(flag: str) -> None:
    client_help = _option("client", flag).help or ""
    assert "keyholder" not in client_help and "--config" not in client_help, client_help
    keyholder_help = _option("keyholder", flag).help or ""
    assert keyholder_help.endswith(", or with --config the config's."), keyholder_help
    assert "secagg keyholder --config" not in keyholder_help, keyholder_help
