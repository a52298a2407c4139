"""Old Lambda versions and their code packages, deleted after a promotion ends `promoted`.

Every `up` that changes code, model or config publishes a version, and Lambda keeps every
one (code storage: 75 GB per account and region), each with its package in the models
bucket (`code/<hex sha256>.zip`, kept on delete because older versions name it). After a
completed promotion the newest `function.keep_versions` versions stay, and with them:

- every version an alias routes to: `live` and `candidate`, and the versions a routing
  configuration weights (Lambda refuses to delete those: ResourceConflictException; moto
  deletes them, so the plan must never offer them);
- the promotion record's blue and green: `rollback` puts live back on blue;
- `$LATEST`, which is not a published version and cannot be deleted alone.

Then the code objects whose digest no remaining version (nor `$LATEST`, the current
stack's package) has are deleted. The bucket is versioned: a delete leaves the data as a
noncurrent version, which the bucket's lifecycle rule (storage.noncurrent_days) expires.

    plan(versions, aliases, record, keep) -> Prune(keep, delete)      pure
    orphans(keys, retained_sha256)        -> code objects to delete   pure
    prune(lam, s3, function, bucket, record, keep) -> Pruned         the adapter

Pruning runs while the promotion's lease is held, so no `up` of this environment runs
meanwhile (`up` refuses while a promotion holds the lease, and the promotion's own publish
held the stack's lock): a package uploaded by an `up` not yet published cannot be taken
for an orphan.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.programs.lifecycle import CODE_PREFIX
from orchestrator.release.machine import PromotionRecord

LATEST = "$LATEST"
_CODE_KEY = re.compile(r"code/([0-9a-f]{64})\.zip")


@dataclass(frozen=True)
class AliasView:
    """An alias as pruning needs it: its version and the versions its routing weights."""

    name: str
    version: str
    weights: Mapping[str, float] = field(default_factory=dict)

    @property
    def targets(self) -> set[str]:
        return {self.version, *self.weights}


@dataclass(frozen=True)
class Prune:
    """The published versions to keep and to delete, oldest first."""

    keep: tuple[str, ...]
    delete: tuple[str, ...]


def _published(version: str) -> bool:
    return version.isdigit()  # `$LATEST` (and anything else unnumbered) is never a candidate


def plan(
    versions: Iterable[str], aliases: Iterable[AliasView], record: PromotionRecord | None, keep: int
) -> Prune:
    """Which published versions stay: the newest `keep`, every alias target and the record's
    blue and green; the others go. Versions compare as numbers ("10" is newer than "9")."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    published = sorted({v for v in versions if _published(v)}, key=int)
    protected = {v for alias in aliases for v in alias.targets}
    if record is not None:
        protected |= {record.blue, record.green}
    kept = set(published[-keep:]) | (protected & set(published))
    return Prune(
        keep=tuple(v for v in published if v in kept),
        delete=tuple(v for v in published if v not in kept),
    )


def hex_of(code_sha256: str) -> str:
    """Lambda's CodeSha256 (base64 of the zip's sha256) as the hex the bucket's keys use."""
    return base64.b64decode(code_sha256).hex()


def orphans(keys: Iterable[str], retained_sha256: Iterable[str]) -> list[str]:
    """The `code/<hex>.zip` keys whose digest is none of `retained_sha256` (Lambda's base64
    CodeSha256 of each version still there, `$LATEST` included). Other keys are not ours."""
    retained = {hex_of(sha) for sha in retained_sha256}
    out = []
    for key in keys:
        found = _CODE_KEY.fullmatch(key)
        if found and found.group(1) not in retained:
            out.append(key)
    return sorted(out)


@dataclass
class Pruned:
    """What pruning did (report.json's `pruned`), and what it could not do."""

    kept: list[str] = field(default_factory=list)
    deleted_versions: list[str] = field(default_factory=list)
    deleted_code: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kept": self.kept,
            "deleted_versions": self.deleted_versions,
            "deleted_code": self.deleted_code,
            "problems": self.problems,
        }

    def summary(self) -> str:
        """One line for the promotion's output."""
        if not self.deleted_versions and not self.deleted_code:
            text = f"pruned nothing: versions {_listing(self.kept)} kept"
        else:
            text = (
                f"pruned {len(self.deleted_versions)} old version(s) ({_listing(self.deleted_versions)}) "
                f"and {len(self.deleted_code)} code package(s); kept {_listing(self.kept)}"
            )
        return text + (f"; {len(self.problems)} problem(s)" if self.problems else "")


def _listing(versions: list[str]) -> str:
    return ", ".join(f"v{v}" for v in versions) or "none"


def read_versions(lam: Any, function: str) -> dict[str, str]:
    """Every version of the function (`$LATEST` included) -> its CodeSha256, all pages."""
    pages = lam.get_paginator("list_versions_by_function").paginate(FunctionName=function)
    return {str(v["Version"]): str(v["CodeSha256"]) for page in pages for v in page["Versions"]}


def read_aliases(lam: Any, function: str) -> list[AliasView]:
    """Every alias of the function, with its routing weights, all pages."""
    pages = lam.get_paginator("list_aliases").paginate(FunctionName=function)
    return [
        AliasView(
            str(a["Name"]),
            str(a["FunctionVersion"]),
            {
                str(v): float(w)
                for v, w in ((a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items()
            },
        )
        for page in pages
        for a in page["Aliases"]
    ]


def prune(lam: Any, s3: Any, function: str, bucket: str, record: PromotionRecord | None, keep: int) -> Pruned:
    """Delete the versions `plan` lets go, then the code packages no remaining version runs.

    A version Lambda refuses to delete (an alias moved to it meanwhile) is a problem named
    in the result, not an error: its package stays, as the code GC reads the versions back.
    """
    decided = plan(read_versions(lam, function), read_aliases(lam, function), record, keep)
    done = Pruned(kept=list(decided.keep))
    for version in decided.delete:
        try:
            lam.delete_function(FunctionName=function, Qualifier=version)
        except lam.exceptions.ClientError as exc:
            done.problems.append(f"could not delete v{version}: {_error(exc)}")
        else:
            done.deleted_versions.append(version)
    # What remains, read back: a version that could not go keeps its package.
    remaining = read_versions(lam, function)
    if LATEST not in remaining:  # never: Lambda always lists it; without it nothing is known
        done.problems.append(f"{function} lists no $LATEST: its code packages were left alone")
        return done
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=CODE_PREFIX)
    keys = [str(o["Key"]) for page in pages for o in page.get("Contents", ())]
    for key in orphans(keys, remaining.values()):
        try:
            s3.delete_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError as exc:
            done.problems.append(f"could not delete s3://{bucket}/{key}: {_error(exc)}")
        else:
            done.deleted_code.append(key)
    return done


def _error(exc: Exception) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', exc)}"
