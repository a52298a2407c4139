"""Renaming the module a pickled dynamic provider lives in, in a stack's state.

A Pulumi dynamic resource stores its provider in its inputs and outputs as `__provider`:
base64 of a dill pickle (pulumi.dynamic.dynamic.serialize_provider). edgeship's providers
are pickled by reference, module and class name, e.g. `programs.emulated._BucketProvider`.
The provider process (`python -m pulumi.dynamic`) unpickles the *state's outputs* for Read
(refresh) and Delete, so once a provider module is renamed every stack deployed before the
rename fails to refresh or destroy with `No module named 'programs'`, and an `up` does not
heal it (a resource that does not change keeps its old outputs).

`plan` rewrites those references to the modules' new names (`RENAMED`) in an exported
deployment (pure: the caller exports and imports, as for orchestrator/stacks/role_migration.py).
The change is one-way: an edgeship from before the rename cannot load the new names.

How the new pickle is made: edgeship's providers have no `__init__` arguments and no
attributes, so each pickle is exactly "instantiate this class, no state" (`cls()` by
reference). `plan` reads the class reference with `pickletools.genops` (state is never
unpickled), and when the pickle is that shape and its module is renamed, assembles the
pickle the standard pickler writes for the class at its new name: same protocol, same
opcodes, only the module string (and the lengths that carry it: its own and the FRAME's)
differs. Not `serialize_provider(new_class())`: that needs the new module importable (it is
not before the rename, nor in an older checkout), imports the provider modules and their
dependencies, and swaps `pickle.Pickler` process-wide while it runs. The assembled bytes
equal what `serialize_provider` writes for the renamed class (tests/test_provider_migration.py
checks every provider class), so a migrated state matches a fresh deployment's.

Secrets: Pulumi stores every dynamic provider as a secret unless its class says otherwise
(`serialize_as_secret_always`, True by default since v3.75), and every release before the
rename left edgeship's providers so. `stack export --show-secrets` (the Automation API's
`export_stack`) gives such a value as Pulumi's secret envelope with the value in `plaintext`
(JSON): `plan` reads it there. The rewritten provider is written as a plain string, as this
release's providers store it (`serialize_as_secret_always = False` in programs/emulated.py and
programs/origin_secret.py: a class reference holds no secret), so a migrated state reads as a
fresh deployment's, and a file backend's checkpoint shows which module each provider names
without decrypting anything (`may_rename`, what orchestrator/stacks/engine.py checks before it
exports). An envelope that holds only `ciphertext` (a checkpoint as stored, an export without
its secrets) cannot be read here: `plan` leaves it, `may_rename` says it may need renaming
when its resource is one the programs before the rename made.

What is left alone: values that are not base64 pickles (Pulumi's "unknown" sentinel, an
encrypted secret, garbage), pickles naming other modules, resources that are not dynamic
ones. A pickle that names a renamed module but is *not* a bare class reference (it carries
state, or an unexpected form) is refused with ProviderMigrationError rather than left to
fail later inside the engine: no edgeship release writes one, and rewriting only the
reference could change what it means.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import pickle
import pickletools
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.base.errors import EdgeshipError

# Old module -> new module of the provider classes whose pickles are in deployed stacks.
RENAMED: Mapping[str, str] = {
    "programs.emulated": "orchestrator.programs.emulated",
    "programs.origin_secret": "orchestrator.programs.origin_secret",
}

PROVIDER_KEY = "__provider"  # pulumi.dynamic.dynamic.PROVIDER_KEY
DYNAMIC_TYPE = "pulumi-python:dynamic"  # every dynamic resource's type starts with it
SECTIONS = ("inputs", "outputs")  # the engine keeps `__provider` in both
# The dynamic resources the programs before the rename made, whose providers every release
# before it stored encrypted (see `may_rename`): the local program's `edgeship:*` types, and
# the origin secret, a plain dynamic Resource both programs name "origin-secret".
OLD_TYPE_PREFIX = f"{DYNAMIC_TYPE}/edgeship:"
OLD_NAMES = ("origin-secret",)
# A secret in a state or an export: {SECRET_KEY: SECRET_SIG, "ciphertext" | "plaintext": ...}
# (Pulumi's apitype.SecretSig; `plaintext` holds the value as JSON).
SECRET_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

# Opcodes that only frame the stream or fill the memo: they do not change what a pickle
# builds, as long as nothing reads the memo back (a GET would be part of the shape).
_PLUMBING = frozenset({"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"})
_STRINGS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"})
_NO_ARGS_NEWOBJ = ("EMPTY_TUPLE", "NEWOBJ", "STOP")  # cls.__new__(cls), no state to BUILD


class ProviderMigrationError(EdgeshipError):
    """A provider pickle names a renamed module but is not a bare class reference."""


@dataclass(frozen=True)
class Reference:
    """A pickle that is exactly `module.qualname()` with no state, in pickle `protocol`."""

    protocol: int
    module: str
    qualname: str


def read_reference(pickled: bytes) -> Reference | None:
    """The class reference `pickled` consists of, or None when it is anything else (more
    than a bare `cls()`, a protocol without NEWOBJ, trailing bytes, a frame that does not
    cover the stream). Raises ValueError when `pickled` is not a pickle at all."""
    ops = list(pickletools.genops(pickled))
    protocol = ops[0][1] if ops[0][0].name == "PROTO" else 0
    frames = [(arg, pos) for op, arg, pos in ops if op.name == "FRAME"]
    stop = ops[-1][2]  # genops gives positions for bytes (None only for streams without tell)
    if stop is None or stop + 1 != len(pickled) or not isinstance(protocol, int):
        return None  # bytes after STOP: not the whole value
    if not 2 <= protocol <= pickle.HIGHEST_PROTOCOL:  # NEWOBJ came with 2; later ones: unknown
        return None
    # A bare reference is one frame (protocol 4+) right after PROTO, up to the end.
    if protocol >= 4 and frames != [(len(pickled) - 11, 2)]:
        return None
    if protocol < 4 and frames:
        return None
    shape = [(op.name, arg) for op, arg, _ in ops if op.name not in _PLUMBING]
    names = [name for name, _ in shape]
    if names[-3:] != list(_NO_ARGS_NEWOBJ):
        return None
    head = shape[:-3]
    if [n for n, _ in head] == ["GLOBAL"] and isinstance(head[0][1], str):
        module, _, qualname = head[0][1].partition(" ")  # genops joins GLOBAL's two lines
        return Reference(protocol, module, qualname) if module and qualname else None
    if (
        len(head) == 3
        and head[0][0] in _STRINGS
        and head[1][0] in _STRINGS
        and head[2][0] == "STACK_GLOBAL"
        and isinstance(head[0][1], str)
        and isinstance(head[1][1], str)
    ):
        return Reference(protocol, head[0][1], head[1][1])
    return None


def names_module(pickled: bytes, modules: Mapping[str, str]) -> str | None:
    """The first of `modules` any string or global in `pickled` names (None: none does).
    Used only to refuse what `read_reference` cannot rewrite: a false positive (a string
    value equal to a module name) refuses, never rewrites."""
    for op, arg, _ in pickletools.genops(pickled):
        if not isinstance(arg, str):
            continue
        candidate = arg.partition(" ")[0] if op.name in ("GLOBAL", "INST") else arg
        if candidate in modules:
            return candidate
    return None


def reference_pickle(reference: Reference) -> bytes:
    """The pickle the standard pickler writes for `reference.module.qualname()` (a class
    with no state), byte for byte: protocol 4+ puts everything after PROTO in one FRAME,
    strings as SHORT_BINUNICODE (BINUNICODE from 256 bytes, BINUNICODE8 past 4 GiB) and
    memoizes with MEMOIZE (for names under 64 KiB, where the pickler starts a new frame);
    protocols 2-3 use GLOBAL and BINPUT."""
    proto = pickle.PROTO + bytes([reference.protocol])
    new = pickle.EMPTY_TUPLE + pickle.NEWOBJ
    if reference.protocol < 4:
        glob = pickle.GLOBAL + f"{reference.module}\n{reference.qualname}\n".encode()
        return proto + glob + pickle.BINPUT + b"\x00" + new + pickle.BINPUT + b"\x01" + pickle.STOP
    memo = pickle.MEMOIZE
    name = _string(reference.module) + memo + _string(reference.qualname) + memo
    body = name + pickle.STACK_GLOBAL + memo + new + memo + pickle.STOP
    return proto + pickle.FRAME + struct.pack("<Q", len(body)) + body


def _string(text: str) -> bytes:
    # The pickler's own encoding of a str (pickle.py save_str): the length prefix grows
    # with the string, so a longer module name cannot be spliced in place.
    data = text.encode("utf-8", "surrogatepass")
    if len(data) < 256:
        return pickle.SHORT_BINUNICODE + struct.pack("<B", len(data)) + data
    if len(data) <= 0xFFFFFFFF:
        return pickle.BINUNICODE + struct.pack("<I", len(data)) + data
    return pickle.BINUNICODE8 + struct.pack("<Q", len(data)) + data


def is_secret(value: Any) -> bool:
    """Whether a property value is a secret's envelope (encrypted or with its plaintext)."""
    return isinstance(value, Mapping) and value.get(SECRET_KEY) == SECRET_SIG


def unsealed(value: Any) -> Any:
    """A property value with a secret's envelope opened when it holds its plaintext (`stack
    export --show-secrets`); anything else as it is, an encrypted secret included."""
    if is_secret(value) and isinstance(value.get("plaintext"), str):
        try:
            return json.loads(value["plaintext"])
        except ValueError:
            return value
    return value


def migrate_provider(value: Any, renamed: Mapping[str, str], *, urn: str = "") -> str | None:
    """The `__provider` value naming the new module, a plain string (None: leave `value` as
    it is). `value` may be a plain string or a secret's envelope with its plaintext.

    Raises ProviderMigrationError when the pickle names a renamed module in a form this
    cannot rewrite faithfully."""
    value = unsealed(value)
    if not isinstance(value, str):
        return None  # an encrypted secret (unreadable here), or nothing a provider is
    try:
        pickled = base64.b64decode(value, validate=True)
        reference = read_reference(pickled)
        old = names_module(pickled, renamed) if reference is None else None
    except (binascii.Error, ValueError):
        return None  # not a pickle: not ours to judge; the engine reports it if it matters
    if reference is not None and reference.module in renamed:
        moved = Reference(reference.protocol, renamed[reference.module], reference.qualname)
        return base64.b64encode(reference_pickle(moved)).decode("ascii")
    if old is not None:
        raise ProviderMigrationError(
            f"the state of {urn or 'a resource'} holds a Pulumi dynamic provider pickled "
            f"from `{old}` that is more than a class reference (it carries state or has a "
            f"form edgeship never writes), so it cannot be renamed to `{renamed[old]}` "
            "safely; refresh and destroy would fail to load it",
            fix=(
                "refresh or destroy this stack with the edgeship release that deployed it "
                f"(it still ships `{old}`), or report this with the resource's URN: "
                "edgeship's providers carry no state"
            ),
        )
    return None


def _resources(deployment: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    # Resources pending deletion (`delete: true`, left by a replacement) are included: the
    # engine deletes them with their stored provider. So are pending operations' resources.
    yield from deployment.get("resources") or []
    for operation in deployment.get("pending_operations") or []:
        if isinstance(operation, Mapping) and isinstance(operation.get("resource"), Mapping):
            yield operation["resource"]


def _providers(deployment: Mapping[str, Any]) -> Iterator[tuple[int, str, Mapping[str, Any]]]:
    """(resource index, section, resource) of every `__provider` of a dynamic resource."""
    for index, resource in enumerate(_resources(deployment)):
        if not str(resource.get("type", "")).startswith(DYNAMIC_TYPE):
            continue
        for section in SECTIONS:
            props = resource.get(section)
            if isinstance(props, Mapping) and PROVIDER_KEY in props:
                yield index, section, resource


def may_rename(deployment: Mapping[str, Any], *, renamed: Mapping[str, str] | None = None) -> bool:
    """Whether `plan` may have something to rename in `deployment` as a backend stores it
    (secrets encrypted): a provider names a module in `renamed`, or is an encrypted secret of
    a resource the programs before the rename made (OLD_TYPE_PREFIX, OLD_NAMES), which only an
    export with its secrets shown can tell. An encrypted provider of any other resource (a
    `--program` of one's own) was never edgeship's. False: `plan` of the exported deployment
    would be None, no need to export."""
    renamed = RENAMED if renamed is None else renamed
    for _, section, resource in _providers(deployment):
        value = resource[section][PROVIDER_KEY]
        if is_secret(value) and not isinstance(value.get("plaintext"), str):
            if _made_before_the_rename(resource):
                return True
            continue
        if migrate_provider(value, renamed, urn=str(resource.get("urn", ""))) is not None:
            return True
    return False


def _made_before_the_rename(resource: Mapping[str, Any]) -> bool:
    urn = str(resource.get("urn", ""))
    return str(resource.get("type", "")).startswith(OLD_TYPE_PREFIX) or urn.rpartition("::")[2] in OLD_NAMES


def plan(deployment: Mapping[str, Any], *, renamed: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """A copy of `deployment` (`stack.export_stack().deployment`: secrets with their
    plaintext) whose dynamic providers name their modules' new names, as plain strings; None
    when no provider names a module in `renamed` (RENAMED unless given; the reverse mapping
    puts a state back, for tests)."""
    renamed = RENAMED if renamed is None else renamed
    changes: list[tuple[int, str, str]] = []
    for index, section, resource in _providers(deployment):
        value = resource[section][PROVIDER_KEY]
        new = migrate_provider(value, renamed, urn=str(resource.get("urn", "")))
        if new is not None:
            changes.append((index, section, new))
    if not changes:
        return None
    updated = copy.deepcopy(dict(deployment))
    targets = list(_resources(updated))  # the same walk over the copy: same order
    for index, section, new in changes:
        targets[index][section][PROVIDER_KEY] = new
    return updated
