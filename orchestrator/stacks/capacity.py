"""Whether the function's reserved concurrency fits the account: said before `up` asks.

Lambda keeps at least 100 of an account's concurrent executions (per region) unreserved:
a PutFunctionConcurrency that would leave fewer is refused ("decreases account's
UnreservedConcurrentExecution below its minimum value of [100]"), and on AWS that refusal
comes minutes into an `up`. GetAccountSettings tells the limit (AccountLimit.
ConcurrentExecutions, 1000 by default) and what is unreserved now
(UnreservedConcurrentExecutions); the function's own current reservation counts back in,
as changing it frees what it held.

    headroom(limit, unreserved_now, reserved_now, requested) -> Headroom     pure
    check(lam, function, requested, region) -> Headroom                     the adapter

A warning, not a refusal: the account's numbers change under us (other stacks reserve and
release), and Lambda itself has the last word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIN_UNRESERVED = 100  # what Lambda keeps unreserved in every account and region


@dataclass(frozen=True)
class Headroom:
    """The account's concurrency as a reservation of `requested` would leave it."""

    limit: int  # AccountLimit.ConcurrentExecutions
    unreserved_now: int  # AccountLimit.UnreservedConcurrentExecutions
    reserved_now: int  # the function's reservation today (0: none, or no function yet)
    requested: int  # function.reserved_concurrency

    @property
    def unreserved_after(self) -> int:
        return self.unreserved_now + self.reserved_now - self.requested

    @property
    def most(self) -> int:
        """The largest reservation Lambda would accept now."""
        return max(self.unreserved_now + self.reserved_now - MIN_UNRESERVED, 0)

    @property
    def enough(self) -> bool:
        # Lowering (or keeping) a reservation is never refused, even in an account already short.
        return self.requested <= self.reserved_now or self.unreserved_after >= MIN_UNRESERVED

    def warning(self, function: str, region: str) -> str | None:
        """What to tell the user when Lambda would refuse the reservation; None when it fits."""
        if self.enough:
            return None
        lower = (
            f"lower function.reserved_concurrency to at most {self.most}"
            if self.most > 0
            else "remove function.reserved_concurrency"
        )
        return (
            f"reserved_concurrency = {self.requested} for {function} would leave {self.unreserved_after} of the "
            f"account's {self.limit} concurrent executions unreserved in {region}; Lambda keeps at least "
            f"{MIN_UNRESERVED} unreserved and will refuse it. Request a quota increase for Lambda's "
            f"'Concurrent executions' in Service Quotas ({region}), or {lower}"
        )


def headroom(limit: int, unreserved_now: int, reserved_now: int | None, requested: int) -> Headroom:
    """The account after reserving `requested` for a function that holds `reserved_now`."""
    return Headroom(limit, unreserved_now, reserved_now or 0, requested)


def check(lam: Any, function: str, requested: int) -> Headroom:
    """Read the account's and the function's concurrency (GetAccountSettings,
    GetFunctionConcurrency) and weigh `requested` against them."""
    limits = lam.get_account_settings()["AccountLimit"]
    try:
        reserved = lam.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
    except lam.exceptions.ResourceNotFoundException:  # not deployed yet: it holds nothing
        reserved = None
    return headroom(
        int(limits["ConcurrentExecutions"]),
        int(limits["UnreservedConcurrentExecutions"]),
        None if reserved is None else int(reserved),
        requested,
    )
