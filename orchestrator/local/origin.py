"""The origin secret on the local edge: the value its CloudFront part sends (on AWS: the
distribution's custom header). The values its API part accepts are, as on AWS, the
authorizer's SSM parameter in the emulator (programs/emulated.py Parameter), read by the
real authorizer code (authorizer.py).

The Edge resource (programs/emulated.py) writes the sent value to a file the edge reads at
start and again on POST /_edgeship/origin, so a rotation (programs/origin_secret.py)
changes it without a restart and without a refused request.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.programs.authorizer.origin import HEADER

FILE = "origin.json"
__all__ = ["FILE", "HEADER", "Origin", "read_origin", "write_origin"]


@dataclass(frozen=True)
class Origin:
    sent: str


def write_origin(state_dir: Path, sent: str) -> None:
    """Atomically, readable by the owner only."""
    path = state_dir / FILE
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"sent": sent}, out)
    os.replace(temporary, path)


def read_origin(state_dir: Path) -> Origin:
    """The current value; none (the API refuses every request through the edge: fail closed)
    when unreadable."""
    try:
        return Origin(str(json.loads((state_dir / FILE).read_text())["sent"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Origin("")
