"""The JSON schema of edgeship.toml, for editors (taplo, VS Code's Even Better TOML).

Built from the same declarations settings.py validates with (`settings.Key`: kind, limits,
doc), so the schema cannot promise what the loader refuses or miss what it accepts. The
package ships it as orchestrator/schema/edgeship.schema.json (a test asserts the file is what
this module builds now; `python -m orchestrator.config.schema` rewrites it). Rules between
keys (p99_ms >= p95_ms, an explicit schedule needs weights, ...) stay the loader's alone.
edgeship.toml points editors at the file with taplo's `#:schema` header directive.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from orchestrator.base import paths
from orchestrator.config.settings import (
    DEFAULT_ENV_KEY,
    ENV_KEYS,
    HOOK_KEYS,
    PROJECT_KEYS,
    SECTIONS,
    WORKERS_AUTO,
    Key,
    keys_of,
)

SHIPPED = paths.SCHEMA
# The directive at the top of this repository's edgeship.toml (relative to that file).
DIRECTIVE = "#:schema ./orchestrator/schema/edgeship.schema.json"
# In a project `init` starts: the schema is a file beside edgeship.toml, committed with it
# (`orchestrator schema --write edgeship.schema.json` refreshes it after an upgrade), and the
# directive points there: a relative path works offline and in every clone, whereas a path
# into the installed package depends on the machine and a URL on a published copy.
PROJECT_FILE = "edgeship.schema.json"
PROJECT_DIRECTIVE = f"#:schema ./{PROJECT_FILE}"
# Draft 7: the draft taplo's validator and the `jsonschema` package both implement.
DRAFT = "http://json-schema.org/draft-07/schema#"

_TYPE = {"integer": "integer", "number": "number", "string": "string", "boolean": "boolean"}


def schema() -> dict[str, Any]:
    """The schema of a whole edgeship.toml."""
    environment = _object(ENV_KEYS, "One deployment target (a Pulumi stack of the same name).")
    environment["properties"].update({name: {"$ref": f"#/definitions/{name}"} for name in SECTIONS})
    section_refs = {name: {"$ref": f"#/definitions/{name}"} for name in SECTIONS}
    return {
        "$schema": DRAFT,
        "title": "edgeship.toml",
        "description": "edgeship's environments: [defaults] applies to every environment; "
        "each [environments.<name>] overrides any part of it.",
        "type": "object",
        "additionalProperties": False,
        "required": ["environments"],
        "properties": {
            "default_env": _property(DEFAULT_ENV_KEY),
            "project": _object(PROJECT_KEYS, "The project: its Pulumi name, state backend and model."),
            "defaults": {
                "description": "Settings every environment starts from.",
                "type": "object",
                "additionalProperties": False,
                "properties": section_refs,
            },
            "environments": {
                "description": "The deployment targets, by name (local, dev, staging, prod, ...).",
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"$ref": "#/definitions/environment"},
            },
        },
        "definitions": {
            **{name: _object(keys_of(cls), _doc(cls)) for name, cls in SECTIONS.items()},
            "hook": _object(HOOK_KEYS, "A command a promotion runs; its non-zero exit fails the gate."),
            "environment": environment,
        },
    }


def render() -> str:
    """The schema as the package ships it."""
    return json.dumps(schema(), indent=2) + "\n"


def _doc(cls: type) -> str:
    return " ".join((cls.__doc__ or "").split())


def _object(keys: dict[str, Key], description: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "properties": {name: _property(key) for name, key in keys.items()},
    }
    required = [name for name, key in keys.items() if key.required]
    if required:
        out["required"] = required
    return out


def _property(key: Key) -> dict[str, Any]:
    if key.kind in ("integers", "strings"):
        out: dict[str, Any] = {"type": "array", "items": {"type": key.kind[:-1], **_limits(key)}}
    elif key.kind == "hooks":
        out = {"type": "array", "items": {"$ref": "#/definitions/hook"}}
    elif key.kind == "workers":
        out = {"anyOf": [{"type": "integer", **_limits(key)}, {"enum": [WORKERS_AUTO]}]}
    else:
        out = {"type": _TYPE[key.kind], **_limits(key)}
    out["description"] = key.doc
    if key.default is not None and key.default != () and not key.required:
        out["default"] = list(key.default) if isinstance(key.default, tuple) else key.default
    return out


def _limits(key: Key) -> dict[str, Any]:
    words = {
        "minimum": key.minimum,
        "exclusiveMinimum": key.above,
        "maximum": key.maximum,
        "exclusiveMaximum": key.below,
    }
    out: dict[str, Any] = {k: v for k, v in words.items() if v is not None}
    if key.choices:
        out["enum"] = list(key.choices)
    if key.pattern:
        out["pattern"] = f"^(?:{key.pattern})$"  # the loader matches whole strings
    if key.whole:
        out["multipleOf"] = 1
    if key.nonempty:
        out["minLength"] = 1
    return out


def main(argv: list[str]) -> int:
    """`python -m orchestrator.config.schema [--check]`: rewrite (or compare) the shipped schema."""
    text = render()
    if "--check" in argv:
        current = SHIPPED.read_text() if SHIPPED.exists() else ""
        if current != text:
            print(f"{SHIPPED} is stale: run python -m orchestrator.config.schema", file=sys.stderr)
            return 1
        return 0
    SHIPPED.parent.mkdir(parents=True, exist_ok=True)
    SHIPPED.write_text(text)
    print(SHIPPED)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
