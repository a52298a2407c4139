"""The durable promotion record and the abort request, in the environment's own bucket.

    promotions/<env>/current.json        the newest promotion (orchestrator/release/machine.py's record)
    promotions/<env>/history/<id>.json   every promotion, as it ended (or as far as it got)
    promotions/<env>/abort.json          an operator's request to stop a running promotion
    promotions/<env>/continue.json       an operator's go-ahead for a paused promotion

Writes of the record are fenced: each names the ETag it last read (If-Match), or that
no record exists yet (If-None-Match: *). A driver that was taken over finds its ETag
stale, gets FencedError, and stops without touching the alias. The abort request is
its own object so that an operator never races the driver's writes of the record; so is
the go-ahead, which names the promotion so that it never lets a later one pass its pause.
Every body carries its format and the edgeship version that wrote it (orchestrator/base/formats.py):
a record of a newer format is refused (exit 2), one of an older format is read.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.base import formats
from orchestrator.base.errors import FencedError
from orchestrator.release.lease import Lease, precondition_failed
from orchestrator.release.machine import Outcome, Phase, PromotionRecord


@dataclass(frozen=True)
class AbortRequest:
    """Someone asked the running promotion (or the lease holder) to stop and roll back."""

    by: str
    at: float
    promotion: str | None  # the record id, when the driver had written one
    token: str | None  # the lease token of the driver it was meant for


def meant_for(request: AbortRequest, held: Lease) -> bool:
    """Whether an abort request is for the driver holding `held`; pure, no clock compared
    (the requester's and the driver's clocks may disagree by any amount).

    A request names the lease token of the driver it was meant for (one per take: renewals
    keep it, a take-over changes it, and `abort` asks again when a resume takes over the same
    promotion) and, once the driver has written one, its promotion: a request for promotion
    X does not stop promotion Y that the same command started after finishing X's rollback.
    A request without a token (of another format; edgeship always writes one) stops the
    promotion it names, and nothing else."""
    if request.token:
        return request.token == held.token and (
            request.promotion is None or held.promotion is None or request.promotion == held.promotion
        )
    return request.promotion is not None and request.promotion == held.promotion


@dataclass(frozen=True)
class ContinueRequest:
    """Someone said a paused promotion may go on (`orchestrator resume-promotion`)."""

    by: str
    at: float
    promotion: str


class RecordStore:
    """Records and abort requests in an S3 bucket (real or emulated)."""

    def __init__(self, s3: Any, bucket: str, env: str) -> None:
        self.s3, self.bucket, self.env = s3, bucket, env
        self.prefix = f"promotions/{env}"

    def read(self) -> tuple[PromotionRecord | None, str | None]:
        """The newest record and its ETag (None, None when there is none)."""
        key = f"{self.prefix}/current.json"
        got = self._get(key)
        if got is None:
            return None, None
        data, etag = got
        return self._parse(data, f"the promotion record of {self.env!r}", key), etag

    def write(self, record: PromotionRecord, etag: str | None, write_id: str | None = None) -> str:
        """Write the record if it is still the one we read; returns the new ETag.

        Every body carries a write id. When S3 applied our PUT but the answer was lost, the
        client's retry meets its own write and gets 412: the record then carries our write
        id, and that is a success, not a take-over.
        """
        from botocore.exceptions import BotoCoreError  # the client's library: loaded already

        write_id = write_id or uuid.uuid4().hex
        body = json.dumps(formats.stamp({**record.to_dict(), "write": write_id}), indent=2).encode()
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        key = f"{self.prefix}/current.json"
        try:
            new_etag = str(self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, **condition)["ETag"])
        except self.s3.exceptions.ClientError as exc:
            if not precondition_failed(exc) and exc.response.get("Error", {}).get("Code") != "NoSuchKey":
                raise
            landed = self.etag_if_written(write_id)
            if landed is None:
                raise FencedError(
                    f"promotion record of {self.env!r} was changed by another holder; this run stops here",
                    fix=f"see `orchestrator status --env {self.env}`",
                ) from None
            new_etag = landed
        # History is for people; the fenced write above is the one that counts. Best effort
        # means any failure of the call: an error answer (ClientError) or none at all
        # (BotoCoreError: a connection or read timeout) must not stop a driver mid-step.
        with contextlib.suppress(self.s3.exceptions.ClientError, BotoCoreError):
            self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/history/{record.id}.json", Body=body)
        return new_etag

    def etag_if_written(self, write_id: str) -> str | None:
        """The record's ETag when its body is the write `write_id` (one of ours whose answer
        was lost, so that we never learnt its ETag), else None."""
        got = self._get(f"{self.prefix}/current.json")
        return got[1] if got is not None and got[0].get("write") == write_id else None

    def history(self, limit: int) -> list[PromotionRecord]:
        """The newest `limit` promotions as they ended (or as far as they got), newest first.
        Ids begin with their UTC start time, so the keys sort by start."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/history/"
        )
        keys = sorted((o["Key"] for page in pages for o in page.get("Contents", ())), reverse=True)
        records = []
        for key in keys[:limit]:
            got = self._get(key)
            if got is not None:
                name = key.rsplit("/", 1)[-1]
                what = f"the promotion record of {self.env!r} (history {name})"
                records.append(parse_record(got[0], what, f"s3://{self.bucket}/{key}", history=True))
        return records

    def request_abort(self, by: str, promotion: str | None, token: str | None) -> AbortRequest:
        """Ask the running driver to stop (it looks at every heartbeat)."""
        request = AbortRequest(by, time.time(), promotion, token)
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"{self.prefix}/abort.json",
            Body=json.dumps(formats.stamp(asdict(request))).encode(),
        )
        return request

    def abort_request(self) -> AbortRequest | None:
        """The standing abort request, if any. Of any format: a request to stop is honoured
        whoever wrote it (its extra fields are ignored), since stopping is the safe side."""
        got = self._get(f"{self.prefix}/abort.json")
        return AbortRequest(**formats.known(AbortRequest, got[0])) if got else None

    def request_continue(self, by: str, promotion: str) -> ContinueRequest:
        """Let the paused promotion `promotion` go on (its driver looks while it holds)."""
        request = ContinueRequest(by, time.time(), promotion)
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"{self.prefix}/continue.json",
            Body=json.dumps(formats.stamp(asdict(request))).encode(),
        )
        return request

    def continue_request(self, promotion: str) -> ContinueRequest | None:
        """The go-ahead for this promotion, if one was given (extra fields ignored: it names
        the promotion it lets go on, and nothing else is needed to honour it)."""
        got = self._get(f"{self.prefix}/continue.json")
        request = ContinueRequest(**formats.known(ContinueRequest, got[0])) if got else None
        return request if request and request.promotion == promotion else None

    def _parse(self, data: dict[str, Any], what: str, key: str) -> PromotionRecord:
        """A record body as today's PromotionRecord; FormatError (exit 2, naming the version to
        run) for one this edgeship cannot read, never a traceback."""
        return parse_record(data, what, f"s3://{self.bucket}/{key}")

    def _get(self, key: str) -> tuple[dict[str, Any], str] | None:
        try:
            got = self.s3.get_object(Bucket=self.bucket, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None
        text = got["Body"].read()
        try:
            data = json.loads(text)
        except ValueError:
            raise formats.unreadable(key, f"s3://{self.bucket}/{key}", "not JSON") from None
        if not isinstance(data, dict):
            raise formats.unreadable(key, f"s3://{self.bucket}/{key}", "not a JSON object")
        return data, str(got["ETag"])


# Phase-like fields of a record and the values this edgeship knows for each.
_ENUMS: dict[str, type[Phase] | type[Outcome]] = {"phase": Phase, "then": Phase, "cause": Outcome}


def parse_record(data: dict[str, Any], what: str, where: str, *, history: bool = False) -> PromotionRecord:
    """A record body of any format this edgeship reads, as today's PromotionRecord (pure).

    FormatError for a newer format, a phase (or `then`, `cause`) this edgeship does not know,
    a shape from before crash-safe promotions, or a body missing what every record has.
    `history`: a history copy (of format 0 it is only in the way: nothing is left to finish).
    """
    legacy_fix = f"delete {where}: a copy for people, nothing in it is left to finish" if history else None
    body = formats.body(data, what, where, legacy_keys=("state", "step_reached"), legacy_fix=legacy_fix)
    for name, kind in _ENUMS.items():
        value = body.get(name)
        # not a string (a list, a number): unknown too, not a TypeError from the lookup
        if value and (not isinstance(value, str) or value not in kind._value2member_map_):
            raise formats.unknown_value(what, where, name, value, data)
    body.pop("write", None)  # the write id: only the fenced write looks at it
    try:
        return PromotionRecord.from_dict(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise formats.unreadable(what, where, f"{type(exc).__name__}: {exc}") from None
