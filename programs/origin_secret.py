"""The origin secret as a resource: a dynamic one rather than pulumi-random (no provider
plugin download). Its values move through the stages of a rotation, programs/rotation.py.
"""

from __future__ import annotations

import secrets
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from orchestrator.programs.rotation import INITIAL, Rotation, Secrets, advance


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits, valid in an HTTP header


class _OriginSecretProvider(ResourceProvider):
    # Its pickle is a class reference (the secret is in the outputs, which stay secrets): in
    # plain text in the state, as programs/emulated.py's providers, for the same reason.
    serialize_as_secret_always = False

    def create(self, props: dict[str, Any]) -> CreateResult:
        value = new_secret()
        return CreateResult(
            id_=secrets.token_hex(8),
            outs={"rotation": props["rotation"], "sent": value, "accepted": [value]},
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds.get("rotation") != news.get("rotation"))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # A stack from before rotation existed holds one `value`: that is a settled secret.
        before, after = Rotation.parse(olds.get("rotation") or INITIAL), Rotation.parse(news["rotation"])
        sent = olds.get("sent") or olds["value"]
        now = Secrets(sent, tuple(olds.get("accepted") or [sent]))
        if after.stage != before.stage:
            now = advance(now, after.stage, new_secret)
        return UpdateResult(outs={"rotation": str(after), "sent": now.sent, "accepted": list(now.accepted)})


class OriginSecret(Resource):
    """`sent`: the value the edge adds to every origin request; `accepted`: the values the
    API lets through. Both are stack secrets. `rotation` is the stage it is in."""

    sent: pulumi.Output[str]
    accepted: pulumi.Output[list[str]]
    rotation: pulumi.Output[str]

    def __init__(self, name: str, rotation: str, opts: pulumi.ResourceOptions | None = None) -> None:
        Rotation.parse(rotation)  # a malformed config value fails the preview, not the update
        super().__init__(
            _OriginSecretProvider(),
            name,
            {"rotation": rotation, "sent": None, "accepted": None},
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["sent", "accepted"])
            ),
        )
