"""Function code for the local environment: the package, the store the edge runs from,
and each version's code unpacked as Lambda unpacks it.

The local environment deploys the zip `package` builds for AWS (platform wheels, pruned,
bytecode by the runtime's interpreter), so a missing dependency or an over-eager prune
fails here first. Building it takes seconds, so it is kept in the per-user cache under a
key of everything that goes into it (`cached_package`); a test suite that starts many
stacks builds it once.

moto keeps a function's configuration but not its code in a runnable form, so every zip
the local stack publishes is also kept here, by its sha256; the edge finds a version's
code through the CodeSha256 that Lambda reports for it, and runs it from a read-only
unpacked tree (`unpacked`), as Lambda runs /var/task.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from orchestrator.build.artifacts import sha256_file, zip_tree


def code_store(state_dir: Path) -> Path:
    """Where each published version's zip is kept, by hex sha256."""
    return state_dir / "code"


def hex_of(code_sha256_b64: str) -> str:
    """Lambda reports CodeSha256 as base64; the store is keyed by hex."""
    return base64.b64decode(code_sha256_b64).hex()


def package_key(function_dir: Path, runtime: str, architecture: str) -> str:
    """What the package's bytes depend on: the function's code and pins, the packaging
    rules (orchestrator/build/packaging.py), the target, and whether this machine has the
    runtime's interpreter (without it the zip carries no bytecode)."""
    from orchestrator.build import packaging

    digest = hashlib.sha256(f"{runtime}/{architecture}\n".encode())
    for name in (*packaging.CODE_FILES, "requirements.txt"):
        digest.update(name.encode() + b"\0" + (function_dir / name).read_bytes() + b"\0")
    digest.update(Path(packaging.__file__).read_bytes())
    digest.update(b"bytecode" if packaging.runtime_interpreter(runtime) else b"source")
    return digest.hexdigest()


def cached_package(
    function_dir: Path, runtime: str, architecture: str, build: Callable[[], Path]
) -> tuple[Path, bool]:
    """The package for these inputs from the per-user cache, built (by `build`) and kept
    there on a miss; (its path, whether it came from the cache)."""
    from orchestrator.local.runtime import user_cache

    key = package_key(function_dir, runtime, architecture)
    kept = user_cache() / "packages" / f"function-{runtime}-{architecture}-{key[:32]}.zip"
    if kept.exists():
        return kept, True
    copy_whole(build(), kept)
    return kept, False


def copy_whole(source: Path, target: Path) -> None:
    """Copy `source` to `target` whole or not at all: into a uniquely named file beside it
    (tempfile: unique across processes and threads alike), then renamed over it, so a
    reader never sees half a zip and two writers never share a partial file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        shutil.copyfile(source, partial)
        partial.chmod(0o644)  # mkstemp's 0600 would be kept by the rename
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def unpacked(state_dir: Path, sha: str) -> Path:
    """The stored zip `sha` unpacked read-only (as Lambda's /var/task), once per sha256.
    Unpacked beside its final place and renamed, so a sandbox never starts on half a tree.
    Root ignores the permission bits: sandboxes also run with `python -B`."""
    target = state_dir / "versions" / sha
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=target.parent))
    with zipfile.ZipFile(code_store(state_dir) / f"{sha}.zip") as archive:
        archive.extractall(staging)
    _read_only(staging)
    try:
        staging.rename(target)
    except OSError:  # another request unpacked it first
        remove_tree(staging)
    return target


def _read_only(tree: Path) -> None:
    for path in sorted(tree.rglob("*"), reverse=True):  # files before their directories
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            path.chmod(0o555)
        elif stat.S_ISREG(mode):
            path.chmod(0o555 if mode & stat.S_IXUSR else 0o444)
    tree.chmod(0o555)


def remove_tree(tree: Path) -> None:
    """Remove a tree that may hold read-only directories (an unpacked version's code)."""

    def writable_then_retry(function: Callable[..., object], path: str, _exc: object) -> None:
        parent = os.path.dirname(path)
        os.chmod(parent, 0o755)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o755)
        function(path)

    if tree.exists():
        shutil.rmtree(tree, onerror=writable_then_retry)


def source_zip(function_dir: Path, state_dir: Path) -> Path:
    """The function's own modules, zipped reproducibly, in the store: no dependencies, no
    bytecode. Never what the local environment deploys (programs/local.py refuses a stack
    without the package `cached_package` keeps); for tests of the edge that bring their own
    handler. Built in a directory of its own, so commands packaging at once cannot mix
    their files."""
    (state_dir / "staging").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=state_dir / "staging") as work:
        source = Path(work) / "src"
        source.mkdir()
        for module in sorted(function_dir.glob("*.py")):
            shutil.copy2(module, source / module.name)
        built = zip_tree([(source, "")], Path(work) / "code.zip").artifact.path
        return store(built, state_dir)[0]


def store(package: Path, state_dir: Path) -> tuple[Path, str]:
    """Keep a zip in the store; (its path there, its hex sha256)."""
    sha = sha256_file(package)
    kept = code_store(state_dir) / f"{sha}.zip"
    if not kept.exists():
        copy_whole(package, kept)  # the edge never sees half a zip
    return kept, sha
