"""How the model reaches a Lambda sandbox: inside the function package, or from S3 at init.

A model that fits rides in the function's zip as `model/model.tar.gz`. The published
version then pins the code *and* the model bytes (Lambda freezes a version's code), its
init reads a local file and imports no AWS SDK (about half of a cold start when the model
came from S3: boto3's import, a client, GetObject), and a rollback's cold sandboxes depend
on nothing but the version. A model too large for Lambda's package limit keeps the S3
path: `MODEL_URI` names `models/<sha256>.tar.gz` and the handler verifies its sha256.

The choice is `choose` (pure); `with_model` writes the package that carries the model.
Both serving programs (programs/serving.py, programs/local.py) set the version's
`MODEL_DELIVERY` environment variable from it, which the handler, `preview` and `status`
read. Why a package and not a layer per model sha: docs/architecture.md ("Facts").
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Delivery = Literal["package", "s3"]
PACKAGE: Delivery = "package"
S3: Delivery = "s3"
# Where the model sits in the package (and so under /var/task): the handler reads it there.
MEMBER = "model/model.tar.gz"
# Lambda's limit on a function's unzipped deployment package (layers included): 250 MB.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# Tests lower the limit to deploy a padded model through S3 without writing 250 MB.
LIMIT_VARIABLE = "EDGESHIP_MODEL_PACKAGE_LIMIT_BYTES"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # a zip's earliest date: the same bytes on every build


@dataclass(frozen=True)
class Choice:
    """Which way the model travels, and why (the sizes it was decided on)."""

    delivery: Delivery
    model_bytes: int
    package_unzipped_bytes: int
    limit_bytes: int

    @property
    def reason(self) -> str:
        total = self.package_unzipped_bytes + self.model_bytes
        verb = "fits" if self.delivery == PACKAGE else "does not fit"
        return (
            f"package {self.package_unzipped_bytes / 1e6:.1f} MB + model {self.model_bytes / 1e6:.1f} MB "
            f"= {total / 1e6:.1f} MB unzipped {verb} in {self.limit_bytes / 1e6:.1f} MB"
        )


def choose(model_bytes: int, package_unzipped_bytes: int, limit_bytes: int = LAMBDA_UNZIPPED_LIMIT) -> Choice:
    """In the package when package and model together stay under the limit, else S3 (Lambda
    refuses an unzipped size equal to its 262,144,000 bytes: strictly under)."""
    fits = package_unzipped_bytes + model_bytes < limit_bytes
    return Choice(PACKAGE if fits else S3, model_bytes, package_unzipped_bytes, limit_bytes)


def limit_from(environ: dict[str, str] | os._Environ[str]) -> int:
    """The limit `choose` applies: Lambda's, unless `EDGESHIP_MODEL_PACKAGE_LIMIT_BYTES` lowers it."""
    raw = environ.get(LIMIT_VARIABLE)
    if not raw:
        return LAMBDA_UNZIPPED_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{LIMIT_VARIABLE}={raw!r} is not a whole number of bytes") from None
    return min(value, LAMBDA_UNZIPPED_LIMIT)


def unzipped_size(package: Path) -> int:
    """What the zip takes once Lambda unpacks it (from its central directory)."""
    with zipfile.ZipFile(package) as archive:
        return sum(info.file_size for info in archive.infolist())


def decide(model: Path, package: Path, environ: dict[str, str] | os._Environ[str] = os.environ) -> Choice:
    """`choose` for these files."""
    return choose(model.stat().st_size, unzipped_size(package), limit_from(environ))


def with_model(
    package: Path, model: Path, package_sha: str, model_sha: str, directory: Path | None = None
) -> Path:
    """The package plus the model as `model/model.tar.gz`, written once in `directory` (beside
    the package by default) under a name of both digests (so the same inputs give the same
    file and bytes: a repeated `up` publishes nothing). Stored, not deflated: the archive is
    gzipped already. A caller that deletes the file once used must pass a directory of its
    own: beside a package cache shared by commands running at once, another command may be
    reading it."""
    import tempfile

    from orchestrator.local.code import copy_whole

    folder = directory or package.parent
    target = folder / f"{package.stem}+model-{package_sha[:16]}-{model_sha[:16]}.zip"
    if target.exists():
        return target
    handle, name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".building")
    os.close(handle)
    staging = Path(name)
    try:
        copy_whole(package, staging)
        info = zipfile.ZipInfo(MEMBER, date_time=_FIXED_TIME)
        info.external_attr = 0o100444 << 16  # a regular file, read-only (as Lambda's /var/task)
        info.compress_type = zipfile.ZIP_STORED
        with zipfile.ZipFile(staging, "a") as archive:
            if MEMBER in archive.namelist():
                raise ValueError(f"{package} already holds {MEMBER}: not a package `up` built")
            archive.writestr(info, model.read_bytes())
        staging.replace(target)  # whole or not at all: a reader never sees half a zip
    finally:
        staging.unlink(missing_ok=True)
    return target
