"""Train the sample model shipped in programs/function/sample/model.tar.gz.

Logistic regression on scikit-learn's bundled iris data set, exported to ONNX with
probabilities as a plain tensor (no ZipMap: dicts are slow to build and to serialize).
Needs the bench extra: `pip install -e '.[bench]'`.

    python scripts/train_sample_model.py [--version 2] [--out PATH]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from orchestrator.build.artifacts import build_model_archive

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="1")
    parser.add_argument("--out", type=Path, default=Path("programs/function/sample/model.tar.gz"))
    args = parser.parse_args()

    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    x = iris.data.astype("float32")
    model = LogisticRegression(max_iter=500).fit(x, iris.target)
    onnx_model = to_onnx(model, x[:1], options={id(model): {"zipmap": False}}, target_opset=17)
    # skl2onnx stamps its own version into the model; keep the bytes stable across runs.
    onnx_model.producer_version = ""
    metadata = {
        "name": "iris-classifier",
        "version": args.version,
        "framework": "onnxruntime",
        "input": {
            "name": onnx_model.graph.input[0].name,
            "dtype": "float32",
            "features": FEATURES,
            "example": [5.1, 3.5, 1.4, 0.2],
        },
        "output": {
            "labels": [str(n) for n in iris.target_names],
            "probabilities": onnx_model.graph.output[1].name,
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        onnx_path.write_bytes(onnx_model.SerializeToString())
        artifact = build_model_archive(onnx_path, metadata, args.out)
    print(f"{artifact.path}: {artifact.size} bytes, sha256 {artifact.sha256}")


if __name__ == "__main__":
    main()
