"""The model bucket's lifecycle rules: one list, written for both programs.

The bucket is versioned, so every overwrite or delete leaves the old object behind as a
noncurrent version: a promotion rewrites its record at each step and renews its lease
under `promotions/`, and the code packages of pruned Lambda versions are deleted under
`code/`. Without an expiry those versions pile up forever. Models (`models/`) are not
listed: their keys are content hashes, never overwritten, and older ones are what a
rollback loads. Incomplete multipart uploads, anywhere in the bucket, are aborted.

The serving program passes `pulumi_rules` to `aws.s3.BucketLifecycleConfiguration`
(logical name `models-lifecycle`); the local program's Bucket provider passes `s3_rules`
to the emulator's PutBucketLifecycleConfiguration, and tests/test_local_hygiene.py reads
them back from the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# `[defaults.storage] noncurrent_days` (stack config `edgeship:noncurrentDays`).
DEFAULT_NONCURRENT_DAYS = 7
# An upload that never completed costs storage and shows in no listing: abort it soon.
ABORT_MULTIPART_DAYS = 1
# Where objects are overwritten or deleted (see the module's docstring), with the rule's id.
# The function packages (`code/<sha256 hex>.zip`, serving.py; pruned by orchestrator/release/prune.py).
CODE_PREFIX = "code/"
NONCURRENT = (("expire-noncurrent-promotions", "promotions/"), ("expire-noncurrent-code", CODE_PREFIX))
ABORT_ID = "abort-incomplete-uploads"


@dataclass(frozen=True)
class Rule:
    """One rule, on keys beginning with `prefix` ("" = the whole bucket): noncurrent
    versions expire `noncurrent_days` after they are superseded, incomplete multipart
    uploads are aborted `abort_multipart_days` after they began (None: no such action)."""

    id: str
    prefix: str
    noncurrent_days: int | None = None
    abort_multipart_days: int | None = None

    def s3(self) -> dict[str, Any]:
        """As S3's API (boto3) takes and returns it."""
        rule: dict[str, Any] = {
            "ID": self.id,
            "Status": "Enabled",
            "Filter": {"Prefix": self.prefix} if self.prefix else {},
        }
        if self.noncurrent_days is not None:
            rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": self.noncurrent_days}
        if self.abort_multipart_days is not None:
            rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": self.abort_multipart_days}
        return rule

    def pulumi(self) -> dict[str, Any]:
        """As pulumi-aws's `BucketLifecycleConfigurationRuleArgsDict`."""
        rule: dict[str, Any] = {
            "id": self.id,
            "status": "Enabled",
            "filter": {"prefix": self.prefix} if self.prefix else {},
        }
        if self.noncurrent_days is not None:
            rule["noncurrent_version_expiration"] = {"noncurrent_days": self.noncurrent_days}
        if self.abort_multipart_days is not None:
            rule["abort_incomplete_multipart_upload"] = {"days_after_initiation": self.abort_multipart_days}
        return rule


def rules(noncurrent_days: int = DEFAULT_NONCURRENT_DAYS) -> list[Rule]:
    """The bucket's rules; S3 refuses a NoncurrentDays below 1, and so does this."""
    if noncurrent_days < 1:
        raise ValueError(
            f"noncurrent_days must be at least 1 (S3 expires after whole days), not {noncurrent_days}"
        )
    expiring = [Rule(rule_id, prefix, noncurrent_days=noncurrent_days) for rule_id, prefix in NONCURRENT]
    return [*expiring, Rule(ABORT_ID, "", abort_multipart_days=ABORT_MULTIPART_DAYS)]


def s3_rules(noncurrent_days: int = DEFAULT_NONCURRENT_DAYS) -> list[dict[str, Any]]:
    return [rule.s3() for rule in rules(noncurrent_days)]


def pulumi_rules(noncurrent_days: int = DEFAULT_NONCURRENT_DAYS) -> list[dict[str, Any]]:
    return [rule.pulumi() for rule in rules(noncurrent_days)]
