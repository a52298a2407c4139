"""Function code for the local environment: the source zip and the store the edge runs from.

moto keeps a function's configuration but not its code in a runnable form, so every zip
the local stack publishes is also kept here, by its sha256; the edge finds a version's
code through the CodeSha256 that Lambda reports for it.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

from orchestrator.artifacts import sha256_file, zip_tree


def code_store(state_dir: Path) -> Path:
    """Where each published version's zip is kept, by hex sha256."""
    return state_dir / "code"


def hex_of(code_sha256_b64: str) -> str:
    """Lambda reports CodeSha256 as base64; the store is keyed by hex."""
    return base64.b64decode(code_sha256_b64).hex()


def source_zip(function_dir: Path, state_dir: Path) -> Path:
    """The local environment's package, in the store: the function's own modules, zipped
    reproducibly. Dependencies come from the host's environment (the edge runs the code
    with them) and sample data is not code, so the zip changes exactly when the code does.
    Built in a directory of its own, so commands packaging at once cannot mix their files."""
    import tempfile

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
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_name(f"{kept.name}.{os.getpid()}.partial")
        shutil.copyfile(package, partial)
        partial.replace(kept)  # the edge never sees half a zip
    return kept, sha
