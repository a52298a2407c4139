"""Formats of what edgeship keeps in S3 for a promotion: the record, the lease, the requests.

Every body this edgeship writes carries `format` (an integer) and `edgeship` (the version
that wrote it). Environments outlive an edgeship version: the deploy workflow's recover job,
a laptop and CI may run different versions on the same environment. So a reader

- ignores fields it does not know (a newer edgeship added them for itself);
- refuses, with the version to run (FormatError, exit 2), a body of a newer format, and a
  phase it does not know, since guessing what another version meant could move `live`;
- reads every older format (a body without `format` is format 1: see FORMATS).

The rule for writers: a field an older reader may ignore keeps the format; anything an
older reader must not ignore (a new phase, a field that changes what a resume, rollback or
lease check does) bumps FORMAT. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

from orchestrator import __version__
from orchestrator.base.errors import FormatError

FORMAT = 2  # what this edgeship writes, and the newest it reads
UNVERSIONED = 1  # a body without a `format` field (everything written before format 2)
ENVELOPE = ("format", "edgeship")  # the fields every body carries besides its own

# The history, newest first (docs/reliability.md has it as a table; tests/data/records/ a
# fixture of each shape).
FORMATS = {
    2: "records, leases and requests carry `format` and `edgeship`; readers ignore unknown fields",
    1: "no `format` field (2026-11-30 to this change): the state machine's record (`phase`, "
    "`paused` from a477a9c on), the lease with `expires_at`/`token`/`nonce` (`boot` from 6a7f896 on)",
    0: "before crash-safe promotions (2026-11-25 to 2026-11-30): a record with `state`, a lock "
    "with `user`/`host`/`pid` and no expiry; not read (refused with what to do)",
}


def stamp(body: dict[str, Any]) -> dict[str, Any]:
    """`body` as this edgeship writes it: with its format and version."""
    return {**body, "format": FORMAT, "edgeship": __version__}


def known(cls: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The items of `data` that name a field of dataclass `cls` (a newer writer's extra
    fields are dropped, so `cls(**known(cls, data))` never fails on them)."""
    assert is_dataclass(cls)
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def newer_message(what: str, writer: object, number: object) -> str:
    """The refusal of a body of a format newer than this edgeship reads."""
    return (
        f"{what} was written by edgeship {writer} (format {number}); "
        f"this is edgeship {__version__} (reads up to format {FORMAT}): run that version or newer"
    )


def _writer(data: dict[str, Any]) -> str:
    return str(data.get("edgeship") or "of an unknown version")


def _fix(where: str) -> str:
    return (
        f"run the edgeship version named (or newer) for every command on this environment, the deploy "
        f"workflow's recover job included (the object: {where})"
    )


def body(
    data: Any, what: str, where: str, *, legacy_keys: tuple[str, ...], legacy_fix: str | None = None
) -> dict[str, Any]:
    """`data` (a parsed JSON body) as today's reader takes it, without the envelope.

    Refuses (FormatError) a body that is not an object, one of a newer format, and one of
    format 0 (recognised by `legacy_keys`, which only that shape has; `legacy_fix` replaces
    the fix given for it).
    """
    if not isinstance(data, dict):
        raise FormatError(
            f"{what} is not a JSON object: edgeship {__version__} cannot read it", fix=_fix(where)
        )
    number = data.get("format", UNVERSIONED)
    if not isinstance(number, int) or isinstance(number, bool) or number > FORMAT:
        raise FormatError(newer_message(what, _writer(data), number), fix=_fix(where))
    if "format" not in data and all(k in data for k in legacy_keys):
        raise FormatError(
            f"{what} has the shape edgeship wrote before crash-safe promotions (format 0, "
            f"2026-11-25 to 2026-11-30), which edgeship {__version__} does not read",
            fix=legacy_fix
            or f"if no promotion of that time is still running, put `live` on the version you want with "
            f"the AWS console or CLI, then delete {where}",
        )
    return {k: v for k, v in data.items() if k not in ENVELOPE}


def unknown_value(what: str, where: str, field: str, value: object, data: dict[str, Any]) -> FormatError:
    """The refusal of a value this edgeship does not know (a phase a newer version added)."""
    return FormatError(
        f"{what} has {field} {value!r}, which edgeship {__version__} does not know: it was written by "
        f"edgeship {_writer(data)} (format {data.get('format', UNVERSIONED)}); run that version or newer",
        fix=_fix(where),
    )


def unreadable(what: str, where: str, detail: str) -> FormatError:
    """A body of a known format whose content does not parse (a required field missing...)."""
    return FormatError(f"{what} cannot be read by edgeship {__version__}: {detail}", fix=_fix(where))
