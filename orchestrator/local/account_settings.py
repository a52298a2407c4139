"""Lambda's GetAccountSettings in the emulator: moto (5.2.x) answers nothing at
`GET /2016-08-19/account-settings`.

What AWS answers (Lambda API reference, GetAccountSettings / AccountLimit): the account's
concurrency limit per region (`ConcurrentExecutions`, 1000 unless raised through Service
Quotas) and what no function has reserved of it (`UnreservedConcurrentExecutions`), which
Lambda keeps at 100 or more: a PutFunctionConcurrency that would leave less is refused.
Here the limit is moto's own `MOTO_LAMBDA_CONCURRENCY_QUOTA` (with it set, moto refuses
such a PutFunctionConcurrency too; unset: 1000, as AWS, and moto refuses nothing), and the
unreserved part is the limit less every function's reservation. Code sizes are AWS's
default limits and the sum of the functions' versions.

`install()` adds the route to moto's URL table; orchestrator/local/motoserver.py calls it.
"""

from __future__ import annotations

import json
import os
from typing import Any

QUOTA_ENV = "MOTO_LAMBDA_CONCURRENCY_QUOTA"  # moto's own setting for the limit
DEFAULT_CONCURRENCY = 1000  # AWS's default per account and region
# AWS's default code limits (bytes): 75 GB in all, 250 MB unzipped, 50 MB zipped per upload.
TOTAL_CODE_SIZE = 80_530_636_800
CODE_SIZE_UNZIPPED = 262_144_000
CODE_SIZE_ZIPPED = 52_428_800
PATH = r"{0}/(?P<api_version>[^/]+)/account-settings/?$"


def settings_of(functions: list[Any], every_version: list[Any], limit: int) -> dict[str, Any]:
    """The answer for these functions ($LATEST of each, for reservations) and versions."""
    reserved = sum(int(f.reserved_concurrency or 0) for f in functions)
    return {
        "AccountLimit": {
            "TotalCodeSize": TOTAL_CODE_SIZE,
            "CodeSizeUnzipped": CODE_SIZE_UNZIPPED,
            "CodeSizeZipped": CODE_SIZE_ZIPPED,
            "ConcurrentExecutions": limit,
            "UnreservedConcurrentExecutions": limit - reserved,
        },
        "AccountUsage": {
            "TotalCodeSize": sum(int(v.code_size or 0) for v in every_version),
            "FunctionCount": len(functions),
        },
    }


def _response_class() -> Any:
    from moto.awslambda.responses import LambdaResponse

    class AccountSettingsResponse(LambdaResponse):
        def get_account_settings(self) -> Any:
            limit = int(os.environ.get(QUOTA_ENV, DEFAULT_CONCURRENCY))
            functions = list(self.backend.list_functions())
            versions = list(self.backend.list_functions("ALL"))
            body = settings_of(functions, versions, limit)
            return 200, {"Content-Type": "application/json"}, json.dumps(body)

    return AccountSettingsResponse


def install() -> None:
    """Route moto's server to the handler above (before the server builds its apps)."""
    from moto.awslambda import urls

    urls.url_paths[PATH] = _response_class().dispatch
