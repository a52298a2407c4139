"""Baseline: the same model as a scikit-learn pickle, loaded and verified at init."""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import numpy as np


def _load():
    with open(os.environ["MODEL_PICKLE"], "rb") as fh:
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != os.environ["MODEL_PICKLE_SHA256"]:
        raise RuntimeError("model sha256 mismatch")
    return pickle.loads(data)


MODEL = _load()
LABELS = ["setosa", "versicolor", "virginica"]


def handler(event, context):
    row = json.loads(event["body"])["inputs"]
    probabilities = MODEL.predict_proba(np.asarray([row], dtype=np.float32))[0]
    label = int(probabilities.argmax())
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {"predictions": [{"label": LABELS[label], "probabilities": probabilities.tolist()}]}
        ),
    }
