"""The Lambda zip: right platform wheels, reproducible bytes, and it actually serves."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orchestrator.build.artifacts import sha256_file
from orchestrator.build.packaging import (
    HOST_ARCH,
    PackageSpec,
    PackagingError,
    build,
    runtime_interpreter,
    smoke_import,
)

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".edgeship" / "cache" / "pip"
MODEL = REPO / "programs" / "function" / "sample" / "model.tar.gz"


def test_arm64_package_is_reproducible_with_its_bytecode_and_has_lambda_wheels(tmp_path: Path) -> None:
    spec = PackageSpec(runtime="python3.12", architecture="arm64")
    first = build(spec, tmp_path / "a.zip", CACHE)
    second = build(spec, tmp_path / "b.zip", CACHE)
    assert first.bytecode and second.bytecode  # compiled by python3.12 (pyenv installs it)
    assert first.artifact.sha256 == second.artifact.sha256
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    names = zipfile.ZipFile(tmp_path / "a.zip").namelist()
    assert {
        "handler.py",
        "__pycache__/handler.cpython-312.pyc",
        "numpy/__pycache__/__init__.cpython-312.pyc",
    } <= set(names)
    native = [n for n in names if n.endswith(".so") and "onnxruntime_pybind11_state" in n]
    assert native and all("cpython-312-aarch64-linux-gnu" in n for n in native), native
    pruned = ("onnxruntime/transformers/", "onnxruntime/capi/libonnxruntime.so", "numpy/_core/include/")
    assert not [n for n in names if n.startswith(pruned) or "/tests/" in n or n.endswith(".pyi")]
    # only bytecode for the runtime, compiled for Lambda's /var/task (tracebacks name real paths)
    pycs = [n for n in names if n.endswith(".pyc")]
    assert pycs and all(n.endswith(".cpython-312.pyc") for n in pycs)
    assert b"/var/task/handler.py" in zipfile.ZipFile(tmp_path / "a.zip").read(
        "__pycache__/handler.cpython-312.pyc"
    )
    assert 0 < first.limit_ratio < 1


def test_host_package_serves_a_prediction_in_isolation(tmp_path: Path) -> None:
    # Build for this machine's platform and run the handler from the unpacked zip alone.
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    package = build(PackageSpec(runtime=runtime, architecture=arch), tmp_path / "host.zip", CACHE)
    root = tmp_path / "unpacked"
    zipfile.ZipFile(package.artifact.path).extractall(root)
    # The shipped bytecode is what runs (unchecked-hash: the source is not even read): with
    # the sources of the handler and ONNX Runtime's package replaced, the import still works.
    assert package.bytecode
    for source in (root / "handler.py", root / "onnxruntime" / "__init__.py"):
        source.write_text("raise SystemExit('compiled from source: the shipped bytecode was not used')\n")
    script = f"""
import sys, os, json
sys.path = [{str(root)!r}] + [p for p in sys.path if 'site-packages' not in p and p]
os.environ['MODEL_URI'] = {MODEL.as_uri()!r}
os.environ['MODEL_SHA256'] = {sha256_file(MODEL)!r}
import handler
ev = {{'requestContext': {{'http': {{'method': 'POST', 'path': '/infer'}}}}, 'body': json.dumps({{'inputs': [5.1, 3.5, 1.4, 0.2]}})}}
print(json.dumps(handler.handler(ev, None)))
"""
    # -B: no bytecode written, as on Lambda's read-only /var/task
    out = subprocess.run([sys.executable, "-B", "-S", "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    response = json.loads(out.stdout)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["predictions"][0]["label"] == "setosa"
    # what `orchestrator package` runs after a build: the import test, with the runtime's interpreter
    assert smoke_import(package.artifact.path, runtime, arch).startswith(
        f"import-tested with {runtime} on {arch}"
    )


def test_a_package_that_does_not_import_fails_the_smoke_test(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as z:
        z.writestr("numpy/__init__.py", "import os; os.abort()  # as onnxruntime has on Lambda arm64\n")
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    with pytest.raises(PackagingError, match="does not import"):
        smoke_import(broken, runtime, arch)
    other = "arm64" if arch == "x86_64" else "x86_64"
    assert smoke_import(broken, runtime, other).startswith(
        f"not import-tested: this machine is {platform.machine()}"
    )
    assert smoke_import(broken, "python3.99", arch) == (
        "not import-tested: no working python3.99 interpreter (on PATH or installed by pyenv)"
    )


def test_an_interpreter_on_path_that_does_not_run_is_not_the_runtimes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what a pyenv shim of an inactive version does: it is on PATH and refuses to run
    shim = tmp_path / "python3.98"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.98: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    assert runtime_interpreter("python3.98") is None
    mine = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = runtime_interpreter(mine)
    assert found is not None
    reported = subprocess.run(
        [found, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    )
    assert reported.stdout.strip() == str(sys.version_info[:2])


def test_the_default_runtimes_package_imports_with_that_runtime(tmp_path: Path) -> None:
    # `orchestrator package` for an environment with no overrides: python3.12 on x86_64
    spec = PackageSpec()
    assert spec.architecture == HOST_ARCH, (
        f"this machine is {platform.machine()}: the default zip is {spec.architecture}"
    )
    assert runtime_interpreter(spec.runtime) is not None, (
        f"no working {spec.runtime} here (pyenv installs one)"
    )
    package = build(spec, tmp_path / "default.zip", CACHE)
    assert smoke_import(package.artifact.path, spec.runtime, spec.architecture).startswith(
        f"import-tested with {spec.runtime} on {spec.architecture}: onnxruntime "
    )
