"""The local edge's port, kept across restarts.

The edge's URL is the stack's `edgeUrl`, and people keep it (a browser tab, a script, a
load test's --host). So a restarted edge asks for the port it had before, remembered in
`edge-port.json` beside the edge's state (it outlives edge.json, which goes with the
process, and `destroy`, which keeps the directory). When that port is taken by something
else the edge takes another, and the next `up` says so once (EmulatorCloud.notes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

DEFAULT_PORT = 8787
FILE = "edge-port.json"


def wanted(state_dir: Path) -> int:
    """The port the edge had last time, else the default."""
    return _read(state_dir).get("port") or DEFAULT_PORT


def record(state_dir: Path, wanted_port: int, got: int) -> None:
    """Remember the port the edge got; when it is not the one it had before, keep that too
    for the note (a first start, with nothing remembered, moved from nothing)."""
    remembered = "port" in _read(state_dir)
    moved_from = wanted_port if remembered and got != wanted_port else None
    _write(state_dir, {"port": got, **({"moved_from": moved_from} if moved_from else {})})


def take_note(state_dir: Path) -> str | None:
    """The note about a port the edge could not have back, once (then forgotten)."""
    data = _read(state_dir)
    moved_from = data.get("moved_from")
    if not moved_from:
        return None
    _write(state_dir, {"port": data["port"]})
    return (
        f"the local edge could not have its port {moved_from} back (something else listens there): "
        f"it now listens on {data['port']}, and the stack's edgeUrl says so"
    )


def _read(state_dir: Path) -> dict[str, int]:
    try:
        data = json.loads((state_dir / FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {k: int(v) for k, v in data.items() if k in ("port", "moved_from") and isinstance(v, int)}


def _write(state_dir: Path, data: dict[str, int]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    temporary = state_dir / f"{FILE}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(data))
    os.replace(temporary, state_dir / FILE)
