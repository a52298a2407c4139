"""Provisioned concurrency in the emulator: the part of Lambda's API that moto (5.2.x) lacks.

moto answers nothing at `/2019-09-30/functions/{name}/provisioned-concurrency`, and its
aliases never move on their own. What AWS does, from Lambda's API reference
(Put/Get/Delete/ListProvisionedConcurrencyConfigs, ProvisionedConcurrencyConfigListItem)
and from what others reproduced against AWS (below), and what this module reproduces:

- a configuration on an alias is `IN_PROGRESS` while Lambda allocates it, then `READY`
  (or `FAILED`, with a `StatusReason`); `Allocated...` reaches `Requested...` when ready;
- when such an alias changes `FunctionVersion`, Lambda keeps every request on the version
  it served, shown as `RoutingConfig.AdditionalVersionWeights = {old: 1.0}` with
  `FunctionVersion` already the new one, until the new version's provisioned concurrency
  is READY; then the weights clear. When the allocation FAILS, they stay;
- a weighted alias splits its provisioned concurrency across both versions, so a change of
  weights allocates again (IN_PROGRESS, then READY) without holding the weights back;
- PutProvisionedConcurrencyConfig on an alias with weights (a canary, or a move in flight)
  is refused: "Alias with weights can not be used with Provisioned Concurrency".
The held-back weights and that refusal are not in the API reference: they are what
Terraform's AWS provider reproduced against AWS (hashicorp/terraform-provider-aws#48116,
which waits up to 15 minutes for the weights to clear after an UpdateAlias, and
hashicorp/terraform#24957).

Here an allocation takes `EDGESHIP_EMULATOR_PC_READY_S` seconds (1.5 by default: AWS takes
minutes), and states advance when read (no timer thread). For tests, POST
`/moto-api/edgeship/provisioned-concurrency` with `{"ready_s": 30, "fail_with": "reason"}`
changes the time of later allocations and makes the ones that end from then on FAILED
(`"fail_with": ""` heals them); `{"read_errors": ["TooManyRequestsException", ...]}` makes
the next GetProvisionedConcurrencyConfig calls answer those errors, one per call (a throttle,
or AccessDeniedException as for a role without the permission). Only aliases take a configuration here (the project sets
none on versions); a version qualifier is refused, saying so.

`install()` adds the handlers to moto's URL tables; the emulator runs moto's server
through orchestrator/local/motoserver.py, which calls it first.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

READY_S_ENV = "EDGESHIP_EMULATOR_PC_READY_S"
CONTROL_PATH = "/moto-api/edgeship/provisioned-concurrency"
IN_PROGRESS, READY, FAILED = "IN_PROGRESS", "READY", "FAILED"
_ATTR = "_edgeship_provisioned"  # where an alias keeps its configuration (it goes with the alias)
# moto's server answers on several threads: one lock for every read-and-advance.
_LOCK = threading.RLock()
_JSON = {"Content-Type": "application/json"}
READ_ERROR_STATUS = {"AccessDeniedException": 403, "TooManyRequestsException": 429}  # as Lambda answers


@dataclass
class Settings:
    """How allocations behave in this emulator (the control route changes them)."""

    ready_s: float = 1.5
    fail_with: str = ""
    read_errors: list[str] = field(default_factory=list)  # the next Gets' error codes, in order


SETTINGS = Settings()


@dataclass
class Config:
    """One alias's provisioned concurrency, and the weights it holds back while it allocates."""

    requested: int
    status: str
    ready_at: float
    modified: str
    reason: str = ""
    # The routing asked for by an UpdateAlias that changed the version; applied once READY.
    pending: dict[str, Any] | None = None

    def allocate(self) -> None:
        self.status, self.reason = IN_PROGRESS, ""
        self.ready_at = time.monotonic() + SETTINGS.ready_s
        self.modified = _now()

    def view(self) -> dict[str, Any]:
        """The configuration as Lambda answers it (Get and Put)."""
        allocated = self.requested if self.status == READY else 0
        view: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": self.requested,
            "AvailableProvisionedConcurrentExecutions": allocated,
            "AllocatedProvisionedConcurrentExecutions": allocated,
            "Status": self.status,
            "LastModified": self.modified,
        }
        if self.reason:
            view["StatusReason"] = self.reason
        return view


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def config_of(alias: Any) -> Config | None:
    found = getattr(alias, _ATTR, None)
    return found if isinstance(found, Config) else None


def advance(alias: Any) -> None:
    """Bring an alias's allocation up to now: READY (the held-back weights applied) or FAILED
    (they stay, as on AWS) once its time has come."""
    config = config_of(alias)
    if config is None or config.status != IN_PROGRESS or time.monotonic() < config.ready_at:
        return
    if SETTINGS.fail_with:
        config.status, config.reason = FAILED, SETTINGS.fail_with
        return
    config.status = READY
    if config.pending is not None:
        alias.routing_config, config.pending = config.pending, None


def serving(alias: Any) -> str:
    """The version an alias's requests go to while it moves ({old: 1}), else its version."""
    config = config_of(alias)
    weights = (alias.routing_config or {}).get("AdditionalVersionWeights") or {}
    if config is not None and config.pending is not None and len(weights) == 1:
        return str(next(iter(weights)))
    return str(alias.function_version)


def _weights(routing: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in ((routing or {}).get("AdditionalVersionWeights") or {}).items() if v}


def moved(alias: Any, before_version: str, before_serving: str, before_routing: Any) -> None:
    """After moto applied an UpdateAlias: hold the weights back when the version changed."""
    config = config_of(alias)
    if config is None:
        return
    version, asked = str(alias.function_version), alias.routing_config or {}
    if version != before_version and version != before_serving:
        # To a version not warm: every request stays on the one that served, until READY.
        config.pending = asked
        alias.routing_config = {"AdditionalVersionWeights": {before_serving: 1.0}}
    elif version == before_version and config.pending is not None:
        # Asked again while moving (the same version): still held back, now for this routing.
        config.pending = asked
        alias.routing_config = before_routing
        return
    else:
        # The same version with other weights, or back to the version that still served.
        if version == before_version and _weights(asked) == _weights(before_routing):
            return  # nothing changed: nothing to allocate
        config.pending = None
    config.allocate()


def _lambda_response_class() -> Any:
    """moto's LambdaResponse with the provisioned-concurrency operations, and alias reads and
    updates that go through the allocation above (made on first use: moto imports slowly)."""
    from moto.awslambda.exceptions import InvalidParameterValueException, LambdaClientError
    from moto.awslambda.responses import LambdaResponse

    class NotFound(LambdaClientError):
        code = 404

        def __init__(self) -> None:
            super().__init__(
                "ProvisionedConcurrencyConfigNotFoundException",
                "No Provisioned Concurrency Config found for this function",
            )

    class Missing(LambdaClientError):
        code = 404

        def __init__(self, what: str) -> None:
            super().__init__("ResourceNotFoundException", what)

    class Refused(LambdaClientError):
        def __init__(self, error: str) -> None:
            self.code = READ_ERROR_STATUS.get(error, 400)
            super().__init__(error, f"refused by the emulator's read_errors ({error})")

    class ProvisionedLambdaResponse(LambdaResponse):
        def _alias(self) -> Any:
            function = unquote(self.path.split("/")[-2])
            qualifier = (self.querystring.get("Qualifier") or [""])[0]
            if not qualifier or qualifier == "$LATEST" or qualifier.isdigit():
                raise InvalidParameterValueException(
                    f"the local emulator keeps provisioned concurrency on aliases only, not {qualifier!r}"
                )
            return self.backend.get_alias(name=qualifier, function_name=function)

        def put_provisioned_concurrency_config(self) -> Any:
            requested = int(json.loads(self.body)["ProvisionedConcurrentExecutions"])
            if requested < 1:
                raise InvalidParameterValueException("ProvisionedConcurrentExecutions must be at least 1")
            with _LOCK:
                alias = self._alias()
                advance(alias)
                if _weights(alias.routing_config):  # Lambda's own refusal, word for word
                    raise InvalidParameterValueException(
                        "Alias with weights can not be used with Provisioned Concurrency"
                    )
                config = config_of(alias)
                if config is None:
                    config = Config(requested, IN_PROGRESS, 0.0, _now())
                    setattr(alias, _ATTR, config)
                config.requested = requested
                config.allocate()
                return 202, {"status": 202, **_JSON}, json.dumps(config.view())

        def get_provisioned_concurrency_config(self) -> Any:
            with _LOCK:
                if SETTINGS.read_errors:
                    raise Refused(SETTINGS.read_errors.pop(0))
                alias = self._alias()
                advance(alias)
                config = config_of(alias)
                if config is None:
                    raise NotFound()
                return 200, _JSON, json.dumps(config.view())

        def delete_provisioned_concurrency_config(self) -> Any:
            with _LOCK:
                alias = self._alias()
                config = config_of(alias)
                if config is None:
                    raise Missing(f"no provisioned concurrency configuration on {alias.arn}")
                if config.pending is not None:  # nothing left to wait for: the move completes
                    alias.routing_config = config.pending
                delattr(alias, _ATTR)
                return 204, {"status": 204}, ""

        def list_provisioned_concurrency_configs(self) -> Any:
            function = unquote(self.path.split("/")[-2])
            items = []
            with _LOCK:
                for alias in self.backend.list_aliases(function):
                    advance(alias)
                    config = config_of(alias)
                    if config is not None:
                        items.append({"FunctionArn": alias.arn, **config.view()})
            return 200, _JSON, json.dumps({"ProvisionedConcurrencyConfigs": items})

        def get_alias(self) -> Any:
            with _LOCK:
                self._advance_named()
                return super().get_alias()

        def list_aliases(self) -> Any:
            with _LOCK:
                for alias in self.backend.list_aliases(self.path.split("/")[-2]):
                    advance(alias)
                return super().list_aliases()

        def update_alias(self) -> Any:
            with _LOCK:
                alias = self._advance_named()
                before = (str(alias.function_version), serving(alias), alias.routing_config)
                status, headers, _ = super().update_alias()  # moto validates and applies
                moved(alias, *before)
                return status, headers, json.dumps(alias.to_json())

        def _advance_named(self) -> Any:
            function = unquote(self.path.rsplit("/")[-3])
            name = unquote(self.path.rsplit("/", 2)[-1])
            alias = self.backend.get_alias(name=name, function_name=function)
            advance(alias)
            return alias

    return ProvisionedLambdaResponse


def _control(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """Tests' knob: how long later allocations take, and whether the ones ending now fail."""
    if request.method == "POST":
        body = json.loads(request.get_data() or b"{}")
        with _LOCK:
            if "ready_s" in body:
                SETTINGS.ready_s = float(body["ready_s"])
            if "fail_with" in body:
                SETTINGS.fail_with = str(body["fail_with"])
            if "read_errors" in body:
                SETTINGS.read_errors = [str(code) for code in body["read_errors"]]
    return (
        200,
        {"Content-Type": "application/json"},
        json.dumps(
            {
                "ready_s": SETTINGS.ready_s,
                "fail_with": SETTINGS.fail_with,
                "read_errors": SETTINGS.read_errors,
            }
        ),
    )


def install() -> None:
    """Route moto's server to the handlers above (before the server builds its apps)."""
    from moto.awslambda import urls
    from moto.moto_api._internal import urls as api_urls

    SETTINGS.ready_s = float(os.environ.get(READY_S_ENV, SETTINGS.ready_s))
    dispatch = _lambda_response_class().dispatch
    base = r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[\w_:%-]+)"
    for path in (
        base + "/provisioned-concurrency/?$",
        base + "/aliases$",
        base + r"/aliases/(?P<alias_name>[\w_-]+)$",
    ):
        urls.url_paths[path] = dispatch
    api_urls.url_paths["{0}" + CONTROL_PATH] = _control
