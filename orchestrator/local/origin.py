"""The origin secret on the local edge: what its CloudFront part sends, what its API part
accepts (on AWS: the distribution's custom header and the authorizer's SSM parameter).

The Edge resource (programs/emulated.py) writes them to a file the edge reads at start
and again on POST /_edgeship/origin, so a rotation (programs/origin_secret.py) changes
them without a restart and without a refused request.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from programs.authorizer.origin import HEADER, authorized

FILE = "origin.json"


@dataclass(frozen=True)
class Origin:
    sent: str
    accepted: tuple[str, ...]

    def refusal(self, headers: dict[str, str]) -> tuple[int, str] | None:
        """API Gateway's answer to a request its origin authorizer refuses, or None.
        No header: 401 without calling the authorizer; a value not accepted: 403."""
        supplied = headers.get(HEADER)
        if not supplied:
            return 401, "Unauthorized"
        return None if authorized(supplied, self.accepted) else (403, "Forbidden")


def write_origin(state_dir: Path, sent: str, accepted: list[str]) -> None:
    """Atomically, readable by the owner only."""
    path = state_dir / FILE
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"sent": sent, "accepted": accepted}, out)
    os.replace(temporary, path)


def read_origin(state_dir: Path) -> Origin:
    """The current values; none (every live request refused, fail closed) when unreadable."""
    try:
        data = json.loads((state_dir / FILE).read_text())
        return Origin(str(data["sent"]), tuple(str(v) for v in data["accepted"] if v))
    except (OSError, ValueError, KeyError, TypeError):
        return Origin("", ())
