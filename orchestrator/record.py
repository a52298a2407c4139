"""The durable promotion record and the one-promotion-per-environment lock.

Both live next to the model, in the environment's own bucket (the emulated one for
`local`): `promotions/<env>/lock.json` is created with If-None-Match: * so only one
promotion can hold it, and `promotions/<env>/current.json` says how far it got. A
record left `running` with no live holder is an interrupted promotion: the next
`promote`, `rollback` or `status` finds it and offers to resume or roll back.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from orchestrator.errors import PromotionLockedError

RUNNING, PROMOTED, ROLLED_BACK, FAILED = "running", "promoted", "rolled_back", "failed"


@dataclass(frozen=True)
class Holder:
    """Who runs a promotion."""

    user: str
    host: str
    pid: int

    @staticmethod
    def me() -> Holder:
        """This process."""
        return Holder(
            os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or "unknown",
            socket.gethostname(),
            os.getpid(),
        )

    def describe(self) -> str:
        """'user@host (pid N)'."""
        return f"{self.user}@{self.host} (pid {self.pid})"


@dataclass(frozen=True)
class PromotionRecord:
    """How far one promotion got; written before the first traffic move."""

    id: str
    env: str
    blue: str
    green: str
    schedule: str
    steps: list[int]
    holder: Holder
    state: str = RUNNING
    step_reached: int = -1  # index into steps; -1: no traffic moved yet
    weight: int = 0
    started: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    reason: str = ""

    @staticmethod
    def new(env: str, blue: str, green: str, schedule: str, steps: list[int]) -> PromotionRecord:
        """A fresh record held by this process."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return PromotionRecord(
            f"{stamp}-{uuid.uuid4().hex[:6]}", env, blue, green, schedule, steps, Holder.me()
        )

    def advance(self, step: int, weight: int) -> PromotionRecord:
        """The record after green reached `weight` at step index `step`."""
        return replace(self, step_reached=step, weight=weight, updated=time.time())

    def close(self, state: str, reason: str = "") -> PromotionRecord:
        """The record at the end of the promotion."""
        return replace(self, state=state, reason=reason, updated=time.time())

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> PromotionRecord:
        """Parse the JSON form."""
        return PromotionRecord(**{**data, "holder": Holder(**data["holder"]), "steps": list(data["steps"])})


def holder_is_gone(holder: Holder, *, host: str, pid_alive: bool) -> bool:
    """Whether a lock's holder has certainly stopped: only knowable for this host."""
    return holder.host == host and not pid_alive


class RecordStore:
    """Records and the lock in an S3 bucket (real or emulated)."""

    def __init__(self, s3: Any, bucket: str, env: str) -> None:
        self.s3, self.bucket, self.env = s3, bucket, env
        self.prefix = f"promotions/{env}"

    def current(self) -> PromotionRecord | None:
        """The newest record, if any."""
        data = self._get(f"{self.prefix}/current.json")
        return PromotionRecord.from_dict(data) if data else None

    def lock_holder(self) -> Holder | None:
        """Who holds the lock now, if anyone."""
        data = self._get(f"{self.prefix}/lock.json")
        return Holder(**data) if data else None

    def acquire(self, holder: Holder) -> None:
        """Take the environment's promotion lock, or say who has it."""
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=f"{self.prefix}/lock.json", Body=json.dumps(asdict(holder)).encode(),
                IfNoneMatch="*",
            )  # fmt: skip
        except self.s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in (
                "PreconditionFailed",
                "412",
                "ConditionalRequestConflict",
            ):
                raise
            other = self.lock_holder()
            raise PromotionLockedError(
                f"another promotion of {self.env!r} is running: {other.describe() if other else 'unknown holder'}",
                fix=f"wait for it; if it crashed, `orchestrator promote --env {self.env} --resume` or `--rollback`",
            ) from None

    def take_over(self, holder: Holder) -> None:
        """Replace a dead holder's lock with ours (resume or rollback after a crash)."""
        self.s3.put_object(
            Bucket=self.bucket, Key=f"{self.prefix}/lock.json", Body=json.dumps(asdict(holder)).encode()
        )

    def release(self) -> None:
        """Give the lock back."""
        self.s3.delete_object(Bucket=self.bucket, Key=f"{self.prefix}/lock.json")

    def save(self, record: PromotionRecord) -> None:
        """Write the record durably (current, plus history by id)."""
        body = json.dumps(record.to_dict(), indent=2).encode()
        self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/current.json", Body=body)
        self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/history/{record.id}.json", Body=body)

    def _get(self, key: str) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        return dict(json.loads(body))
