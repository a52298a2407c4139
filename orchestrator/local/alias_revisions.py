"""Alias RevisionIds in the emulator: every update makes a new one, and a stale one is refused.

moto (5.2.x) gives an alias one RevisionId when it is created, keeps it through every
update, and ignores the RevisionId an UpdateAlias names ("not yet implemented"). On AWS each
update makes a new RevisionId and an update naming another one fails with 412
PreconditionFailedException: that is what fences a driver's writes of `live`
(traffic.fence_for), and what a retried update whose first attempt landed meets (its answer
lost: traffic.own_write_landed). Kinder than AWS, the emulator would let neither be tested.

`install()` wraps moto's LambdaResponse.update_alias (the provisioned-concurrency handlers
call it as their `super()`, under their lock: the check and the update are one step) and
LambdaAlias.update in the emulator's process;
orchestrator/local/motoserver.py calls it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import unquote

MESSAGE = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias "
    "API to retrieve the latest Revision Id"
)  # AWS's own wording


def stale(named: str | None, current: str) -> bool:
    """Whether an update naming `named` must be refused (pure): a RevisionId was named and it
    is not the alias's current one."""
    return bool(named) and named != current


def install() -> None:
    from moto.awslambda.exceptions import PreconditionFailedException
    from moto.awslambda.models import LambdaAlias
    from moto.awslambda.responses import LambdaResponse

    if getattr(LambdaResponse.update_alias, "_edgeship", False):
        return
    original_response = LambdaResponse.update_alias
    original_update = LambdaAlias.update

    def update_alias(self: Any) -> Any:
        named = (json.loads(self.body or "{}") or {}).get("RevisionId")
        function, name = unquote(self.path.rsplit("/")[-3]), unquote(self.path.rsplit("/", 2)[-1])
        alias = self.backend.get_alias(name=name, function_name=function)
        if stale(named, alias.revision_id):
            # Raised, not returned: a caller wrapping this (provisioned.py's handler, which
            # records a provisioned-concurrency move after it) must not take it for an update.
            raise PreconditionFailedException(MESSAGE)
        return original_response(self)

    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        original_update(self, *args, **kwargs)
        self.revision_id = str(uuid.uuid4())

    update_alias._edgeship = True  # type: ignore[attr-defined]
    LambdaResponse.update_alias = update_alias  # type: ignore[method-assign]
    LambdaAlias.update = update  # type: ignore[method-assign]
