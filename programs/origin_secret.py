"""A random secret kept in the stack's state, for the CloudFront -> API origin header.

A dynamic resource rather than pulumi-random: it needs no provider plugin download, and
it is generated once at create and then never changes, so previews stay quiet.
"""

from __future__ import annotations

import secrets
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider


class _OriginSecretProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=secrets.token_hex(8), outs={"value": secrets.token_urlsafe(32)})

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=False)


class OriginSecret(Resource):
    """`value` is a fresh 256-bit URL-safe secret, stable for the life of the resource."""

    value: pulumi.Output[str]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            _OriginSecretProvider(),
            name,
            {"value": None},
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["value"])),
        )
