"""Baseline: the popular way, FastAPI + Mangum + ONNX Runtime, same model and checks."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, HTTPException
from mangum import Mangum
from pydantic import BaseModel


def _load() -> tuple[ort.InferenceSession, dict]:
    with open(os.environ["MODEL_URI"].removeprefix("file://"), "rb") as fh:
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != os.environ["MODEL_SHA256"]:
        raise RuntimeError("model sha256 mismatch")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    return ort.InferenceSession(files["model.onnx"], providers=["CPUExecutionProvider"]), json.loads(
        files["metadata.json"]
    )


SESSION, METADATA = _load()
INPUT = SESSION.get_inputs()[0].name
app = FastAPI()


class Inputs(BaseModel):
    inputs: list[float]


@app.post("/infer")
def infer(body: Inputs) -> dict:
    if len(body.inputs) != 4:
        raise HTTPException(400, "expected 4 numbers")
    labels, probabilities = SESSION.run(None, {INPUT: np.asarray([body.inputs], dtype=np.float32)})
    return {
        "predictions": [
            {
                "label": METADATA["output"]["labels"][int(labels[0])],
                "probabilities": probabilities[0].tolist(),
            }
        ],
        "model": {"name": METADATA["name"], "version": METADATA["version"]},
    }


handler = Mangum(app, lifespan="off")
