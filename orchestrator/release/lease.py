"""The promotion lease: at most one driver moves an environment's `live` alias at a time.

The lease is one S3 object, `promotions/<env>/lock.json`, next to the promotion record.
Every change to it is conditional, so two machines cannot both believe they hold it:

    take     create-if-absent (If-None-Match: *), or replace a stale one (If-Match: its ETag)
    renew    replace our own (If-Match: the ETag we wrote last); 412 = someone took it
    release  delete our own (If-Match: the ETag we wrote last); says released, absent or other

A lease is stale when it expired (judged on any machine by `expires_at`), or at once
when its holder ran on this host and that pid is dead. The holder is an identity, not a
host name: `EDGESHIP_HOLDER` (CI sets the run URL), else user@host:pid; `EDGESHIP_HOST`
overrides the host name (tests play "another machine" with it). The body carries its format
and the edgeship version that wrote it (orchestrator/base/formats.py): a newer one is refused.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from orchestrator.base import formats
from orchestrator.base.errors import EdgeshipError, FormatError, LeaseLostError, PromotionLockedError

# The commands that change the stack under the lease (release.holding_for_stack_change).
STACK_CHANGES = ("up", "rotate-origin-secret")


@dataclass(frozen=True)
class Lease:
    """Who holds an environment's promotion lease, and until when."""

    holder: str
    host: str
    pid: int
    expires_at: float  # epoch seconds; machines are assumed NTP-synchronised
    token: str  # one per acquisition; renewals keep it, a take-over changes it
    promotion: str | None = None  # the promotion id, once its record exists
    nonce: str = ""  # one per write: makes every ETag unique, and a retried write recognisable
    boot: str = ""  # boot id + pid namespace: a pid is only comparable where both match
    # What holds it: "promotion", "rollback", or a stack change (STACK_CHANGES). "" in a lease
    # written before kinds: read as a promotion's (what every reader assumed then). An older
    # reader ignores the field and only loses the better message: the format stays 2.
    kind: str = ""

    @property
    def stack_change(self) -> bool:
        """Held by `up` or `rotate-origin-secret`: no promotion to abort or resume."""
        return self.kind in STACK_CHANGES

    def describe(self, now: float | None = None) -> str:
        """'holder (host, pid N), lease expires in 12s' for messages."""
        left = self.expires_at - (time.time() if now is None else now)
        when = f"expires in {left:.0f}s" if left > 0 else f"expired {-left:.0f}s ago"
        return f"{self.holder} (host {self.host}, pid {self.pid}), lease {when}"


class Released(enum.Enum):
    """What a release found (LeaseStore.release)."""

    RELEASED = "released"  # deleted by our ETag, or by our token under a newer ETag
    # No lease there: deleted by us (a DELETE that landed and whose answer was lost: botocore's
    # retry of the conditional DELETE meets no object), or by someone who had taken it after it
    # ran out. Only the holder can tell the two apart (given_back).
    ABSENT = "absent"
    OTHER = "other"  # another acquisition's lease (another token, a newer format): left alone


def given_back(released: Released, *, lost: bool, valid: bool) -> bool:
    """Whether a holder's release gave back a lease that was its own to the end. An absent
    lease counts when the holder was not deposed and its lease still had a third left after the
    release (Heartbeat.valid): nobody may take an unexpired lease, so nobody else can have
    taken and removed it meanwhile; the DELETE that removed it was ours. Pure."""
    if lost:
        return False
    if released == Released.RELEASED:
        return True
    return released == Released.ABSENT and valid


def host_name() -> str:
    """This machine's name as leases record it."""
    return os.environ.get("EDGESHIP_HOST") or socket.gethostname()


def boot_id() -> str:
    """This kernel boot and pid namespace: two containers sharing a host name differ here."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()
        return f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""  # not Linux: a pid is never taken as proof that a holder is gone


def me(lease_s: float, promotion: str | None = None, kind: str = "promotion") -> Lease:
    """A fresh lease for this process, held for `kind` (Lease.kind)."""
    host, pid = host_name(), os.getpid()
    user = os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or "unknown"
    holder = os.environ.get("EDGESHIP_HOLDER") or f"{user}@{host}:{pid}"
    return Lease(
        holder,
        host,
        pid,
        time.time() + lease_s,
        uuid.uuid4().hex,
        promotion,
        uuid.uuid4().hex,
        boot_id(),
        kind,
    )


def is_stale(lease: Lease, *, now: float, host: str, boot: str, pid_alive: Callable[[int], bool]) -> bool:
    """Whether anyone may take this lease: expired, or its holder's process is gone from this
    machine (same host name, same boot and pid namespace: only there is its pid meaningful)."""
    same_machine = lease.host == host and bool(boot) and lease.boot == boot
    return now >= lease.expires_at or (same_machine and not pid_alive(lease.pid))


def parse_lease(text: bytes, env: str, where: str) -> Lease:
    """A lease body of any format this edgeship reads (orchestrator/base/formats.py), as today's
    Lease: extra fields are ignored; FormatError (exit 2) for a newer format, the lock of
    before crash-safe promotions, or a body that does not parse. Pure."""
    what = f"the promotion lease of {env!r}"
    try:
        data = json.loads(text)
    except ValueError:
        raise formats.unreadable(what, where, "not JSON") from None
    body = formats.body(data, what, where, legacy_keys=("user", "host", "pid"))
    try:
        return Lease(**formats.known(Lease, body))
    except TypeError as exc:  # a field every lease has is missing
        raise formats.unreadable(what, where, str(exc)) from None


def lease_clock(clocks: Any = time) -> Callable[[], float]:
    """The clock a lease's local deadlines are judged on: CLOCK_BOOTTIME where the platform has
    it (Linux), which keeps counting while the machine is suspended; CLOCK_MONOTONIC stops
    then, so a laptop that slept through its lease would wake believing the lease younger than
    it is. Elsewhere, monotonic. `clocks`: the time module (a test passes a stand-in)."""
    boottime = getattr(clocks, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return clocks.monotonic
    return lambda: float(clocks.clock_gettime(boottime))


@dataclass(frozen=True)
class Unconfirmed:
    """Why the lease read from S3 does not let its driver write the alias now."""

    why: str
    # Still this driver's token, only too close to (or past) its expiry by the wall clock: one
    # renewal decides (it is conditional on our ETag, so its success proves nobody took it).
    ours: bool


def unconfirmed(found: Lease | None, token: str, *, now: float, lease_s: float) -> Unconfirmed | None:
    """Why the lease read from S3 does not let the driver holding `token` write the alias now,
    or None when it does; pure. It must carry that token (a take-over writes a new one), else
    it is lost. By this machine's wall clock (which, unlike a local deadline, kept counting
    through a suspend and is the clock another machine judges expiry on) it must have the
    same margin `Heartbeat.valid` asks locally, a third of the lease left: the write that
    follows must land before anyone may take it. Ours with less left (the wall clock stepped
    forward since the last renewal, or this read was slow) is not lost: `ours`."""
    if found is None:
        return Unconfirmed("it was removed", ours=False)
    if found.token != token:
        return Unconfirmed(f"it was taken over by {found.describe(now)}", ours=False)
    left = found.expires_at - now
    if left <= 0:
        return Unconfirmed(
            f"it expired {now - found.expires_at:.0f}s ago by this machine's clock (was the clock stepped forward, or "
            "the machine suspended?), so another machine may take it at any moment",
            ours=True,
        )
    if left <= lease_s / 3:
        return Unconfirmed(
            f"only {left:.1f}s of it are left by this machine's clock (a write needs a third of the "
            f"{lease_s:g}s lease)",
            ours=True,
        )
    return None


# Forward writes: how many times the lease read before an alias write is tried (each read is
# botocore's attempts) while the lease holds locally, and the pause between two tries.
CONFIRM_TRIES = 3
CONFIRM_PAUSE_S = 1.0
RENEW_TRIES = 3  # a renewal in the main thread before an alias write (`Heartbeat.renew_now`)
PATIENT_S = 2 * 3600.0  # the longest a publish is renewed without a beat (`Heartbeat.patient`)
AfterFailedRead = Literal["renew", "write", "retry", "refuse"]


def after_failed_read(
    *, rollback: bool, valid: bool, tries: int, spare_s: float, read_s: float, max_tries: int = CONFIRM_TRIES
) -> AfterFailedRead:
    """What the driver does when the lease read right before an alias write failed (S3
    unreachable, a 5xx, throttled, timing out: nothing about who holds the lease); pure.
    `spare_s`: seconds left on the local deadline beyond the third a write needs; `read_s`:
    how long the failed read took (a fast refusal, or timeouts that took seconds).

    - "renew": the local third ran out meanwhile: as for any lease not surely valid, renew at
      once (a renewal is conditional on our ETag: its success proves the lease ours), or stop
      without touching live (exit 8).
    - "write": a rollback while the lease holds locally: nobody may take a lease with a third
      left (a take-over needs it expired), and putting live back on blue must not wait on S3.
    - "retry": a forward write, `tries` < `max_tries`, and time for another read as slow as
      this one *and* for the rollback that follows a refusal (its record write and its own
      lease read, each as slow again) before the third runs out.
    - "refuse": a forward write still unconfirmed: live is not moved forward; the error rolls
      the promotion back (under "write" above) while the lease still holds. Reads that time
      out are refused early rather than retried until the lease no longer holds, which would
      stop the driver with live split (exit 8) instead of rolling back.
    """
    if not valid:
        return "renew"
    if rollback:
        return "write"
    if tries >= max_tries or spare_s < 3 * read_s + CONFIRM_PAUSE_S:
        return "refuse"
    return "retry"


def precondition_failed(exc: Exception) -> bool:
    """True when S3 refused a conditional write (If-Match / If-None-Match did not hold)."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "412", "ConditionalRequestConflict")


class LeaseStore:
    """The lease object of one environment."""

    def __init__(self, s3: Any, bucket: str, env: str) -> None:
        self.s3, self.bucket, self.env = s3, bucket, env
        self.key = f"promotions/{env}/lock.json"

    def read(self) -> tuple[Lease | None, str | None]:
        """The lease and its ETag, or (None, None) when nobody holds it."""
        try:
            got = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except self.s3.exceptions.NoSuchKey:
            return None, None
        return parse_lease(got["Body"].read(), self.env, f"s3://{self.bucket}/{self.key}"), str(got["ETag"])

    def take(self, mine: Lease, *, pid_alive: Callable[[int], bool]) -> tuple[Lease, str]:
        """Take the lease if free or stale; PromotionLockedError naming the live holder otherwise."""
        current, etag = self.read()
        if current is not None and not is_stale(
            current, now=time.time(), host=host_name(), boot=boot_id(), pid_alive=pid_alive
        ):
            if current.stack_change:  # nothing to abort: `abort` would refuse it
                raise PromotionLockedError(
                    f"`{current.kind}` is running on {self.env!r} and holds the lease: {current.describe()}",
                    fix=f"wait for it to finish; `orchestrator status --env {self.env}` names it",
                )
            raise PromotionLockedError(
                f"a promotion of {self.env!r} holds the lease: {current.describe()}",
                fix=f"wait for it, or stop it from any machine with `orchestrator abort --env {self.env}`",
            )
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            return mine, self._put(mine, **condition)
        except self.s3.exceptions.ClientError as exc:
            if not precondition_failed(exc):
                raise
        winner, winner_etag = self.read()  # another machine took it between our read and our write
        if winner is not None and winner_etag and winner.nonce == mine.nonce:
            return mine, winner_etag  # our own write, retried after its answer was lost
        raise PromotionLockedError(
            f"another machine took the lease of {self.env!r} first: {winner.describe() if winner else 'released since'}",
            fix="run `orchestrator status` to see who is moving it",
        )

    def renew(
        self, mine: Lease, etag: str, lease_s: float, promotion: str | None = None, nonce: str | None = None
    ) -> tuple[Lease, str]:
        """Extend our lease; LeaseLostError when someone else replaced it.

        A 412 is not proof of a take-over: when a renewal landed but its answer was lost (and
        botocore's retry failed too), the lease in S3 is newer than the ETag we kept. A retry
        whose first attempt landed finds its own nonce; a later renewal finds our token (one
        per acquisition: a take-over always writes a new one), adopts that ETag and writes again.
        """
        renewed = replace(
            mine,
            expires_at=time.time() + lease_s,
            promotion=promotion or mine.promotion,
            nonce=nonce or uuid.uuid4().hex,
        )
        for _ in range(3):  # a lease that keeps changing under our token is not worth chasing longer
            try:
                return renewed, self._put(renewed, IfMatch=etag)
            except self.s3.exceptions.ClientError as exc:
                if not precondition_failed(exc) and exc.response.get("Error", {}).get("Code") != "NoSuchKey":
                    raise
            try:
                current, current_etag = self.read()
            except FormatError:  # a newer edgeship's lease: certainly not our renewal
                current, current_etag = None, None
            if current is None or not current_etag:
                break
            if current.nonce == renewed.nonce:
                return renewed, current_etag  # our own renewal, retried after its answer was lost
            if current.token != mine.token:
                break  # another acquisition: taken over
            etag = current_etag  # ours, written by a renewal whose answer we never got
            if renewed.promotion is None and current.promotion:  # that renewal named the promotion
                renewed = replace(renewed, promotion=current.promotion)
        raise self._lost()

    def release(self, etag: str, token: str | None = None) -> Released:
        """Give the lease back if it is still ours; nothing is deleted unless it is. With
        `token`, a lease still carrying it is ours even under another ETag (a renewal whose
        answer was lost). ABSENT when there is no lease (given_back says whether that is ours)."""
        for _ in range(3):
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
            except self.s3.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchKey":
                    return Released.ABSENT
                if not precondition_failed(exc):
                    raise
                if token is None:
                    return Released.OTHER
                try:
                    current, current_etag = self.read()
                except FormatError:  # a newer edgeship's lease: not ours
                    return Released.OTHER
                if current is None:
                    return Released.ABSENT
                if current.token != token or not current_etag:
                    return Released.OTHER
                etag = current_etag
                continue
            return Released.RELEASED
        return Released.OTHER  # ours, but changing under every DELETE: not known to be given back

    def _put(self, lease: Lease, **condition: str) -> str:
        body = json.dumps(formats.stamp(asdict(lease))).encode()
        return str(self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, **condition)["ETag"])

    def confirm(self, token: str, lease_s: float) -> str | None:
        """One read of the lease right before an alias write (`unconfirmed`): None when it is
        ours with a third left by the wall clock; why not, when it is ours with less (the
        caller renews once); LeaseLostError (exit 12, nothing touched) when it carries another
        token or none. A lease of a newer format is certainly not ours. Any other error of the
        read is raised as it is: it says nothing about who holds the lease (the caller decides,
        `after_failed_read`)."""
        try:
            found, _ = self.read()
        except FormatError as exc:
            verdict: Unconfirmed | None = Unconfirmed(
                f"it was replaced by one this edgeship cannot read ({exc.message})", ours=False
            )
        else:
            verdict = unconfirmed(found, token, now=time.time(), lease_s=lease_s)
        if verdict is None or verdict.ours:
            return None if verdict is None else verdict.why
        raise LeaseLostError(
            f"this run no longer holds the promotion lease of {self.env!r} in S3: {verdict.why}; "
            "it stopped without touching `live` again",
            fix=f"see `orchestrator status --env {self.env}`: a new holder finishes the promotion; "
            f"with none, `orchestrator promote --env {self.env} --resume` or `orchestrator abort`",
        )

    def _lost(self) -> LeaseLostError:
        try:
            winner, _ = self.read()
            to = f" to {winner.describe()}" if winner else " (it was removed)"
        except FormatError as exc:
            to = f" ({exc.message})"
        return LeaseLostError(
            f"this run lost the promotion lease of {self.env!r}"
            + to
            + "; it stopped without touching `live` again",
            fix=f"see `orchestrator status --env {self.env}`: the new holder finishes the promotion",
        )


class Heartbeat:
    """Renews a held lease in a background thread and watches for an abort request.

    The main thread only reads the flags: `lost` (someone else holds the lease now) and
    `abort_requested`, and asks `valid()`. A renewal starts once a third of the lease has
    passed since the last one started (looked at every lease_s/12, or every second if that
    is shorter), so a lease is renewed well before `valid()` (a third left) turns false; a
    driver cut off from S3 stops being `valid()` (it is not `lost`: nobody else holds it). Before an alias write the main thread renews
    at once if the lease is not surely valid (`renew_now`): a renewal that was merely slow
    (a busy machine, a slow S3 answer) must not stop a promotion.
    """

    def __init__(
        self,
        store: LeaseStore,
        lease: Lease,
        etag: str,
        lease_s: float,
        abort_check: Callable[[Lease], bool],
        tick_s: float = 1.0,
        clock: Callable[[], float] | None = None,
        taken_at: float | None = None,
    ) -> None:
        """`taken_at`: `clock`'s reading before the lease was made (`me`) and taken, when known:
        its `expires_at` was fixed then, so the local deadline starts there, not after the
        take's PUT (which can take seconds with retries)."""
        self.store, self.lease, self.etag, self.lease_s = store, lease, etag, lease_s
        # Every local deadline below runs on a clock that counts suspended time (lease_clock).
        self._clock = clock or lease_clock()
        self.abort_check, self.tick_s = abort_check, min(tick_s, lease_s / 12)
        self.abort_every_s = tick_s  # one read of the abort request per second, however short the tick
        self.lost: EdgeshipError | None = None
        self.abort_requested = False
        self._valid_until = (self._clock() if taken_at is None else taken_at) + lease_s
        # A main thread silent for this long is hung: stop renewing so another machine can take over.
        self.max_quiet_s = max(15 * 60.0, lease_s)
        self._last_beat = self._clock()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="edgeship-lease", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def attach(self, promotion: str) -> None:
        """Name the promotion in the lease (status on other machines shows it); best effort:
        the record names its holder anyway, and a failed renewal shows in `valid()`."""
        with contextlib.suppress(Exception):
            self._renew(promotion)

    @contextlib.contextmanager
    def patient(self, bound_s: float = PATIENT_S) -> Iterator[None]:
        """While the main thread waits on something with timeouts of its own (a publish: an
        engine `up`, which on AWS can outlast the hung-driver watchdog's 15 minutes), renew
        for up to `bound_s` (a hung engine must not hold the environment for as long as the
        process lives); the watchdog starts afresh afterwards."""
        quiet, self.max_quiet_s = self.max_quiet_s, max(self.max_quiet_s, bound_s)
        try:
            yield
        finally:
            self.max_quiet_s = quiet
            self.beat()

    def beat(self) -> None:
        """The main thread is making progress (called between actions and inside every wait)."""
        self._last_beat = self._clock()

    def valid(self) -> bool:
        """True while this process may still act: not deposed, and the lease has a third left."""
        return self.lost is None and self.spare_s() > 0

    def spare_s(self) -> float:
        """Seconds left on the local deadline beyond the third a write needs (<= 0: not valid)."""
        return self._valid_until - self.lease_s / 3 - self._clock()

    def confirm(self) -> str | None:
        """Right before an alias write: the lease read from S3 (one GetObject) still carries our
        token with a third left by the wall clock. The local deadline (`valid`) cannot see a
        take-over that S3 already shows, nor judge expiry on the clock other machines use.
        Another token, or none: LeaseLostError, kept in `lost` so that nothing more is renewed
        or written. Ours with too little left (the wall clock stepped forward since the last
        renewal): renewed once; None when that worked, else why (unknown: `lost` stays unset,
        the lease is nobody else's as far as we know). A failed read is raised as it is."""
        try:
            short = self.store.confirm(self.lease.token, self.lease_s)
        except LeaseLostError as exc:
            with self._lock:
                self.lost = self.lost or exc
            raise
        if short is None:
            return None
        failed = ""
        for attempt in range(RENEW_TRIES):  # tried again as renew_now does: one 503 is no stop
            try:
                self._renew()  # If-Match on our ETag: taken meanwhile -> `lost`; else a fresh lease
            except Exception as exc:  # S3 away or slow: whether the lease is still ours is unknown
                failed = f"{type(exc).__name__}: {exc}"
                if attempt + 1 < RENEW_TRIES:
                    time.sleep(min(1.0, self.lease_s / 12))
                continue
            if self.lost is not None:
                raise self.lost
            return None
        return f"{short}, and renewing it failed ({failed})"

    def renew_now(self, tries: int = RENEW_TRIES) -> bool:
        """Renew at once, in the calling thread (the main one, about to write live, found less
        than a third of the lease left): True once the lease surely holds again. A renewal
        that failed (a 503, a dropped connection) is tried again, a moment later, while the
        lease has not run out locally (If-Match on our ETag: a retry is as safe as the first):
        one transient error must not stop a healthy promotion with live split (review P3-5)."""
        for attempt in range(tries):
            with contextlib.suppress(Exception):  # S3 unreachable or slow: `valid()` says what it means
                self._renew()
            if self.valid() or self.lost is not None:
                break
            pause = min(1.0, self.lease_s / 12)
            if attempt + 1 == tries or self._clock() + pause >= self._valid_until:
                break  # run out locally: nobody's lease to renew any more as far as others know
            time.sleep(pause)
        return self.valid()

    def release(self) -> bool:
        """Stop renewing and give the lease back (only if still ours): True when it was ours to
        the end (given_back; a DELETE whose answer was lost counts, while the lease was valid)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        with self._lock:
            if self.lost is not None:
                return False
            released = self.store.release(self.etag, self.lease.token)
            # valid() after the DELETE's answer: valid then, it was valid the whole time
            # (no renewal runs any more), so nobody could have taken it in between
            return given_back(released, lost=self.lost is not None, valid=self.valid())

    def _renew(self, promotion: str | None = None) -> None:
        with self._lock:
            if self.lost is not None:
                return
            started = self._clock()
            try:
                self.lease, self.etag = self.store.renew(self.lease, self.etag, self.lease_s, promotion)
            except LeaseLostError as exc:
                self.lost = exc
                return
            self._valid_until = started + self.lease_s

    def _run(self) -> None:
        checked = self._clock()
        while not self._stop.wait(self.tick_s):
            try:
                hung = self._clock() - self._last_beat > self.max_quiet_s
                # due once a third has passed since the last renewal started (_valid_until - lease_s)
                if not hung and self._clock() >= self._valid_until - self.lease_s * 2 / 3:
                    self._renew()
                if self._clock() - checked >= self.abort_every_s:
                    checked = self._clock()
                    if self.abort_check(self.lease):
                        self.abort_requested = True
            except Exception:  # S3 unreachable for a moment: `valid()` runs out if it lasts
                continue
