"""Parameter types shared by the command-line interfaces.

Why: click's ``FloatRange`` compares the value with its bounds, and every comparison
with NaN is false, so ``--connect-timeout nan`` passed a ``min=0`` range and hung a
branch, and ``-z nan`` ran a whole audit (CLI audit, 2026-12-03). :class:`FiniteFloat`
refuses NaN always and infinity unless the option documents it, with click's own
one-line usage error naming the flag.
"""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path
from typing import Any

import click


class FiniteFloat(click.FloatRange):
    """A float in an optional range that is never NaN, and infinite only if allowed."""

    def __init__(self, *args: Any, allow_inf: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allow_inf = allow_inf
        if self.min is None and self.max is None:
            self.name = "float"  # its metavar: FLOAT, not FLOAT RANGE with no range

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        # an allowed infinity means "never": it passes a max, which bounds finite values
        # only (``--idle inf`` is no wait at all, ``--idle 1e300`` a typo for one)
        number = click.FLOAT.convert(value, param, ctx)
        if self.allow_inf and number == math.inf:
            return number
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        if math.isinf(number) and not self.allow_inf:
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

    def _describe_range(self) -> str:
        """No range text without a bound: click's FloatRange renders ``[x<=None]`` for
        ``FiniteFloat()`` in every unbounded option's help (CLI audit, 2026-12-05)."""
        if self.min is None and self.max is None:
            return ""
        return super()._describe_range()


#: any finite float (the range checks, if any, are the command's own)
FINITE = FiniteFloat()


class NonEmptyPath(click.Path):
    """A :class:`click.Path` that refuses an empty or blank value, naming the flag.

    Why: click takes ``""`` as the current folder. ``certs init --dir ""`` wrote a CA
    into whatever folder the command ran in, ``audit verify ""`` failed as a verification
    ("FAILED: cannot be read as a ledger: PosixPath('.') has an empty name", exit 1)
    rather than a usage error, and ``keyholder-init --key ""`` said "--key  is a
    folder" (CLI flag fuzz, 2026-12-05); an unset ``$VAR`` in a script gives exactly
    that. ``--config ""`` and ``--out ""`` were refused one by one before; this type
    refuses it for every path parameter that uses it."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            optional = param is not None and not param.required
            self.fail(
                "an empty path: give one" + (", or leave the option out" if optional else ""),
                param,
                ctx,
            )
        if isinstance(param, click.Option) and isinstance(value, str | os.PathLike):
            self._refuse_what_the_machine_refuses(value, param)
        return super().convert(value, param, ctx)

    def _refuse_what_the_machine_refuses(self, value: str | os.PathLike[str], option: Any) -> None:
        """The machine's refusal of an option's path, said by the one rule before click's
        own checks (``secagg.apps.commands.common.os_error_status``): a path it may not
        look at (no search permission on a folder on it), or one that exists but that
        the command may not read or write as it needs, is exit 1 in one line naming
        the flag, the path and the cause (``Error: --config: Permission denied: F``).

        Why: click's checks said it as a usage error, exit 2: ``server --config F``
        with F unreadable read ``Invalid value for '--config': File 'F' is not
        readable.``, ``bench --out`` one it may not overwrite ``... is not writable``,
        and a folder it may not search made F ``does not exist`` (path-failure review,
        2026-12-07); the commands' own handlers of the rule never ran. A path that
        names no file is left to click (exit 2); a positional argument too (an audited
        ledger's status is the audit's)."""
        from secagg.apps.commands.common import machine_failure, os_error_status, shown_path

        flag = option.opts[0] if option.opts else option.human_readable_name
        try:
            os.stat(value)
        except OSError as exc:
            if os_error_status(exc) == 1:
                shown = shown_path(os.fsdecode(value))  # one line whatever the name holds
                raise machine_failure(flag, f"{exc.strerror}: {shown}") from None
            return  # missing, behind a file, too long: click's own words, exit 2
        except ValueError:  # a NUL in the path: click's own words
            return
        for wanted, mode in ((self.readable, os.R_OK), (self.writable, os.W_OK)):
            if wanted and not os.access(value, mode):
                denied = os.strerror(errno.EACCES)
                raise machine_failure(flag, f"{denied}: {shown_path(os.fsdecode(value))}")


class RegularFilePath(NonEmptyPath):
    """A :class:`NonEmptyPath` that, when the path exists, refuses a named pipe, a device
    or a socket in click's one usage line naming the flag, without blocking
    (:func:`~secagg.runtime.config.refuse_special_file`).

    Why: a named pipe given as ``audit verify``'s ledger or ``--prior-ledger``, ``client
    --state`` or ``keyholder --key`` passed click's ``dir_okay=False`` and then blocked the
    reader's ``open()`` forever (hostile CLI review, 2026-12-06). ``what`` names what the
    file should have been (``a ledger``)."""

    def __init__(self, *args: Any, what: str = "a regular file", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from secagg.errors import ConfigurationError
        from secagg.runtime.config import refuse_special_file

        value = super().convert(value, param, ctx)
        try:
            refuse_special_file(value, self.what)
        except ConfigurationError as exc:
            self.fail(str(exc), param, ctx)
        return value


def refuse_special_files(paths: Any, what: str, flag: str) -> None:
    """Refuse the first of ``paths`` that is a named pipe, a device or a socket, as click's
    one usage line naming ``flag`` (those missing, or folders, are left to their reader).

    Why: a folder option names files the command reads by their place in it (``--certs``:
    ``ca.pem``, ``clients/NAME.pem``; ``certs --dir``: ``ca.key``, ``revoked.json``), and a
    named pipe in one of those places blocked the reader's ``open()`` forever, no option's
    type able to see it (hostile CLI review, 2026-12-06)."""
    from secagg.errors import ConfigurationError
    from secagg.runtime.config import refuse_special_file

    for path in paths:
        try:
            refuse_special_file(path, what)
        except ConfigurationError as exc:
            raise click.BadParameter(str(exc), param_hint=f"'{flag}'") from None


def memory_limit() -> int | None:
    """The memory this process may use at most, in bytes: the machine's physical memory,
    or the container's cgroup limit when that is lower; None where neither is known.

    Why a fixed bound, not the memory free right now: a size past it can never run, so
    refusing it is never wrong, while free memory changes with the page cache."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        cgroup = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if cgroup.isdigit():
            limits.append(int(cgroup))
    except OSError:
        pass
    return min(limits) if limits else None


def memory_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The memory a new piece of work can take now without swapping, in bytes: the
    kernel's ``MemAvailable`` estimate, lowered to what the container's cgroup has left
    (``memory.max`` less ``memory.current``) and to :func:`memory_limit`; None where
    none is known (not Linux).

    Why now-free memory here, unlike :func:`memory_limit`: a command that starts many
    processes at once (``bench grpc --processes``) needs its memory while the rest of
    the machine keeps its own; a bound of the whole machine's RAM let it start what
    could only end in the kernel's out-of-memory killer, silently, workers and all."""
    limits = []
    try:
        for line in meminfo.read_text(encoding="ascii", errors="replace").splitlines():
            name, _, value = line.partition(":")
            fields = value.split()
            if name == "MemAvailable" and fields and fields[0].isdigit():
                unit = 1024 if fields[1:] == ["kB"] else 1
                limits.append(int(fields[0]) * unit)
                break
    except OSError:
        pass
    try:
        cgroup = Path("/sys/fs/cgroup")
        ceiling = (cgroup / "memory.max").read_text().strip()
        current = (cgroup / "memory.current").read_text().strip()
        if ceiling.isdigit() and current.isdigit():
            limits.append(max(0, int(ceiling) - int(current)))
    except OSError:
        pass
    bound = memory_limit()
    if bound is not None:
        limits.append(bound)
    return min(limits) if limits else None


def check_available_memory(needed: int, what: str, param_hint: str) -> None:
    """Refuse ``needed`` bytes past :func:`memory_available` with one usage line.

    ``what`` says what the bytes hold, ``param_hint`` names the flags to lower; as
    :func:`check_memory`, against the memory free now rather than the machine's."""
    available = memory_available()
    if available is not None and needed > available:
        raise click.BadParameter(
            f"{what} need at least {size_in_gib(needed)} of memory, more than the "
            f"{size_in_gib(available)} available on this machine now",
            param_hint=param_hint,
        )


def size_in_gib(nbytes: int) -> str:
    """``34.0 GiB``: a memory size as the refusals of a size past it print it."""
    return f"{nbytes / 2**30:,.1f} GiB"


def check_memory(needed: int, what: str, param_hint: str) -> None:
    """Refuse ``needed`` bytes past :func:`memory_limit` with one usage line.

    Why: ``secagg round --clients 1000000`` (within its range, at the default --dim)
    and ``bench masking --n 100000 --d 100000000`` ended in a MemoryError traceback
    (CLI audit, 2026-12-05). ``what`` says what the bytes hold, ``param_hint`` names
    the flags to lower."""
    limit = memory_limit()
    if limit is not None and needed > limit:
        raise click.BadParameter(
            f"{what} need at least {size_in_gib(needed)} of memory, more than the "
            f"{size_in_gib(limit)} this machine has",
            param_hint=param_hint,
        )
