"""Runs one published version's code, like a Lambda sandbox, for the local edge.

Started with the version's environment (MODEL_URI, MODEL_SHA256, ...), it imports
`handler` from the unpacked zip (loading the model at init, as Lambda does) and then
answers events read from stdin. Frames are a 4-byte big-endian length plus JSON.

Each answer is `{"response": <the handler's return value>, "error": bool, "duration_ms": float}`:
`error` is a function error as Lambda counts it in `Errors` (the handler raised; a returned
statusCode 500 is not one), `duration_ms` the handler's time, which is what Lambda's `Duration`
measures (no framing or event decoding).
"""

from __future__ import annotations

import struct
import sys
import time
import traceback
from typing import IO, Any, TypedDict

import orjson

HEADER = struct.Struct(">I")
FUNCTION_ERROR = {
    "statusCode": 502,
    "headers": {"content-type": "application/json"},
    "body": '{"error":"function_error","detail":"the function raised; see the edge log"}',
}


class Answer(TypedDict):
    """The frame a worker sends for one event."""

    response: dict[str, Any]
    error: bool
    duration_ms: float


def send(stream: IO[bytes], message: Any) -> None:
    """Write one framed message."""
    body = orjson.dumps(message)
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """Read one framed message; None at end of stream."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    return orjson.loads(stream.read(size))


class _Context:
    """The parts of Lambda's context object handlers commonly read."""

    def __init__(self, version: str) -> None:
        self.function_version = version
        self.aws_request_id = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def main() -> None:
    """Serve events until stdin closes."""
    code_dir, version = sys.argv[1], sys.argv[2]
    sys.path.insert(0, code_dir)
    out = sys.stdout.buffer
    # Keep stdout for frames only; the handler's prints and logs go to stderr.
    sys.stdout = sys.stderr
    import handler

    context = _Context(version)
    send(out, {"ready": True})
    stdin = sys.stdin.buffer
    while (event := receive(stdin)) is not None:
        send(out, answer(handler.handler, event, context))


def answer(handle: Any, event: Any, context: Any) -> Answer:
    """Run the handler on one event, timed as Lambda times it."""
    start = time.perf_counter()
    try:
        response = handle(event, context)
    except Exception:  # a crash in user code is a function error (the edge answers 500), not the worker's end
        duration_ms = (time.perf_counter() - start) * 1000  # before the traceback: not the handler's time
        traceback.print_exc()
        return {"response": FUNCTION_ERROR, "error": True, "duration_ms": duration_ms}
    return {"response": response, "error": False, "duration_ms": (time.perf_counter() - start) * 1000}


if __name__ == "__main__":
    main()
