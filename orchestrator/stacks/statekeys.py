"""The keys Pulumi's self-managed (DIY) backend reads and writes for one stack.

One table, read by the IAM policy generator (orchestrator/project/iam.py: the state statements of
the deploy and preview roles) and checked by tests/test_state_backend.py against what the
real engine does on a fresh backend: the keys it leaves, and (on an emulated S3 backend) every
request it sends. Patterns are relative to the backend's prefix (`s3://BUCKET/PREFIX`) and use
IAM's `*` wildcard (which matches across `/`).

Measured with Pulumi v3.260.0 (project-scoped layout, `meta.yaml` version 1):
- every run opens the backend: GET `meta.yaml`, LIST `stacks/`, LIST + HEAD + GET the
  checkpoint, GET `<stack>.pulumi-tags` (absent unless someone ran `pulumi stack tag set`);
- the first open of an empty backend also PUTs `meta.yaml`, which is why a preview of a
  stack not deployed yet runs against a temporary backend instead (orchestrator/stacks/engine.py);
- `preview` writes nothing and takes no lock (diy's Preview never calls Lock);
- `stack init` (the first `up`, `bootstrap`), `up`, `refresh` and `destroy` take the lock
  (PUT, HEAD, DELETE under `locks/organization/...`), PUT the checkpoint after a PUT of its
  `.bak`, and (all but init) PUT a history pair and a backup;
- `destroy --remove` (`stack rm`) also DELETEs the checkpoint and the history (HEAD first),
  HEADs the tags file, and PUTs a last backup. Backups are never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StateKeys:
    """What each kind of run touches in the backend, for one project's stack."""

    # Object keys a preview (and every other run) reads: s3:GetObject for both roles.
    read: tuple[str, ...]
    # Object keys `up`, `destroy`, `refresh`, `bootstrap` write or delete (and read: the
    # engine HEADs a lock or history file before it deletes it).
    write: tuple[str, ...]
    # The `s3:prefix` values of the engine's ListObjects calls (s3:ListBucket, StringLike).
    list_prefixes: tuple[str, ...]
    # Keys of `read` that are usually absent. S3 answers a GET of a missing key with 404 only
    # to a caller allowed s3:ListBucket on the bucket, else 403, which the engine takes as a
    # failure ("failed to load stack tags"). AWS does not document whether a ListBucket
    # grant limited by an s3:prefix condition counts there (the GET carries no s3:prefix):
    # not verifiable without AWS, see docs/ci.md.
    absent_reads: tuple[str, ...] = ()


def checkpoint(project: str, stack: str) -> str:
    """The stack's checkpoint: present exactly when the stack exists in the backend (with
    a COMPRESSED suffix when PULUMI_DIY_BACKEND_GZIP or _ZSTD wrote it)."""
    return f".pulumi/stacks/{project}/{stack}.json"


COMPRESSED = ("", ".gz", ".zst")


def legacy_checkpoint(stack: str) -> str:
    """Where a backend in Pulumi's older, project-less layout (no meta.yaml, or
    PULUMI_DIY_BACKEND_LEGACY_LAYOUT) keeps a stack's checkpoint."""
    return f".pulumi/stacks/{stack}.json"


def keys(project: str, stack: str) -> StateKeys:
    meta = ".pulumi/meta.yaml"  # GET by every run; PUT once, by the first open of an empty backend
    saved = checkpoint(
        project, stack
    )  # HEAD + GET by every run; PUT by init/up/refresh/destroy; DELETE by rm
    # `*`: the checkpoint compressed too (.json.gz, .json.zst), and its .bak, PUT before
    # every checkpoint write (init/up/refresh/destroy/rm). A preview reads no .bak; reading
    # it (the previous checkpoint) gives nothing the checkpoint does not.
    saved_all = f"{saved}*"
    tags = f".pulumi/stacks/{project}/{stack}.pulumi-tags"  # GET by every run (404); HEAD + DELETE by rm
    locks = f".pulumi/locks/organization/{project}/{stack}/*.json"  # PUT, HEAD, DELETE: all but preview
    history = f".pulumi/history/{project}/{stack}/*"  # PUT by up/refresh/destroy; HEAD + DELETE by rm
    backups = f".pulumi/backups/{project}/{stack}/*"  # PUT by up/refresh/destroy/rm
    return StateKeys(
        read=(meta, saved_all, tags),
        write=(meta, saved_all, tags, locks, history, backups),
        list_prefixes=(
            ".pulumi/stacks/",  # every run: the project directories (delimiter "/")
            saved,  # every run, before each HEAD of the checkpoint (and edgeship's own check)
            f".pulumi/locks/organization/{project}/{stack}/",  # before and after taking the lock
            f".pulumi/history/{project}/{stack}/",  # rm, and `orchestrator history`
            legacy_checkpoint(stack),  # edgeship's check, when the checkpoint is missing: an older layout?
        ),
        absent_reads=(tags,),
    )


@dataclass(frozen=True)
class S3Backend:
    """Where an `s3://BUCKET/PREFIX?query` backend lives, as the engine reads its URL (the
    query parameters of gocloud's s3blob, in their v1 and v2 spellings)."""

    bucket: str
    prefix: str
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    path_style: bool = False

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative


def s3_backend(url: str) -> S3Backend | None:
    """The S3 location of a backend URL; None for any other backend (file://, Pulumi Cloud)."""
    from urllib.parse import parse_qs, urlsplit

    if not url.startswith("s3://"):
        return None
    parts = urlsplit(url)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}

    def flag(*names: str) -> bool:
        return any(query.get(n, "").lower() in ("true", "1") for n in names)

    endpoint = query.get("endpoint") or None
    if endpoint and "://" not in endpoint:  # as the engine does: the scheme follows disableSSL
        endpoint = ("http://" if flag("disableSSL", "disable_https") else "https://") + endpoint
    return S3Backend(
        bucket=parts.netloc,
        prefix=parts.path.strip("/"),
        endpoint=endpoint,
        region=query.get("region") or None,
        profile=query.get("profile") or None,
        path_style=flag("s3ForcePathStyle", "use_path_style"),
    )
