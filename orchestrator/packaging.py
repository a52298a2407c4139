"""Builds the Lambda zip: handler code plus pinned wheels for the Lambda platform.

Wheels are fetched for the configured runtime and architecture (manylinux, cp3XX),
never the build machine's, then pruned of what inference never imports (tests, ONNX
Runtime's offline tools) and zipped reproducibly: same inputs, same sha256.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.artifacts import LambdaPackage, zip_tree
from orchestrator.errors import EdgeshipError

FUNCTION_DIR = Path(__file__).resolve().parents[1] / "programs" / "function"
CODE_FILES = ("handler.py",)
# Lambda's Python runtimes run on Amazon Linux 2023 (glibc 2.34).
GLIBC_TAGS = ("manylinux_2_34", "manylinux_2_28", "manylinux_2_27", "manylinux_2_17", "manylinux2014")
ARCH_TAGS = {"arm64": "aarch64", "x86_64": "x86_64"}
# Never imported by `import onnxruntime, numpy` and InferenceSession.run.
PRUNE_DIRS = ("tests", "__pycache__", "f2py")
PRUNE_PATHS = ("bin", "onnxruntime/transformers", "onnxruntime/quantization", "onnxruntime/tools")
PRUNE_SUFFIXES = (".pyc", ".pyi")


class PackagingError(EdgeshipError):
    """The function's dependencies could not be fetched for the Lambda platform."""


@dataclass(frozen=True)
class PackageSpec:
    """What to build: for which runtime and architecture, from which code and pins."""

    runtime: str = "python3.12"
    architecture: str = "arm64"
    function_dir: Path = FUNCTION_DIR
    with_dependencies: bool = True
    # Our pins are complete without their declared extras; baselines resolve normally.
    resolve_dependencies: bool = False

    @property
    def python_version(self) -> str:
        """'python3.12' -> '3.12'."""
        return self.runtime.removeprefix("python")

    @property
    def platforms(self) -> list[str]:
        """pip --platform tags for the Lambda architecture."""
        return [f"{tag}_{ARCH_TAGS[self.architecture]}" for tag in GLIBC_TAGS]


def build(spec: PackageSpec, out: Path, cache: Path) -> LambdaPackage:
    """Build the zip at `out`; wheels are cached under `cache` between builds."""
    with tempfile.TemporaryDirectory(prefix="edgeship-pkg-") as tmp:
        stage = Path(tmp) / "stage"
        stage.mkdir()
        for name in CODE_FILES:
            shutil.copy2(spec.function_dir / name, stage / name)
        if spec.with_dependencies:
            _install_wheels(spec, stage, cache)
            _prune(stage)
        return zip_tree([(stage, "")], out)


def _install_wheels(spec: PackageSpec, target: Path, cache: Path) -> None:
    cmd = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        *([] if spec.resolve_dependencies else ["--no-deps"]), "--only-binary=:all:", "--no-compile", "--implementation", "cp",
        "--python-version", spec.python_version, "--target", str(target), "--cache-dir", str(cache),
        "-r", str(spec.function_dir / "requirements.txt"),
    ]  # fmt: skip
    for platform in spec.platforms:
        cmd += ["--platform", platform]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise PackagingError(
            f"could not fetch wheels for {spec.runtime} on {spec.architecture}: {result.stderr.strip()[-600:]}",
            fix="check that PyPI is reachable and that programs/function/requirements.txt pins "
            "versions with manylinux wheels for that runtime and architecture",
        )


def _prune(stage: Path) -> None:
    doomed = [stage / rel for rel in PRUNE_PATHS]
    doomed += [d for d in stage.rglob("*") if d.is_dir() and d.name in PRUNE_DIRS]
    for directory in doomed:
        shutil.rmtree(directory, ignore_errors=True)
    for file in stage.rglob("*"):
        if file.is_file() and file.suffix in PRUNE_SUFFIXES:
            file.unlink()


def build_for_environment(root: Path, runtime: str, architecture: str) -> LambdaPackage:
    """The zip `up` deploys for an environment, in .edgeship/build/."""
    spec = PackageSpec(runtime=runtime, architecture=architecture)
    out = root / ".edgeship" / "build" / f"function-{runtime}-{architecture}.zip"
    return build(spec, out, root / ".edgeship" / "cache" / "pip")
