"""Model artifacts and the Lambda zip: built reproducibly, identified by sha256.

Same inputs give the same bytes: fixed timestamps, sorted entries, fixed permissions,
no gzip name or mtime. That makes the sha256 a real identity for a model or a build,
so the model object key and the "is this version already deployed" check can use it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.base.errors import ConfigError

# 1980-01-01, the earliest time a zip entry can hold.
FIXED_MTIME = 315532800
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


@dataclass(frozen=True)
class Artifact:
    """A built file and its identity."""

    path: Path
    sha256: str
    size: int


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_model_archive(onnx_path: Path, metadata: dict[str, object], out: Path) -> Artifact:
    """model.tar.gz = model.onnx + metadata.json, byte-for-byte reproducible."""
    members = {
        "metadata.json": json.dumps(metadata, indent=2, sort_keys=True).encode() + b"\n",
        "model.onnx": onnx_path.read_bytes(),
    }
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(members[name]), FIXED_MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(members[name]))
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        out.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(tar_bytes.getvalue())
    return Artifact(out, sha256_file(out), out.stat().st_size)


def model_artifact(path: Path) -> Artifact:
    """The configured model archive, checked to exist."""
    if not path.is_file():
        raise ConfigError(
            f"model artifact {path} not found",
            fix="set project.model in edgeship.toml, or run `python scripts/train_sample_model.py`",
        )
    return Artifact(path, sha256_file(path), path.stat().st_size)


@dataclass(frozen=True)
class LambdaPackage:
    """The function zip and how close it is to Lambda's size limit."""

    artifact: Artifact
    unzipped_size: int
    files: int
    bytecode: bool = False  # carries precompiled bytecode for its runtime

    @property
    def limit_ratio(self) -> float:
        """Share of Lambda's 250 MB unzipped limit used."""
        return self.unzipped_size / LAMBDA_UNZIPPED_LIMIT


def zip_tree(sources: list[tuple[Path, str]], out: Path, *, bytecode: bool = False) -> LambdaPackage:
    """Zip (directory, prefix-in-zip) pairs reproducibly; bytecode only when `bytecode` says
    the tree's was compiled for the package (anything else there is a stray local cache)."""
    entries: dict[str, Path] = {}
    for directory, prefix in sources:
        for file in directory.rglob("*"):
            stray = "__pycache__" in file.parts or file.suffix in (".pyc", ".pyo")
            if file.is_dir() or (stray and not bytecode):
                continue
            arcname = f"{prefix}{file.relative_to(directory).as_posix()}"
            entries[arcname] = file
    out.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for arcname in sorted(entries):
            data = entries[arcname].read_bytes()
            info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
            executable = entries[arcname].stat().st_mode & 0o111
            info.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compresslevel=9)
            unzipped += len(data)
    return LambdaPackage(
        Artifact(out, sha256_file(out), out.stat().st_size), unzipped, len(entries), bytecode
    )


def model_example(path: Path) -> tuple[float, ...]:
    """The example input row a model archive's metadata.json declares (empty if none)."""
    import json
    import tarfile

    with tarfile.open(path, "r:gz") as tar:
        member = tar.extractfile("metadata.json")
        metadata = json.load(member) if member else {}
    return tuple(float(v) for v in metadata.get("input", {}).get("example", ()))
