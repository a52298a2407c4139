"""The Lambda zip: right platform wheels, reproducible bytes, and it actually serves."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

from orchestrator.artifacts import sha256_file
from orchestrator.packaging import PackageSpec, build

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".edgeship" / "cache" / "pip"
MODEL = REPO / "programs" / "function" / "sample" / "model.tar.gz"


def test_arm64_package_is_reproducible_and_has_lambda_wheels(tmp_path: Path) -> None:
    spec = PackageSpec(runtime="python3.12", architecture="arm64")
    first = build(spec, tmp_path / "a.zip", CACHE)
    second = build(spec, tmp_path / "b.zip", CACHE)
    assert first.artifact.sha256 == second.artifact.sha256
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    names = zipfile.ZipFile(tmp_path / "a.zip").namelist()
    assert "handler.py" in names
    native = [n for n in names if n.endswith(".so") and "onnxruntime_pybind11_state" in n]
    assert native and all("cpython-312-aarch64-linux-gnu" in n for n in native), native
    assert not any("/tests/" in n or n.endswith(".pyc") or "onnxruntime/transformers/" in n for n in names)
    assert 0 < first.limit_ratio < 1


def test_host_package_serves_a_prediction_in_isolation(tmp_path: Path) -> None:
    # Build for this machine's platform and run the handler from the unpacked zip alone.
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    package = build(PackageSpec(runtime=runtime, architecture=arch), tmp_path / "host.zip", CACHE)
    root = tmp_path / "unpacked"
    zipfile.ZipFile(package.artifact.path).extractall(root)
    script = f"""
import sys, os, json
sys.path = [{str(root)!r}] + [p for p in sys.path if 'site-packages' not in p and p]
os.environ['MODEL_URI'] = {MODEL.as_uri()!r}
os.environ['MODEL_SHA256'] = {sha256_file(MODEL)!r}
import handler
ev = {{'requestContext': {{'http': {{'method': 'POST', 'path': '/infer'}}}}, 'body': json.dumps({{'inputs': [5.1, 3.5, 1.4, 0.2]}})}}
print(json.dumps(handler.handler(ev, None)))
"""
    out = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, check=True)
    response = json.loads(out.stdout)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["predictions"][0]["label"] == "setosa"
