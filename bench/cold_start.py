"""Cold start as Lambda runs it: from the unpacked zip, read-only, nothing compiled kept.

    python bench/cold_start.py        # needs python3.12 (pyenv installs it; `make install` checks)

Lambda unpacks a function's zip read-only under /var/task, so every module whose bytecode
is not in the zip is compiled from source on every cold start, and nothing is cached for
the next one. `bench/handler.py` times init in interpreters with a warm, writable
`__pycache__`: the flattering way. Here each zip is built by orchestrator/build/packaging.py for
this machine's architecture and Lambda's default runtime (python3.12), unpacked once,
and timed in fresh `python3.12 -B -I -S` processes (no bytecode writes, isolated, no
site-packages: only what the zip carries and the runtime's standard library), importing
the handler, which loads and verifies the model. Contenders, interleaved, median of 9:

- our zip as shipped (precompiled unchecked-hash bytecode);
- our zip without precompiled bytecode (the reference: what we shipped before);
- FastAPI + Mangum + ONNX Runtime, and a scikit-learn pickle handler, both packaged by the
  same packager with precompiled bytecode too, so the ratios compare handlers, not
  packaging (they are not pruned: our prune lists are checked against our pins only).

Processes here run as root, which ignores read-only permission bits: `-B` is what keeps
the unpacked trees free of bytecode, and the bench checks no `.pyc` appeared.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))
from _report import write_section  # noqa: E402  (path set up above)

from orchestrator.build.artifacts import sha256_file  # noqa: E402
from orchestrator.build.packaging import HOST_ARCH, PackageSpec, build, runtime_interpreter  # noqa: E402

RUNTIME = "python3.12"
RUNS = 9
MODEL = REPO / "programs" / "function" / "sample" / "model.tar.gz"
CACHE = REPO / ".edgeship" / "cache" / "pip"
CONTENDERS = {
    "ours": (REPO / "programs" / "function", True),
    "ours-no-bytecode": (REPO / "programs" / "function", False),
    "fastapi": (BENCH / "baselines" / "fastapi_mangum", True),
    "sklearn": (BENCH / "baselines" / "sklearn_pickle", True),
}
TIMED = "import sys, time; t = time.perf_counter(); import handler; print((time.perf_counter() - t) * 1000)"
BUDGET_BYTECODE, BUDGET_FASTAPI, SIZE_BEFORE_MB = 0.7, 0.5, 103.0


def _spec(directory: Path, bytecode: bool, arch: str) -> PackageSpec:
    ours = directory == CONTENDERS["ours"][0]
    # The baselines resolve their own dependencies and are not pruned (our prune lists are
    # checked against our pins only); bytecode is compiled the same way for all.
    return PackageSpec(
        runtime=RUNTIME, architecture=arch, function_dir=directory,
        resolve_dependencies=not ours, bytecode=bytecode, prune=ours,
    )  # fmt: skip


def _pycs(tree: Path) -> int:
    return sum(1 for _ in tree.rglob("*.pyc"))


def _pickle_for(tree: Path, python: str, out: Path) -> None:
    """The sklearn baseline's model, pickled by the scikit-learn its zip carries."""
    script = (
        f"import sys; sys.path.insert(0, {str(tree)!r}); import pickle\n"
        "from sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression\n"
        "x, y = load_iris(return_X_y=True)\n"
        f"open({str(out)!r}, 'wb').write(pickle.dumps(LogisticRegression(max_iter=500).fit(x.astype('float32'), y)))"
    )
    subprocess.run([python, "-B", "-I", "-S", "-c", script], check=True)


def _cold(python: str, tree: Path, env: dict[str, str]) -> float:
    out = subprocess.run(
        [python, "-B", "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(tree)!r}); {TIMED}"],
        env=env, capture_output=True, text=True, cwd=tree,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"{tree.name} failed to start:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    python = runtime_interpreter(RUNTIME)
    if python is None or HOST_ARCH is None:
        raise SystemExit(f"needs a working {RUNTIME} interpreter on a Lambda architecture (x86_64 or arm64)")
    work = Path(tempfile.mkdtemp(prefix="edgeship-cold-"))
    trees, sizes = {}, {}
    for name, (directory, bytecode) in CONTENDERS.items():
        package = build(_spec(directory, bytecode, HOST_ARCH), work / f"{name}.zip", CACHE)
        sizes[name] = package
        tree = work / name
        zipfile.ZipFile(package.artifact.path).extractall(tree)
        trees[name] = tree
    arm64 = build(_spec(CONTENDERS["ours"][0], True, "arm64"), work / "ours-arm64.zip", CACHE)
    pickle_path = work / "model.pkl"
    _pickle_for(trees["sklearn"], python, pickle_path)
    for tree in trees.values():
        subprocess.run(["chmod", "-R", "a-w", str(tree)], check=True)  # as Lambda's /var/task
    pycs_before = {name: _pycs(tree) for name, tree in trees.items()}
    env = {
        "PATH": os.environ.get("PATH", ""),
        "MODEL_URI": MODEL.as_uri(),
        "MODEL_SHA256": sha256_file(MODEL),
        "MODEL_PICKLE": str(pickle_path),
        "MODEL_PICKLE_SHA256": sha256_file(pickle_path),
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
    }
    samples: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(RUNS):  # interleaved: drift in machine load hits every contender alike
        for name, tree in trees.items():
            samples[name].append(_cold(python, tree, env))
    for name, tree in trees.items():
        if _pycs(tree) != pycs_before[name]:
            raise SystemExit(f"{name}: bytecode was written during the runs: the measurement is not cold")
    init = {name: statistics.median(values) for name, values in samples.items()}
    vs_reference = init["ours"] / init["ours-no-bytecode"]
    vs_fastapi = init["ours"] / init["fastapi"]
    arm64_mb = arm64.unzipped_size / 1e6
    checks = {
        f"shipped / no bytecode <= {BUDGET_BYTECODE}": vs_reference <= BUDGET_BYTECODE,
        f"shipped / FastAPI + Mangum <= {BUDGET_FASTAPI}": vs_fastapi <= BUDGET_FASTAPI,
        f"arm64 zip unzipped < {SIZE_BEFORE_MB:g} MB": arm64_mb < SIZE_BEFORE_MB,
    }
    labels = {
        "ours": "our zip as shipped (bytecode)",
        "ours-no-bytecode": "our zip without bytecode (reference)",
        "fastapi": "FastAPI + Mangum + ONNX Runtime",
        "sklearn": "scikit-learn pickle",
    }
    rows = "\n".join(
        f"| {labels[n]} | {init[n]:.0f} ms | {min(samples[n]):.0f}-{max(samples[n]):.0f} ms | "
        f"{init['ours'] / init[n]:.2f}x | {sizes[n].artifact.size / 1e6:.1f} MB | {sizes[n].unzipped_size / 1e6:.1f} MB |"
        for n in trees
    )
    body = f"""## Cold start as Lambda runs it (`bench/cold_start.py`)

Each zip built by `orchestrator package`'s packager for {RUNTIME} on {HOST_ARCH}, unpacked once
read-only, then {RUNS} fresh `{RUNTIME} -B -I -S` processes per contender, interleaved: time to
import the handler, which loads and sha256-verifies the model (median; no bytecode is ever
written, as on Lambda's read-only /var/task). The warm-cache figures are in the handler
section above; these are the ones a first request after a scale-out waits for.

| contender | cold init | range | ours as a ratio | zipped | unzipped |
|---|---:|---:|---:|---:|---:|
{rows}

Our arm64 zip (the architecture the earlier size was measured on): {arm64.artifact.size / 1e6:.1f} MB zipped,
**{arm64_mb:.1f} MB unzipped** with its bytecode, {arm64.limit_ratio:.0%} of Lambda's 250 MB limit; it was
{SIZE_BEFORE_MB:g} MB before the packager dropped ONNX Runtime's C API library (the Python binding
carries its own runtime and never loads it) and numpy's headers, static libraries and examples.

Budgets: {"; ".join(f"{name}: **{'met' if ok else 'MISSED'}**" for name, ok in checks.items())}."""
    write_section("cold_start", body)
    print(body)
    print(json.dumps({"init_ms": init, "samples_ms": samples}), file=sys.stderr)
    subprocess.run(["chmod", "-R", "u+w", str(work)], check=False)
    subprocess.run(["rm", "-rf", str(work)], check=False)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
