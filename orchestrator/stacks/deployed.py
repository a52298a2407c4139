"""What each published version serves: its model, read from what the version was published with.

A published Lambda version freezes its configuration, and the serving programs give every
version MODEL_URI (s3://bucket/models/<sha256>.tar.gz), MODEL_SHA256 and MODEL_DELIVERY (whether
the sandboxes read it from the version's own package or from S3). The archive under
that key is immutable (keyed by its sha256, kept for rollbacks), so its metadata.json is
the true name and version of the model that version loads, for blue as for green, whatever
edgeship.toml says today.

    version -> GetFunctionConfiguration(Qualifier=version) -> MODEL_URI, MODEL_SHA256
            -> GetObject(models/<sha>.tar.gz) -> metadata.json -> ModelInfo
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ModelInfo:
    """The model a published version serves (what its metadata.json declares)."""

    name: str | None
    version: str | None
    sha256: str | None
    uri: str | None = None
    example: tuple[float, ...] = ()  # one input row (the gates' payload; `invoke`'s default)
    features: tuple[str, ...] = field(default_factory=tuple)
    error: str | None = None  # why the model could not be read (the rest may still be known)
    # How it reaches a sandbox: "package" (in the version's zip, no S3 read at init) or
    # "s3" (fetched at init); a version published before the choice existed is "s3".
    delivery: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["example"], data["features"] = list(self.example), list(self.features)
        return data

    def describe(self) -> str:
        """One line: `iris 1.0 (sha256 0123456789ab)`, or what is unknown."""
        if self.name is None:
            return f"model unknown ({self.error})" if self.error else "model unknown"
        sha = f" (sha256 {self.sha256[:12]})" if self.sha256 else ""
        return f"{self.name} {self.version}{sha}"


def model_location(variables: dict[str, str]) -> tuple[str, str] | None:
    """(bucket, key) of the model a version's environment variables name, when it is in S3."""
    uri = variables.get("MODEL_URI") or ""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        return None
    return parts.netloc, parts.path.lstrip("/")


def from_metadata(metadata: dict[str, Any], sha256: str | None, uri: str | None) -> ModelInfo:
    """ModelInfo from a metadata.json (tolerant: an older archive may lack the example)."""
    declared = metadata.get("input") or {}
    return ModelInfo(
        name=str(metadata["name"]) if "name" in metadata else None,
        version=str(metadata["version"]) if "version" in metadata else None,
        sha256=sha256,
        uri=uri,
        example=tuple(float(v) for v in declared.get("example") or ()),
        features=tuple(str(f) for f in declared.get("features") or ()),
    )


def metadata_of(stream: Any) -> dict[str, Any]:
    """metadata.json of a model archive (gzipped tar), read as a stream: archives list it
    before model.onnx (artifacts.build_model_archive sorts them), so a large model is not
    downloaded to read its name."""
    with tarfile.open(fileobj=stream, mode="r|gz") as tar:
        for member in tar:
            if member.name == "metadata.json":
                extracted = tar.extractfile(member)
                if extracted is not None:
                    return dict(json.load(extracted))
    raise KeyError("metadata.json")


def model_of(lam: Any, s3: Any, function: str, version: str) -> ModelInfo:
    """The model `version` of `function` was published with. Never raises for a missing or
    unreadable archive: `status` must still show the versions (the reason is in `error`)."""
    return read_version(lam, s3, function, version)[0]


def read_version(lam: Any, s3: Any, function: str, version: str) -> tuple[ModelInfo, dict[str, Any] | None]:
    """model_of, and the whole metadata.json (None when unreadable): the contract live
    serves, which a promotion compares green's with (contract.py)."""
    try:
        config = lam.get_function_configuration(FunctionName=function, Qualifier=version)
    except lam.exceptions.ClientError as exc:  # e.g. a role without lambda:GetFunctionConfiguration
        return ModelInfo(None, None, None, None, error=f"{function}:{version}: {exc}"), None
    variables = dict((config.get("Environment") or {}).get("Variables") or {})
    sha, uri = variables.get("MODEL_SHA256"), variables.get("MODEL_URI")
    delivery = delivery_of(variables)
    where = model_location(variables)
    if where is None:
        return ModelInfo(
            None, None, sha, uri, error="the version names no s3:// MODEL_URI", delivery=delivery
        ), None
    try:
        body = s3.get_object(Bucket=where[0], Key=where[1])["Body"]
        try:
            metadata = metadata_of(body)
            return replace(from_metadata(metadata, sha, uri), delivery=delivery), metadata
        finally:
            body.close()  # the rest of the archive is never read
    except (s3.exceptions.ClientError, tarfile.TarError, KeyError, ValueError, OSError) as exc:
        return ModelInfo(None, None, sha, uri, error=f"{uri}: {exc}", delivery=delivery), None


def delivery_of(variables: dict[str, str]) -> str:
    """How a version's sandboxes get its model (MODEL_DELIVERY; absent: the S3 path, as
    every version published before programs/modelship.py)."""
    return variables.get("MODEL_DELIVERY") or "s3"


def routed_versions(live: str, weights: dict[str, float], candidate: str | None) -> list[str]:
    """The versions live or candidate route to, each once, in that order."""
    seen: list[str] = []
    for v in (live, *weights, candidate):
        if v is not None and v not in seen:
            seen.append(v)
    return seen
