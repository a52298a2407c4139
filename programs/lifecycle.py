"""The model bucket's lifecycle rules: one list, written for both programs.

The bucket is versioned, so every overwrite leaves the old object behind as a noncurrent
version: each promotion step rewrites its record and lease under `promotions/`, and code
objects under `code/` are replaced by later builds. Without an expiry those versions pile
up forever. Models (`models/`) are not listed: their keys are content hashes, never
overwritten, and older ones are what a rollback loads.

The serving program passes `pulumi_rules` to `aws.s3.BucketLifecycleConfiguration`
(logical name `models-lifecycle`); the local program's Bucket provider passes `s3_rules`
to the emulator's PutBucketLifecycleConfiguration. A test compares the emulator's answer
with `s3_rules`, so both programs declare the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# `[defaults.storage] noncurrent_days` (stack config `edgeship:noncurrentDays`).
DEFAULT_NONCURRENT_DAYS = 7
# An upload that never completed costs storage and shows in no listing: abort it soon.
ABORT_MULTIPART_DAYS = 1
# Where objects are overwritten (see the module's docstring).
PREFIXES = ("promotions/", "code/")


@dataclass(frozen=True)
class Rule:
    """One rule: noncurrent versions under `prefix` expire after `noncurrent_days`;
    incomplete multipart uploads there are aborted after `abort_multipart_days`."""

    prefix: str
    noncurrent_days: int
    abort_multipart_days: int = ABORT_MULTIPART_DAYS

    @property
    def id(self) -> str:
        return f"{self.prefix.strip('/')}-noncurrent"

    def s3(self) -> dict[str, Any]:
        """As S3's API (boto3) takes and returns it."""
        return {
            "ID": self.id,
            "Status": "Enabled",
            "Filter": {"Prefix": self.prefix},
            "NoncurrentVersionExpiration": {"NoncurrentDays": self.noncurrent_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": self.abort_multipart_days},
        }

    def pulumi(self) -> dict[str, Any]:
        """As pulumi-aws's `BucketLifecycleConfigurationRuleArgsDict`."""
        return {
            "id": self.id,
            "status": "Enabled",
            "filter": {"prefix": self.prefix},
            "noncurrent_version_expiration": {"noncurrent_days": self.noncurrent_days},
            "abort_incomplete_multipart_upload": {"days_after_initiation": self.abort_multipart_days},
        }


def rules(noncurrent_days: int = DEFAULT_NONCURRENT_DAYS) -> list[Rule]:
    """The bucket's rules; S3 refuses a NoncurrentDays below 1, and so does this."""
    if noncurrent_days < 1:
        raise ValueError(f"noncurrent_days must be at least 1 (S3's minimum), not {noncurrent_days}")
    return [Rule(prefix, noncurrent_days) for prefix in PREFIXES]


def s3_rules(noncurrent_days: int = DEFAULT_NONCURRENT_DAYS) -> list[dict[str, Any]]:
    return [rule.s3() for rule in rules(noncurrent_days)]


def pulumi_rules(noncurrent_days: int = DEFAULT_NONCURRENT_DAYS) -> list[dict[str, Any]]:
    return [rule.pulumi() for rule in rules(noncurrent_days)]
