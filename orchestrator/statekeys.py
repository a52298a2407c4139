"""The keys Pulumi's self-managed (DIY) backend reads and writes for one stack.

One table, read by the IAM policy generator (orchestrator/iam.py: the state statements of
the deploy and preview roles) and checked by tests/test_state_backend.py against the keys
the real engine writes on a fresh backend. Patterns are relative to the backend's prefix
(`s3://BUCKET/PREFIX`) and use IAM's `*` wildcard.

Provisional (interface fixed for issue 24's parts; part C measures and completes it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StateKeys:
    """What each kind of run touches in the backend, for one project's stack."""

    # Object keys a preview (and every other run) reads.
    read: tuple[str, ...]
    # Object keys `up`, `destroy`, `refresh`, `bootstrap` write or delete.
    write: tuple[str, ...]
    # Prefixes listed (s3:ListBucket with an s3:prefix condition).
    list_prefixes: tuple[str, ...]


def keys(project: str, stack: str) -> StateKeys:
    stack_keys = (
        f".pulumi/stacks/{project}/{stack}.json*",
        f".pulumi/locks/{project}/{stack}/*",
        f".pulumi/history/{project}/{stack}/*",
        f".pulumi/backups/{project}/{stack}/*",
    )
    return StateKeys(
        read=(".pulumi/meta.yaml", *stack_keys[:3]),
        write=(".pulumi/meta.yaml", *stack_keys),
        list_prefixes=(".pulumi/*",),
    )
