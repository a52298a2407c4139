"""Pickled dynamic providers follow their modules' rename (orchestrator/stacks/provider_migration.py):
`plan` as a table over small deployments holding the pickles stacks deployed before the rename
hold (`serialize_provider` of the real provider classes, made while they answer to their old
names, `programs.*`: `old_names()`), then what the rewritten pickles are: the new module's
name, loadable by the provider process, byte for byte what `serialize_provider` writes now."""

from __future__ import annotations

import base64
import copy
import inspect
import json
import pickle
import pickletools
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dill
import pytest
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider

import orchestrator.programs
from orchestrator.base.errors import EdgeshipError, ExitCode
from orchestrator.programs import emulated, origin_secret
from orchestrator.stacks import provider_migration
from orchestrator.stacks.provider_migration import (
    PROVIDER_KEY,
    RENAMED,
    SECRET_KEY,
    SECRET_SIG,
    ProviderMigrationError,
    Reference,
)

MODULES = (emulated, origin_secret)
CLASSES: list[type[ResourceProvider]] = [
    cls
    for module in MODULES
    for _, cls in inspect.getmembers(module, inspect.isclass)
    # the providers resources use: emulated._Provider is only their base
    if issubclass(cls, ResourceProvider) and cls.__module__ == module.__name__ and not cls.__subclasses__()
]
REVERSE = {new: old for old, new in RENAMED.items()}


@contextmanager
def old_names() -> Iterator[None]:
    """The provider classes answer to their names before the rename while this runs, as they did
    in the releases that deployed today's stacks: each class's `__module__` is the old name and
    `sys.modules` holds the old names (the package too: pickle imports `programs` to reach
    `programs.emulated`) as aliases of the real modules. All put back afterwards: the real
    `programs` package refuses that name (programs/__init__.py)."""
    saved_modules = {name: sys.modules.get(name) for name in ("programs", *RENAMED)}
    saved_classes = {cls: cls.__module__ for cls in CLASSES}
    sys.modules["programs"] = orchestrator.programs
    for module in MODULES:
        sys.modules[REVERSE[module.__name__]] = module
    for cls in CLASSES:
        cls.__module__ = REVERSE[cls.__module__]
    try:
        yield
    finally:
        for cls, name in saved_classes.items():
            cls.__module__ = name
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def under_old_names(make: Callable[[], Any]) -> Any:
    with old_names():
        return make()


# What stacks deployed before the rename hold (as plain strings; Pulumi stored them as secrets).
OLD = under_old_names(lambda: {cls: serialize_provider(cls()) for cls in CLASSES})
BUCKET, SECRET = emulated._BucketProvider, origin_secret._OriginSecretProvider
MODEL = emulated._ModelObjectProvider
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # Pulumi's "unknown during preview"
DEFAULT_PROVIDER = "urn:pulumi:local::e2e::pulumi:providers:pulumi-python::default::a1b2"


def _urn(type_: str, name: str) -> str:
    return f"urn:pulumi:local::e2e::{type_}::{name}"


def _dynamic(cls: type[ResourceProvider], provider: Any = None, **extra: Any) -> dict[str, Any]:
    """A dynamic resource as `stack export` shows it: `__provider` in inputs and outputs."""
    kind = cls.__name__.strip("_").removesuffix("Provider")
    type_ = "pulumi-python:dynamic:Resource" if cls is SECRET else f"pulumi-python:dynamic/edgeship:{kind}"
    label = "origin-secret" if cls is SECRET else kind.lower()  # as both programs name it
    value = OLD[cls] if provider is None else provider
    return {
        "urn": _urn(type_, label),
        "custom": True,
        "id": f"{kind.lower()}-1",
        "type": type_,
        "inputs": {PROVIDER_KEY: value, "name": kind},
        "outputs": {PROVIDER_KEY: value, "name": kind, "arn": f"arn:{kind}"},
        "parent": _urn("pulumi:pulumi:Stack", "e2e-local"),
        "provider": DEFAULT_PROVIDER,
        **extra,
    }


def _plain(type_: str, label: str, **outputs: Any) -> dict[str, Any]:
    return {"urn": _urn(type_, label), "custom": True, "type": type_, "inputs": {}, "outputs": outputs}


STACK = {"urn": _urn("pulumi:pulumi:Stack", "e2e-local"), "custom": False, "type": "pulumi:pulumi:Stack"}
PROVIDER = _plain("pulumi:providers:pulumi-python", "default")
MANIFEST = {"time": "2026-01-01T00:00:00Z", "magic": "m", "version": "v3.260.0"}


def _deployment(*resources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"manifest": MANIFEST, "resources": [STACK, PROVIDER, *resources], **extra}


def _sealed(value: str) -> dict[str, str]:
    """`value` as a secret, as `stack export --show-secrets` gives one: how every release before
    the rename stored its providers (Pulumi's default, `serialize_as_secret_always`)."""
    return {SECRET_KEY: SECRET_SIG, "plaintext": json.dumps(value)}


# A secret as a checkpoint stores it: unreadable without the stack's secrets provider.
ENCRYPTED = {SECRET_KEY: SECRET_SIG, "ciphertext": "v1:4qsfapXwoNSHsfUK:6UDDHlNsUr2n"}


def _read(value: Any) -> tuple[str, str]:
    """(module, class name) of a `__provider` value (plain or a secret with its plaintext),
    read with pickletools only."""
    opened = provider_migration.unsealed(value)
    assert isinstance(opened, str), value
    reference = provider_migration.read_reference(base64.b64decode(opened))
    assert reference is not None, value
    return reference.module, reference.qualname


def _new(cls: type) -> str:
    """`module.Class` of a provider class where it lives now: what a migrated pickle names."""
    assert cls.__module__ in REVERSE, cls
    return f"{cls.__module__}.{cls.__qualname__}"


def _providers(deployment: dict[str, Any]) -> dict[tuple[int, str], Any]:
    """Every `__provider` value by (resource index, section); pending operations after."""
    resources = [
        *deployment.get("resources", []),
        *(o["resource"] for o in deployment.get("pending_operations", [])),
    ]
    return {
        (i, section): r[section][PROVIDER_KEY]
        for i, r in enumerate(resources)
        for section in ("inputs", "outputs")
        if PROVIDER_KEY in (r.get(section) or {})
    }


# (deployment, {(resource index, section): the `module.Class` its provider names afterwards});
# every `__provider` not listed, and everything else in the deployment, must come back as it was.
EVERY = [_dynamic(cls) for cls in CLASSES]
STATEFUL_ELSEWHERE = ResourceProvider()  # a class outside RENAMED, with state
STATEFUL_ELSEWHERE.note = "x"  # type: ignore[attr-defined]
CASES: list[tuple[str, dict[str, Any], dict[tuple[int, str], str]]] = [
    (
        "a local stack: every provider class, both sections",
        _deployment(*EVERY),
        {(2 + i, s): _new(cls) for i, cls in enumerate(CLASSES) for s in ("inputs", "outputs")},
    ),
    (
        "what `stack export --show-secrets` gives of a state an older release wrote: secrets",
        _deployment(*(_dynamic(cls, provider=_sealed(OLD[cls])) for cls in CLASSES)),
        {(2 + i, s): _new(cls) for i, cls in enumerate(CLASSES) for s in ("inputs", "outputs")},
    ),
    (
        "an AWS stack: the origin secret among AWS resources",
        _deployment(
            _plain("aws:lambda/function:Function", "function", name="shop-prod-infer"),
            _dynamic(SECRET),
            _plain("aws:iam/role:Role", "function-role", name="shop-prod-fn"),
        ),
        {(3, "inputs"): _new(SECRET), (3, "outputs"): _new(SECRET)},
    ),
    (
        "outputs only, a resource pending deletion, a pending operation",
        _deployment(
            {**_dynamic(BUCKET), "inputs": {"name": "b"}},
            _dynamic(SECRET, delete=True),
            pending_operations=[{"type": "deleting", "resource": _dynamic(emulated._EdgeProvider)}],
        ),
        {
            (2, "outputs"): _new(BUCKET),
            (3, "inputs"): _new(SECRET),
            (3, "outputs"): _new(SECRET),
            (4, "inputs"): _new(emulated._EdgeProvider),
            (4, "outputs"): _new(emulated._EdgeProvider),
        },
    ),
    (
        "beside garbage, an unknown, a secret, another module's stateful provider, a migrated one",
        _deployment(
            _dynamic(BUCKET),
            _dynamic(emulated._RoleProvider, provider="not base64!"),
            _dynamic(emulated._AliasProvider, provider=base64.b64encode(b"\x80\x04not a pickle").decode()),
            _dynamic(emulated._FunctionProvider, provider=OLD[BUCKET][:-8]),  # truncated
            _dynamic(emulated._EdgeProvider, provider=UNKNOWN),
            _dynamic(SECRET, provider=ENCRYPTED),  # an export without its secrets: unreadable
            _dynamic(SECRET, provider={SECRET_KEY: SECRET_SIG, "plaintext": "not JSON"}),
            _dynamic(emulated._ParameterProvider, provider=serialize_provider(STATEFUL_ELSEWHERE)),
            _dynamic(MODEL, provider=provider_migration.migrate_provider(OLD[MODEL], RENAMED)),
        ),
        {(2, "inputs"): _new(BUCKET), (2, "outputs"): _new(BUCKET)},
    ),
    (
        "an old pickle in a resource that is not a dynamic one",
        _deployment(
            _plain("aws:s3/bucket:Bucket", "models", **{PROVIDER_KEY: OLD[BUCKET]}), _dynamic(SECRET)
        ),
        {(3, "inputs"): _new(SECRET), (3, "outputs"): _new(SECRET)},
    ),
]


@pytest.mark.parametrize(("deployment", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan_renames_exactly_the_old_modules_pickles(
    deployment: dict[str, Any], expected: dict[tuple[int, str], str]
) -> None:
    before = copy.deepcopy(deployment)
    updated = provider_migration.plan(deployment)
    assert deployment == before  # the input is not changed
    assert updated is not None
    old, new = _providers(deployment), _providers(updated)
    assert {k for k in old if old[k] != new[k]} == set(expected)
    for key, name in expected.items():
        assert isinstance(new[key], str)  # plain, as this release's providers are stored
        module, qualname = _read(new[key])
        assert f"{module}.{qualname}" == name
        assert _read(old[key])[1] == qualname  # the same class, at its new module
    # Nothing else moved: put the old values back and the deployments are equal.
    restored = copy.deepcopy(updated)
    resources = [*restored["resources"], *(o["resource"] for o in restored.get("pending_operations", []))]
    for index, section in expected:
        resources[index][section][PROVIDER_KEY] = old[(index, section)]
    assert restored == deployment
    # Idempotent, and reversible byte for byte (tests/test_provider_migration_engine.py puts a
    # state back to the old names this way; it would also revert a pickle that named the new
    # module to begin with). A secret comes back as its plaintext.
    assert provider_migration.plan(updated) is None
    encrypted = any(v == ENCRYPTED for v in new.values())  # unreadable without an export
    assert provider_migration.may_rename(updated) is encrypted
    reverted = provider_migration.plan(updated, renamed=REVERSE)
    assert reverted is not None
    assert {key: _providers(reverted)[key] for key in expected} == {
        key: provider_migration.unsealed(old[key]) for key in expected
    }


@pytest.mark.parametrize(
    "deployment",
    [
        {},  # a stack never deployed
        _deployment(),  # only the stack and the default provider
        _deployment(_plain("aws:iam/role:Role", "r", name="shop-prod-fn")),
        provider_migration.plan(_deployment(*EVERY)),  # migrated already
        _deployment(_dynamic(BUCKET, provider="not base64!"), _dynamic(SECRET, provider=UNKNOWN)),
        _deployment(_dynamic(BUCKET, provider=serialize_provider(STATEFUL_ELSEWHERE))),
    ],
    ids=["empty", "no resources", "no dynamic resources", "migrated", "garbage", "another module"],
)
def test_nothing_to_rename_is_none(deployment: dict[str, Any]) -> None:
    assert provider_migration.plan(deployment) is None
    assert not provider_migration.may_rename(deployment)  # no export needed to know it


@pytest.mark.parametrize(
    ("provider", "may"),
    [
        (OLD[BUCKET], True),
        (_sealed(OLD[BUCKET]), True),
        (ENCRYPTED, True),  # what every release before the rename stored: only an export tells
        (serialize_provider(BUCKET()), False),  # this release's, in plain text
        (_sealed(serialize_provider(BUCKET())), False),
        (UNKNOWN, False),
        ("not base64!", False),
    ],
    ids=["old", "old secret, plaintext", "encrypted", "new", "new secret, plaintext", "unknown", "garbage"],
)
def test_may_rename_reads_a_checkpoint_as_stored(provider: Any, may: bool) -> None:
    """What orchestrator/stacks/engine.py asks of a file backend's checkpoint before it exports."""
    assert provider_migration.may_rename(_deployment(_dynamic(BUCKET, provider=provider))) is may
    assert provider_migration.may_rename(_deployment(_dynamic(SECRET, provider=provider))) is may


def test_only_the_resources_the_old_programs_made_may_hold_an_old_name_encrypted() -> None:
    """An encrypted provider of another program's dynamic resource (tests/engine_program.py's,
    a `--program` of one's own) costs no export; nor does a resource that is not dynamic."""
    recorder = {
        **_dynamic(SECRET, provider=ENCRYPTED),
        "urn": _urn("pulumi-python:dynamic:Resource", "recorder"),
    }
    assert not provider_migration.may_rename(_deployment(recorder))
    assert not provider_migration.may_rename(
        _deployment(_plain("aws:s3/bucket:Bucket", "b", **{PROVIDER_KEY: ENCRYPTED}))
    )
    parented = {  # a parent's type in the URN, the name last
        **_dynamic(SECRET, provider=ENCRYPTED),
        "urn": "urn:pulumi:prod::shop::edgeship:x:Stack$pulumi-python:dynamic:Resource::origin-secret",
    }
    assert provider_migration.may_rename(_deployment(parented))


def test_this_releases_providers_are_stored_in_plain_text() -> None:
    """So a checkpoint shows which module each names without decrypting it (`may_rename`)."""
    assert all(cls.serialize_as_secret_always is False for cls in CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_the_rewritten_pickle_loads_the_class_as_the_provider_process_does(
    cls: type[ResourceProvider],
) -> None:
    updated = provider_migration.plan(_deployment(_dynamic(cls)))
    assert updated is not None
    value = updated["resources"][2]["outputs"][PROVIDER_KEY]  # what Read and Delete load
    assert _read(value) == (cls.__module__, cls.__qualname__)
    provider = dill.loads(base64.b64decode(value))  # pulumi/dynamic/__main__.py get_provider
    assert type(provider) is cls
    assert vars(provider) == {}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_the_rewritten_pickle_is_what_serialize_provider_writes_after_the_rename(
    cls: type[ResourceProvider],
) -> None:
    """So a migrated state equals a fresh deployment's: no provider string changes on the next `up`.
    And the other way: a fresh pickle put back under the old names is what the old release wrote
    (how tests/test_provider_migration_engine.py makes a deployed stack's state an old one)."""
    fresh = serialize_provider(cls())
    assert _read(fresh) == (cls.__module__, cls.__qualname__)  # the classes live at the new names
    assert provider_migration.migrate_provider(OLD[cls], RENAMED) == fresh
    assert provider_migration.migrate_provider(fresh, REVERSE) == OLD[cls]


def test_an_old_pickle_does_not_load_once_the_old_names_are_gone() -> None:
    """What the provider process meets in a state nobody migrated: `programs` refuses to be
    imported (from a checkout's root), or is not there at all (the wheel)."""
    with pytest.raises(ImportError, match=r"orchestrator\.programs|No module named 'programs'"):
        dill.loads(base64.b64decode(OLD[BUCKET]))
    assert "programs" not in sys.modules and "programs.emulated" not in sys.modules


def test_what_the_providers_pickles_are() -> None:
    """The shape this module rewrites, as dill writes it today (the module docstring of orchestrator/stacks/provider_migration.py says why)."""
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(base64.b64decode(OLD[SECRET]))]
    body = len(base64.b64decode(OLD[SECRET])) - 11
    assert ops == [
        ("PROTO", pickle.DEFAULT_PROTOCOL),
        ("FRAME", body),
        ("SHORT_BINUNICODE", "programs.origin_secret"),
        ("MEMOIZE", None),
        ("SHORT_BINUNICODE", "_OriginSecretProvider"),
        ("MEMOIZE", None),
        ("STACK_GLOBAL", None),
        ("MEMOIZE", None),
        ("EMPTY_TUPLE", None),
        ("NEWOBJ", None),
        ("MEMOIZE", None),
        ("STOP", None),
    ]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_protocol_with_newobj_round_trips_byte_for_byte(protocol: int) -> None:
    pickled = under_old_names(lambda: pickle.dumps(BUCKET(), protocol=protocol))
    reference = provider_migration.read_reference(pickled)
    assert reference == Reference(protocol, "programs.emulated", "_BucketProvider")
    assert provider_migration.reference_pickle(reference) == pickled
    moved = provider_migration.migrate_provider(base64.b64encode(pickled).decode(), RENAMED)
    assert moved is not None
    assert type(pickle.loads(base64.b64decode(moved))) is BUCKET


def _framed_wrong(pickled: bytes) -> bytes:
    """The same opcodes under a FRAME that claims one byte more than follows it."""
    return pickled[:3] + (len(pickled) - 11 + 1).to_bytes(8, "little") + pickled[11:]


@pytest.mark.parametrize(
    "pickled",
    [
        under_old_names(lambda: pickle.dumps(BUCKET(), protocol=0)),  # no NEWOBJ: copyreg._reconstructor
        under_old_names(lambda: pickle.dumps(BUCKET(), protocol=1)),
        base64.b64decode(OLD[BUCKET]) + b"\x00",  # bytes after STOP
        _framed_wrong(base64.b64decode(OLD[BUCKET])),
    ],
    ids=["protocol 0", "protocol 1", "trailing bytes", "frame too long"],
)
def test_an_old_name_in_any_other_form_is_refused_not_left_to_fail(pickled: bytes) -> None:
    assert provider_migration.read_reference(pickled) is None
    with pytest.raises(ProviderMigrationError, match=r"`programs\.emulated`"):
        provider_migration.migrate_provider(base64.b64encode(pickled).decode(), RENAMED)


def test_a_long_module_name_is_encoded_with_its_longer_length(monkeypatch: pytest.MonkeyPatch) -> None:
    """From 256 bytes a string is BINUNICODE (4-byte length): the FRAME's length follows."""
    name = "m" * 300
    module = types.ModuleType(name)
    cls = type("Provider", (), {"__module__": name})
    module.Provider = cls  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)
    pickled = provider_migration.reference_pickle(Reference(4, name, "Provider"))
    assert pickled == pickle.dumps(cls(), protocol=4)
    assert [op.name for op, _, _ in pickletools.genops(pickled)][2] == "BINUNICODE"
    assert type(pickle.loads(pickled)) is cls


def test_the_input_is_not_changed_and_shares_nothing_with_the_result() -> None:
    deployment = _deployment(*EVERY, pending_operations=[{"type": "creating", "resource": _dynamic(SECRET)}])
    before = copy.deepcopy(deployment)
    updated = provider_migration.plan(deployment)
    assert updated is not None and deployment == before
    updated["resources"][2]["outputs"]["arn"] = "changed"
    updated["pending_operations"][0]["resource"]["inputs"]["name"] = "changed"
    assert deployment == before


def test_a_provider_with_state_under_an_old_name_is_refused() -> None:
    provider = BUCKET()
    provider.region = "eu-west-1"  # type: ignore[attr-defined]
    stateful = under_old_names(lambda: serialize_provider(provider))
    deployment = _deployment(_dynamic(SECRET), _dynamic(BUCKET, provider=stateful))
    before = copy.deepcopy(deployment)
    with pytest.raises(ProviderMigrationError) as raised:
        provider_migration.plan(deployment)
    assert deployment == before
    error = raised.value
    assert isinstance(error, EdgeshipError) and error.exit_code == ExitCode.ERROR
    assert "urn:pulumi:local::e2e::pulumi-python:dynamic/edgeship:Bucket::bucket" in error.message
    assert "`programs.emulated`" in error.message and "orchestrator.programs.emulated" in error.message
    assert error.fix and "release that deployed it" in error.fix
