"""Where each key of a TOML text is written: line numbers for config errors.

tomllib returns values without positions, and an error that says only `slo.p95_ms` leaves the
user searching a file where `[defaults]` and every `[environments.X]` may hold that key. This
scans the text once, tracking `[table]` and `[[array]]` headers, dotted keys, inline tables and
arrays of inline tables, and records the line each key path is first written on. It runs on
text tomllib already accepted, so it never reports: on anything it does not follow it moves on,
and a path it did not record falls back to its nearest recorded parent (see `line_of`).
"""

from __future__ import annotations

import json

KeyPath = tuple[str | int, ...]  # ("environments", "prod", "traffic", "hooks", 0, "on")

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def key_lines(text: str) -> dict[KeyPath, int]:
    """Every key path (tables, keys, array elements) to the 1-based line it is written on."""
    scan = _Scan(text)
    scan.document()
    return scan.lines


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, else of its nearest written parent (a missing key: its table's header)."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


class _Scan:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self.array_tables: dict[KeyPath, int] = {}

    def peek(self, n: int = 1) -> str:
        return self.text[self.i : self.i + n]

    def advance(self, n: int = 1) -> None:
        self.line += self.text.count("\n", self.i, self.i + n)
        self.i += n

    def at_end(self) -> bool:
        return self.i >= len(self.text)

    def record(self, path: KeyPath, line: int) -> None:
        self.lines.setdefault(path, line)

    def blank(self, newlines: bool) -> None:
        """Skip spaces and comments (and line breaks, where the grammar allows them)."""
        while not self.at_end():
            c = self.text[self.i]
            if c in " \t\r" or (c == "\n" and newlines):
                self.advance()
            elif c == "#":
                end = self.text.find("\n", self.i)
                self.advance((len(self.text) if end < 0 else end) - self.i)
            else:
                return

    def document(self) -> None:
        table: KeyPath = ()
        while True:
            self.blank(newlines=True)
            if self.at_end():
                return
            start, line = self.i, self.line
            if self.peek(2) == "[[":
                self.advance(2)
                name = self.key()
                self.blank(newlines=False)
                self.advance(2 if self.peek(2) == "]]" else 0)
                index = self.array_tables.get(name, 0)
                self.array_tables[name] = index + 1
                table = (*name, index)
                self.record(name, line)
                self.record(table, line)
            elif self.peek() == "[":
                self.advance()
                table = self.key()
                self.blank(newlines=False)
                self.advance(1 if self.peek() == "]" else 0)
                for end in range(1, len(table) + 1):
                    self.record(table[:end], line)
            else:
                self.keyval(table)
            if self.i == start:  # something this scan does not follow: step over it
                self.advance()

    def key(self) -> KeyPath:
        parts: list[str | int] = []
        while True:
            self.blank(newlines=False)
            c = self.peek()
            if c == '"':
                parts.append(self.quoted('"'))
            elif c == "'":
                parts.append(self.quoted("'"))
            else:
                start = self.i
                while not self.at_end() and self.text[self.i] in _BARE:
                    self.advance()
                parts.append(self.text[start : self.i])
            self.blank(newlines=False)
            if self.peek() != ".":
                return tuple(parts)
            self.advance()

    def quoted(self, quote: str) -> str:
        """A one-line string at the cursor, its value (a basic string's escapes decoded)."""
        self.advance()
        start = self.i
        while not self.at_end() and self.text[self.i] not in (quote, "\n"):
            self.advance(2 if quote == '"' and self.text[self.i] == "\\" else 1)
        raw = self.text[start : self.i]
        self.advance(1 if self.peek() == quote else 0)
        if quote == "'":
            return raw
        try:
            return str(json.loads(f'"{raw}"'))
        except ValueError:  # TOML escapes JSON lacks (\e, \U0001F600): the raw text is near enough
            return raw

    def keyval(self, table: KeyPath) -> None:
        line = self.line
        name = self.key()
        if self.peek() != "=":
            return
        self.advance()
        self.blank(newlines=False)
        path = (*table, *name)
        for end in range(len(table) + 1, len(path) + 1):
            self.record(path[:end], line)
        self.value(path)

    def value(self, path: KeyPath) -> None:
        c = self.peek()
        if c == "{":
            self.advance()
            while True:
                self.blank(newlines=True)
                if self.at_end() or self.peek() == "}":
                    self.advance()
                    return
                if self.peek() == ",":
                    self.advance()
                    continue
                start = self.i
                self.keyval(path)
                if self.i == start:
                    self.advance()
        elif c == "[":
            self.advance()
            index = 0
            while True:
                self.blank(newlines=True)
                if self.at_end() or self.peek() == "]":
                    self.advance()
                    return
                if self.peek() == ",":
                    self.advance()
                    index += 1
                    continue
                start = self.i
                self.record((*path, index), self.line)
                self.value((*path, index))
                if self.i == start:
                    self.advance()
        elif self.peek(3) in ('"""', "'''"):
            quote = self.peek(3)
            self.advance(3)
            while not self.at_end() and self.peek(3) != quote:
                self.advance(2 if quote == '"""' and self.peek() == "\\" else 1)
            self.advance(3)
            while self.peek() == quote[0]:  # up to two quotes may end the content itself
                self.advance()
        elif c in "\"'":
            self.quoted(c)
        else:  # numbers, booleans, dates: up to what ends a value
            while not self.at_end() and self.text[self.i] not in ",]}#\n":
                self.advance()
