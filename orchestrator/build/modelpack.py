"""`orchestrator model pack`: an ONNX model and what it means, as the archive edgeship ships.

The archive is model.onnx + metadata.json (built reproducibly by artifacts.py). The
metadata is what the function and the gate read: the input's name and feature names, an
example row (the gate's load payload), and either class labels (a classifier: the graph's
outputs are a label and the probabilities) or none (a regressor: one numeric output).

Before anything is written the graph is opened with ONNX Runtime and run on the example
row, so a model that the function could not serve fails here, with the fix, and not in a
promotion's health check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.base.errors import UsageError
from orchestrator.build.artifacts import Artifact, build_model_archive

CLASSIFICATION, REGRESSION = "classification", "regression"


class ModelPackError(UsageError):
    """The model or its description cannot be packed (exit 2: the command line must change)."""


@dataclass(frozen=True)
class PackRequest:
    """What the user declared about the model."""

    onnx: Path
    features: tuple[str, ...]
    labels: tuple[str, ...]  # empty: a regressor
    name: str
    version: str
    example: tuple[float, ...] = ()  # default: 0.0 per feature

    @property
    def task(self) -> str:
        return CLASSIFICATION if self.labels else REGRESSION

    @property
    def row(self) -> tuple[float, ...]:
        """The example row: the one given, or 0.0 per feature."""
        return self.example or (0.0,) * len(self.features)


@dataclass(frozen=True)
class Graph:
    """What ONNX Runtime says about the model's interface (and one run of it)."""

    input_name: str
    input_width: int | str | None  # the second dimension: a number, a symbol, or unknown
    outputs: tuple[tuple[str, str, tuple[Any, ...]], ...]  # (name, type, shape of the example's result)


def metadata(request: PackRequest, graph: Graph) -> dict[str, Any]:
    """The metadata.json of a packed model, once `check` found request and graph agree."""
    output: dict[str, Any]
    if request.task == CLASSIFICATION:
        label, probabilities = _classifier_outputs(graph)
        output = {"labels": list(request.labels), "label": label, "probabilities": probabilities}
    else:
        output = {"value": graph.outputs[0][0]}
    return {
        "framework": "onnxruntime",
        "task": request.task,
        "name": request.name,
        "version": request.version,
        "input": {
            "name": graph.input_name,
            "dtype": "float32",
            "features": list(request.features),
            "example": list(request.row),
        },
        "output": output,
    }


def check(request: PackRequest, graph: Graph) -> None:
    """Raise ModelPackError naming the fix when the declaration and the graph disagree."""
    width, features = graph.input_width, len(request.features)
    if isinstance(width, int) and width != features:
        raise ModelPackError(
            f"{request.onnx.name} takes {width} features per row; --features names {features}",
            fix=f"list exactly {width} feature names in --features (in the model's column order)",
        )
    if request.example and len(request.example) != features:
        raise ModelPackError(
            f"--example has {len(request.example)} values for {features} features",
            fix="give one example value per feature",
        )
    if len(set(request.features)) != features:
        raise ModelPackError("--features names a feature twice", fix="give each feature a distinct name")
    shapes = {name: shape for name, _, shape in graph.outputs}
    if request.task == REGRESSION:
        if len(graph.outputs) != 1:
            classes = _class_count(graph)
            raise ModelPackError(
                f"{request.onnx.name} is a classifier ({len(graph.outputs)} outputs"
                + (f", {classes} classes" if classes else "")
                + ") and no --labels were given",
                fix="pass --labels with one name per class, in the model's class order",
            )
        name, kind, shape = graph.outputs[0]
        if "float" not in kind or len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise ModelPackError(
                f"a regressor's output must be one number per row; {name} is {kind} {list(shape)}",
                fix="export the model with a single [N] or [N, 1] float output",
            )
        return
    _, probabilities = _classifier_outputs(graph)
    classes = shapes[probabilities][1]
    if classes != len(request.labels):
        raise ModelPackError(
            f"{request.onnx.name} predicts {classes} classes; --labels names {len(request.labels)}",
            fix=f"give exactly {classes} labels, in the model's class order",
        )


def _classifier_outputs(graph: Graph) -> tuple[str, str]:
    """(label output, probabilities output): the integer one and the float matrix."""
    labels = [name for name, kind, shape in graph.outputs if "int" in kind and len(shape) == 1]
    probabilities = [name for name, kind, shape in graph.outputs if _is_probabilities(kind, shape)]
    if len(graph.outputs) != 2 or len(labels) != 1 or len(probabilities) != 1:
        kinds = ", ".join(f"{n}: {k} {list(s)}" for n, k, s in graph.outputs)
        raise ModelPackError(
            f"a classifier needs two outputs, the label ([N] integers) and the probabilities "
            f"([N, classes] floats); this model has {kinds}",
            fix="export without a ZipMap (skl2onnx: options={id(model): {'zipmap': False}}; "
            "onnxmltools: the same option), or pack a regressor without --labels",
        )
    return labels[0], probabilities[0]


def _is_probabilities(kind: str, shape: tuple[Any, ...]) -> bool:
    return "float" in kind and len(shape) == 2  # [N, classes]


def _class_count(graph: Graph) -> int | None:
    for _, kind, shape in graph.outputs:
        if _is_probabilities(kind, shape):
            return int(shape[1])
    return None


def inspect(request: PackRequest) -> Graph:
    """Open the model with ONNX Runtime and run it once on the example row."""
    import numpy as np
    import onnxruntime as ort

    try:
        data = request.onnx.read_bytes()
    except OSError as exc:
        raise ModelPackError(f"cannot read {request.onnx}: {exc.strerror}", fix="check the path") from exc
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime raises its own types for every parse failure
        raise ModelPackError(
            f"{request.onnx.name} is not an ONNX model ONNX Runtime can load: {str(exc).strip()[:300]}",
            fix="convert the model to ONNX first (README: skl2onnx, onnxmltools)",
        ) from exc
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 2:
        described = ", ".join(f"{i.name} {i.shape}" for i in inputs)
        raise ModelPackError(
            f"the function feeds one [rows, features] float input; this model takes {described}",
            fix="export the model with a single 2-D float input",
        )
    width = inputs[0].shape[1]
    features = len(request.features)
    if isinstance(width, int) and width != features:
        return Graph(inputs[0].name, width, ())  # check() names the mismatch
    row = np.asarray([list(request.row)], dtype=np.float32)
    try:
        results = session.run(None, {inputs[0].name: row})
    except Exception as exc:
        raise ModelPackError(
            f"{request.onnx.name} fails on a row of {features} float32 features: {str(exc).strip()[:300]}",
            fix="check --features against the model's input (its width and dtype)",
        ) from exc
    outputs = []
    for meta, value in zip(session.get_outputs(), results, strict=True):
        shape = tuple(getattr(value, "shape", ()))
        kind = str(getattr(value, "dtype", type(value).__name__))
        outputs.append((meta.name, kind, shape))
    return Graph(inputs[0].name, width, tuple(outputs))


def pack(request: PackRequest, out: Path) -> Artifact:
    """Check the model against its declaration and write the archive to `out`."""
    if not request.features:
        raise ModelPackError(
            "no --features given", fix="name the model's input columns: --features f1,f2,..."
        )
    graph = inspect(request)
    check(request, graph)
    return build_model_archive(request.onnx, metadata(request, graph), out)


def read_archive(path: Path) -> dict[str, Any]:
    """The metadata of a model pack archive about to be published, checked: the file exists,
    is a gzipped tar with model.onnx and metadata.json, and the metadata is a contract
    (contract.problems). ModelPackError (exit 2) naming the fix otherwise: checked before
    anything is published, as a raw .onnx or a wrong path would otherwise fail only after
    a new Lambda version exists."""
    import json
    import tarfile

    from orchestrator.build.contract import problems

    pack_it = (
        f"run `orchestrator model pack {path.name if path.suffix == '.onnx' else 'MODEL.onnx'} "
        f"--features F1,F2,... --name NAME --version V -o {path.with_suffix('.tar.gz').name if path.suffix == '.onnx' else 'model.tar.gz'}` "
        "and pass that archive to --model"
    )
    if not path.exists():
        raise ModelPackError(f"model archive {path} not found", fix=f"check the path, or {pack_it}")
    if not path.is_file():
        raise ModelPackError(
            f"model archive {path} is not a file", fix=f"pass the archive itself, or {pack_it}"
        )
    try:
        with path.open("rb") as raw:
            head = raw.read(2)
    except OSError as exc:
        raise ModelPackError(
            f"cannot read {path}: {exc.strerror}", fix="check the path and its permissions"
        ) from exc
    if head != b"\x1f\x8b":  # not gzip: an ONNX file (a protobuf) is the usual mistake
        if path.suffix == ".onnx" or head[:1] == b"\x08":
            raise ModelPackError(f"{path.name} is an ONNX file, not a model pack archive", fix=pack_it)
        raise ModelPackError(
            f"{path.name} is not a model pack archive (a tar.gz of model.onnx and metadata.json)", fix=pack_it
        )
    try:
        with tarfile.open(path, "r:gz") as tar:
            names = set(tar.getnames())
            member = tar.extractfile("metadata.json") if "metadata.json" in names else None
            data = json.load(member) if member else None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModelPackError(f"{path.name} is not a readable tar.gz: {exc}", fix=pack_it) from exc
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise ModelPackError(f"{path.name}: metadata.json is not JSON: {exc}", fix=pack_it) from exc
    missing = sorted({"metadata.json", "model.onnx"} - names)
    if missing:
        raise ModelPackError(
            f"{path.name} lacks {' and '.join(missing)}: not a model pack archive", fix=pack_it
        )
    if not isinstance(data, dict):
        raise ModelPackError(f"{path.name}: metadata.json is not a JSON object", fix=pack_it)
    wrong = problems(data)
    if wrong:
        raise ModelPackError(f"{path.name}: metadata.json is not valid: {'; '.join(wrong)}", fix=pack_it)
    return data
