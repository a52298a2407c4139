"""Runs one published version's code, like a Lambda sandbox, for the local edge.

Started with the version's environment (MODEL_URI, MODEL_SHA256, ...), it imports
`handler` from the unpacked zip (loading the model at init, as Lambda does) and then
answers events read from stdin. Frames are a 4-byte big-endian length plus JSON.
"""

from __future__ import annotations

import struct
import sys
import traceback
from typing import IO, Any

import orjson

HEADER = struct.Struct(">I")


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
        try:
            response = handler.handler(event, context)
        except Exception:  # a crash in user code is the function's 502, not the worker's end
            traceback.print_exc()
            response = {"statusCode": 502, "headers": {"content-type": "application/json"},
                        "body": '{"error":"function_error","detail":"the function raised; see the edge log"}'}  # fmt: skip
        send(out, response)


if __name__ == "__main__":
    main()
