"""Builds the Lambda zip: handler code plus pinned wheels for the Lambda platform.

Wheels are fetched for the configured runtime and architecture (manylinux, cp3XX),
never the build machine's, then pruned of what inference never imports (tests, ONNX
Runtime's offline tools, headers, type stubs), compiled to bytecode for the runtime, and
zipped reproducibly: same inputs, same sha256.

Why ship bytecode: Lambda unpacks the zip on a read-only filesystem, so without it every
cold start compiles every module it imports from source, and nothing is ever cached. The
bytecode is `unchecked-hash` (valid without comparing timestamps, which a zip's two-second
clock would break) and its file names say /var/task, where Lambda unpacks the code.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.base import paths
from orchestrator.base.errors import EdgeshipError
from orchestrator.build.artifacts import LambdaPackage, zip_tree

FUNCTION_DIR = paths.FUNCTION_DIR
CODE_FILES = ("handler.py",)
# Lambda's Python runtimes run on Amazon Linux 2023 (glibc 2.34).
GLIBC_TAGS = ("manylinux_2_34", "manylinux_2_28", "manylinux_2_27", "manylinux_2_17", "manylinux2014")
ARCH_TAGS = {"arm64": "aarch64", "x86_64": "x86_64"}
# Never imported by `import onnxruntime, numpy` and InferenceSession.run; the pruned zip
# is import- and prediction-tested (tests/test_packaging.py).
PRUNE_DIRS = ("tests", "f2py")
PRUNE_PATHS = (
    "bin", "onnxruntime/transformers", "onnxruntime/quantization", "onnxruntime/tools",
    # C headers, static libraries and Cython examples: for building against numpy, not running it
    "numpy/_core/include", "numpy/_core/lib", "numpy/random/_examples", "numpy/_pyinstaller",
)  # fmt: skip
# ONNX Runtime's C API library (a third of the package): the Python binding carries its own
# copy of the runtime and never loads it (it needs only libc, libstdc++ and libgcc).
PRUNE_GLOBS = ("onnxruntime/capi/libonnxruntime.so*",)
PRUNE_SUFFIXES = (".pyi", ".pxd")
LAMBDA_TASK_ROOT = "/var/task"


class PackagingError(EdgeshipError):
    """The function's dependencies could not be fetched for the Lambda platform."""


@dataclass(frozen=True)
class PackageSpec:
    """What to build: for which runtime and architecture, from which code and pins."""

    runtime: str = "python3.12"
    architecture: str = "x86_64"  # the architecture whose package is import-tested (smoke_import)
    function_dir: Path = FUNCTION_DIR
    with_dependencies: bool = True
    # Our pins are complete without their declared extras; baselines resolve normally.
    resolve_dependencies: bool = False
    # Precompiled bytecode for the runtime (needs that Python here; see the module doc).
    bytecode: bool = True
    # The prune lists are checked against our pins only (scipy, say, imports numpy.f2py).
    prune: bool = True

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
            _drop_bytecode(stage)  # never ship bytecode from elsewhere: ours is compiled below
            if spec.prune:
                _prune(stage)
        compiled = spec.bytecode and _compile(spec.runtime, stage)
        return zip_tree([(stage, "")], out, bytecode=compiled)


def _compile(runtime: str, stage: Path) -> bool:
    """Bytecode for every module, by the runtime's own interpreter (a pyc is version-bound);
    False when this machine has none. Deterministic: one process in sorted order (workers
    would see different interned-string states), a fixed hash seed (frozenset constants)."""
    python = runtime_interpreter(runtime)
    if python is None:
        return False
    result = subprocess.run(
        [
            python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
            "-s", str(stage), "-p", LAMBDA_TASK_ROOT, str(stage),
        ],
        capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    if result.returncode != 0:
        raise PackagingError(
            f"could not compile the {runtime} package: {(result.stdout + result.stderr).strip()[-600:]}",
            fix="pin versions in programs/function/requirements.txt whose sources compile with that runtime",
        )
    return True


def _install_wheels(spec: PackageSpec, target: Path, cache: Path) -> None:
    cmd = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        *([] if spec.resolve_dependencies else ["--no-deps"]), "--only-binary=:all:", "--no-compile", "--implementation", "cp",
        "--python-version", spec.python_version, "--target", str(target), "--cache-dir", str(cache),
        "-r", str(spec.function_dir / "requirements.txt"),
    ]  # fmt: skip
    for tag in spec.platforms:
        cmd += ["--platform", tag]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise PackagingError(
            f"could not fetch wheels for {spec.runtime} on {spec.architecture}: {result.stderr.strip()[-600:]}",
            fix="check that PyPI is reachable and that programs/function/requirements.txt pins "
            "versions with manylinux wheels for that runtime and architecture",
        )


def _prune(stage: Path) -> None:
    doomed = [stage / rel for rel in PRUNE_PATHS]
    for pattern in PRUNE_GLOBS:
        for file in stage.glob(pattern):
            file.unlink()
    doomed += [d for d in stage.rglob("*") if d.is_dir() and d.name in PRUNE_DIRS]
    for directory in doomed:
        shutil.rmtree(directory, ignore_errors=True)
    for file in stage.rglob("*"):
        if file.is_file() and file.suffix in PRUNE_SUFFIXES:
            file.unlink()


def _drop_bytecode(stage: Path) -> None:
    for directory in [d for d in stage.rglob("__pycache__") if d.is_dir()]:
        shutil.rmtree(directory)
    for file in [f for f in stage.rglob("*") if f.suffix in (".pyc", ".pyo") and f.is_file()]:
        file.unlink()


# What the handler imports at init; an import that aborts (onnxruntime's arm64 builds have
# done so on Lambda: onnxruntime#10038, #15650) must fail the deploy, not the first request.
SMOKE = (
    "import numpy, onnxruntime, orjson; onnxruntime.get_available_providers(); print(onnxruntime.__version__)"
)
HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())


def runtime_interpreter(runtime: str) -> str | None:
    """A working interpreter of the runtime's Python version ('python3.12' -> 3.12): the one
    on PATH, else one pyenv installed. A pyenv shim is on PATH for every installed version
    but runs only the active ones, so each candidate must answer with the right version."""
    version = runtime.removeprefix("python")
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    installed = sorted(pyenv.glob(f"versions/{version}.*/bin/{runtime}"), reverse=True)
    for candidate in [shutil.which(runtime), *map(str, installed)]:
        if candidate and _reports(candidate, version):
            return candidate
    return None


def _reports(python: str, version: str) -> bool:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def smoke_import(package: Path, runtime: str, architecture: str) -> str:
    """Import the zip's dependencies as Lambda would, from the unpacked zip alone, with the
    runtime's interpreter. Only possible where this machine runs that architecture and has
    that Python; returns what was done (or why not), raises PackagingError on a failure."""
    if architecture != HOST_ARCH:
        return f"not import-tested: this machine is {platform.machine()}, the package is {architecture}"
    python = runtime_interpreter(runtime)  # e.g. python3.12
    if python is None:
        return f"not import-tested: no working {runtime} interpreter (on PATH or installed by pyenv)"
    with tempfile.TemporaryDirectory(prefix="edgeship-smoke-") as tmp:
        zipfile.ZipFile(package).extractall(tmp)
        script = f"import sys; sys.path.insert(0, {tmp!r}); {SMOKE}"
        # -I -S: no user site, no site-packages: what the zip carries, nothing else
        result = subprocess.run(
            [python, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=120
        )
    if result.returncode != 0:
        raise PackagingError(
            f"the {runtime}/{architecture} package does not import (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-600:]}",
            fix="pin versions in programs/function/requirements.txt that import on that platform",
        )
    return f"import-tested with {runtime} on {architecture}: onnxruntime {result.stdout.strip()}"


def build_for_environment(
    root: Path,
    runtime: str,
    architecture: str,
    function_dir: Path = FUNCTION_DIR,
    pip_cache: Path | None = None,
) -> LambdaPackage:
    """The zip `up` deploys for an environment, in .edgeship/build/; wheels are cached in
    `pip_cache` (default: the project's .edgeship/cache/pip)."""
    spec = PackageSpec(function_dir=function_dir, runtime=runtime, architecture=architecture)
    out = root / ".edgeship" / "build" / f"function-{runtime}-{architecture}.zip"
    return build(spec, out, pip_cache or root / ".edgeship" / "cache" / "pip")
