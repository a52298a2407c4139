"""GitHub Actions expressions (`${{ }}`, `if:`), evaluated as the runner does.

Pure: a tokenizer, a precedence-climbing parser and an evaluator over plain Python values
(dict, list, str, float, bool, None). Semantics follow GitHub's documentation of
expressions: loose equality that coerces mismatched types to numbers, case-insensitive
string comparison, `&&`/`||` returning an operand, property access on null giving null,
`.*` object filters, and the functions contains, startsWith, endsWith, format, join,
toJSON, fromJSON, hashFiles and the status functions.

Strict where GitHub is silent: an unknown context, function, operator or character, and a
name a `Contexts` declares strict (vars, secrets, needs, undeclared inputs), raise
`ExpressionError` instead of evaluating to an empty string, so a harness run can never pass
because something evaluated to nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ExpressionError(Exception):
    """An expression the harness cannot evaluate faithfully."""


# --- tokens -------------------------------------------------------------------------------

TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<number>0x[0-9a-fA-F]+|[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_]))
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\].,*])
    | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string, number, op, name, end
    text: str


def tokenize(source: str) -> list[Token]:
    tokens, at = [], 0
    while at < len(source):
        if source[at:].strip() == "":
            break
        match = TOKEN.match(source, at)
        if match is None or match.end() == at:
            raise ExpressionError(f"cannot read {source[at:]!r} in expression {source!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append(Token(kind, match.group(kind)))
        at = match.end()
    tokens.append(Token("end", ""))
    return tokens


# --- syntax tree ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Property:
    target: Any
    key: Any  # a node (index) or a str (dotted name); "*" for a filter


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Any


@dataclass(frozen=True)
class Binary:
    op: str
    left: Any
    right: Any


# GitHub's precedence, loosest first.
BINARY = [("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">=")]


class Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.at = 0

    def parse(self) -> Any:
        node = self.binary(0)
        if self.peek().kind != "end":
            raise ExpressionError(f"unexpected {self.peek().text!r} in expression {self.source!r}")
        return node

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self, text: str | None = None) -> Token:
        token = self.tokens[self.at]
        if text is not None and token.text != text:
            raise ExpressionError(f"expected {text!r}, found {token.text or 'the end'!r} in {self.source!r}")
        self.at += 1
        return token

    def binary(self, level: int) -> Any:
        if level == len(BINARY):
            return self.unary()
        node = self.binary(level + 1)
        while self.peek().kind == "op" and self.peek().text in BINARY[level]:
            op = self.take().text
            node = Binary(op, node, self.binary(level + 1))
        return node

    def unary(self) -> Any:
        if self.peek().text == "!" and self.peek().kind == "op":
            self.take()
            return Unary("!", self.unary())
        return self.postfix(self.primary())

    def primary(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return Literal(token.text[1:-1].replace("''", "'"))
        if token.kind == "number":
            return Literal(_number(token.text))
        if token.kind == "op" and token.text == "(":
            node = self.binary(0)
            self.take(")")
            return node
        if token.kind == "name":
            lowered = token.text.lower()
            if lowered in ("true", "false"):
                return Literal(lowered == "true")
            if lowered == "null":
                return Literal(None)
            if self.peek().text == "(":
                self.take("(")
                args = []
                if self.peek().text != ")":
                    args.append(self.binary(0))
                    while self.peek().text == ",":
                        self.take(",")
                        args.append(self.binary(0))
                self.take(")")
                return Call(lowered, tuple(args))
            return Name(token.text)
        raise ExpressionError(f"unexpected {token.text or 'end'!r} in expression {self.source!r}")

    def postfix(self, node: Any) -> Any:
        while self.peek().kind == "op" and self.peek().text in (".", "["):
            if self.take().text == ".":
                token = self.take()
                if token.kind == "name" or (token.kind == "op" and token.text == "*"):
                    node = Property(node, token.text)
                else:
                    raise ExpressionError(f"expected a property name after '.' in {self.source!r}")
            else:
                key = Literal("*") if self.peek().text == "*" and self.take() else self.binary(0)
                self.take("]")
                node = Property(node, key)
        return node


def _number(text: str) -> float:
    return float(int(text, 16)) if text.lower().startswith("0x") else float(text)


# --- values --------------------------------------------------------------------------------


def truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, float | int) and not isinstance(value, bool):
        return not (value == 0 or math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def to_number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped == "":
            return 0.0
        try:
            return _number(stripped)
        except ValueError:
            return math.nan
    return math.nan  # arrays and objects


def to_string(value: Any) -> str:
    """How a value reads where a string is needed (env, with, format, contains)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | int):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    return to_json(value)


def to_json(value: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    return json.dumps(plain(value), indent=2)


def loose_equal(left: Any, right: Any) -> bool:
    if type(left) is type(right) or (_is_num(left) and _is_num(right)):
        if isinstance(left, str):
            return left.lower() == right.lower()
        if isinstance(left, dict | list):
            return left is right
        if _is_num(left):
            return float(left) == float(right)
        return bool(left == right)
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return False
    return to_number(left) == to_number(right)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        a: Any = left.lower()
        b: Any = right.lower()
    else:
        a, b = to_number(left), to_number(right)
        if math.isnan(a) or math.isnan(b):
            return False
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


# --- evaluation ------------------------------------------------------------------------------


@dataclass
class Contexts:
    """What an expression may read. `values` holds the contexts by name; `strict` names the
    contexts whose missing keys are errors; `status` answers success()/failure()/cancelled()
    where a status function is allowed (job and step `if:`); `workspace` serves hashFiles."""

    values: Mapping[str, Any]
    strict: frozenset[str] = frozenset()
    status: Callable[[str], bool] | None = None
    workspace: Path | None = None
    allowed_missing: Mapping[str, frozenset[str]] = field(default_factory=dict)


def evaluate(source: str, contexts: Contexts) -> Any:
    """The value of one expression (without `${{ }}`)."""
    return _eval(Parser(source).parse(), contexts)


def _lookup(mapping: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    if key in mapping:
        return True, mapping[key]
    lowered = key.lower()
    for name, value in mapping.items():
        if isinstance(name, str) and name.lower() == lowered:
            return True, value
    return False, None


def _eval(node: Any, ctx: Contexts) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Name):
        found, value = _lookup(ctx.values, node.name)
        if not found:
            raise ExpressionError(
                f"unknown context {node.name!r} (available here: {', '.join(sorted(ctx.values))})"
            )
        return value
    if isinstance(node, Property):
        return _property(node, ctx)
    if isinstance(node, Unary):
        return not truthy(_eval(node.operand, ctx))
    if isinstance(node, Binary):
        left = _eval(node.left, ctx)
        if node.op == "&&":
            return _eval(node.right, ctx) if truthy(left) else left
        if node.op == "||":
            return left if truthy(left) else _eval(node.right, ctx)
        right = _eval(node.right, ctx)
        if node.op == "==":
            return loose_equal(left, right)
        if node.op == "!=":
            return not loose_equal(left, right)
        return _compare(node.op, left, right)
    if isinstance(node, Call):
        return _call(node, ctx)
    raise ExpressionError(f"cannot evaluate {node!r}")


def _property(node: Property, ctx: Contexts) -> Any:
    target = _eval(node.target, ctx)
    key = node.key if isinstance(node.key, str) else _eval(node.key, ctx)
    if key == "*":
        if isinstance(target, dict):
            return list(target.values())
        if isinstance(target, list):
            return list(target)
        return []
    if isinstance(target, list) and isinstance(node.target, Property) and node.target.key == "*":
        return [_get(item, key) for item in target]  # a filter's property: one per element
    if isinstance(target, list):
        index = to_number(key)
        if math.isnan(index) or not index.is_integer() or not 0 <= index < len(target):
            return None
        return target[int(index)]
    if isinstance(target, dict):
        found, value = _lookup(target, to_string(key))
        if found:
            return value
        # a strict context (vars, secrets, needs, ...) names everything it has
        if isinstance(node.target, Name) and node.target.name.lower() in ctx.strict:
            allowed = ctx.allowed_missing.get(node.target.name.lower(), frozenset())
            if to_string(key) not in allowed:
                raise ExpressionError(
                    f"{node.target.name}.{key} is not defined (defined: {', '.join(sorted(target)) or 'none'})"
                )
        return None
    return None


def _get(item: Any, key: Any) -> Any:
    if isinstance(item, dict):
        return _lookup(item, to_string(key))[1]
    return None


STATUS = ("success", "failure", "cancelled", "always")


def _call(node: Call, ctx: Contexts) -> Any:
    name = node.function
    if name in STATUS:
        if node.args:
            raise ExpressionError(f"{name}() takes no arguments")
        if ctx.status is None:
            raise ExpressionError(f"{name}() is not allowed here (only in a job's or a step's if:)")
        return True if name == "always" else ctx.status(name)
    args = [_eval(arg, ctx) for arg in node.args]
    if name in ("startswith", "endswith", "contains"):
        _arity(name, args, 2, 2)
        if name == "contains" and isinstance(args[0], list):
            return any(loose_equal(item, args[1]) for item in args[0])
        haystack, needle = to_string(args[0]).lower(), to_string(args[1]).lower()
        if name == "contains":
            return needle in haystack
        return haystack.startswith(needle) if name == "startswith" else haystack.endswith(needle)
    if name == "format":
        _arity(name, args, 1, None)
        return _format(to_string(args[0]), [to_string(a) for a in args[1:]])
    if name == "join":
        _arity(name, args, 1, 2)
        separator = to_string(args[1]) if len(args) == 2 else ","
        items = args[0] if isinstance(args[0], list) else [args[0]]
        return separator.join(to_string(i) for i in items)
    if name == "tojson":
        _arity(name, args, 1, 1)
        return to_json(args[0])
    if name == "fromjson":
        _arity(name, args, 1, 1)
        try:
            return _numbers_as_floats(json.loads(to_string(args[0])))
        except ValueError as error:
            raise ExpressionError(f"fromJSON: {error}") from None
    if name == "hashfiles":
        _arity(name, args, 1, None)
        return hash_files(ctx.workspace, [to_string(a) for a in args])
    raise ExpressionError(f"unknown function {node.function}()")


def _arity(name: str, args: list[Any], low: int, high: int | None) -> None:
    if len(args) < low or (high is not None and len(args) > high):
        raise ExpressionError(f"{name}() takes {low}{'' if high == low else '+'} arguments, got {len(args)}")


def _numbers_as_floats(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_numbers_as_floats(v) for v in value]
    return {k: _numbers_as_floats(v) for k, v in value.items()}


def _format(template: str, args: list[str]) -> str:
    out, at = [], 0
    while at < len(template):
        if template.startswith("{{", at):
            out.append("{")
            at += 2
        elif template.startswith("}}", at):
            out.append("}")
            at += 2
        elif template[at] == "{":
            end = template.find("}", at)
            index = template[at + 1 : end] if end > 0 else ""
            if not index.isdigit() or int(index) >= len(args):
                raise ExpressionError(f"format(): no argument for {{{index}}} in {template!r}")
            out.append(args[int(index)])
            at = end + 1
        else:
            out.append(template[at])
            at += 1
    return "".join(out)


def hash_files(workspace: Path | None, patterns: list[str]) -> str:
    """hashFiles as the runner computes it: the SHA-256 over each matched file's SHA-256, in
    path order; '' when nothing matches. `!pattern` excludes."""
    if workspace is None:
        raise ExpressionError("hashFiles() needs a workspace")
    files = [
        p
        for p in sorted(workspace.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(workspace).parts
    ]
    chosen = []
    for path in files:
        relative = path.relative_to(workspace).as_posix()
        included = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            if fnmatch.fnmatchcase(relative, pattern.removeprefix("!").replace("**/", "*")):
                included = not negate
        if included:
            chosen.append(path)
    if not chosen:
        return ""
    outer = hashlib.sha256()
    for path in chosen:
        outer.update(hashlib.sha256(path.read_bytes()).digest())
    return outer.hexdigest()


# --- templates -----------------------------------------------------------------------------

TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def render(value: Any, contexts: Contexts) -> Any:
    """A workflow value with its `${{ }}` substituted: a lone expression keeps its type,
    one mixed with text becomes a string. Lists and mappings are rendered throughout."""
    if isinstance(value, dict):
        return {k: render(v, contexts) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, contexts) for v in value]
    if not isinstance(value, str) or "${{" not in value:
        return value
    lone = TEMPLATE.fullmatch(value.strip()) if value.count("${{") == 1 else None
    if lone:
        return evaluate(lone.group(1), contexts)
    if value.count("${{") != len(TEMPLATE.findall(value)):
        raise ExpressionError(f"unterminated ${{{{ in {value!r}")
    return TEMPLATE.sub(lambda m: to_string(evaluate(m.group(1), contexts)), value)


def condition(value: Any, contexts: Contexts) -> bool:
    """An `if:`: a bare expression or one `${{ }}`; without a status function it is
    `success() && (...)`, as GitHub evaluates it."""
    if value is None:
        source = "success()"
    elif isinstance(value, bool):
        return value and contexts.status is not None and contexts.status("success")
    else:
        text = str(value).strip()
        lone = TEMPLATE.fullmatch(text) if text.count("${{") == 1 else None
        source = lone.group(1) if lone else text
        if "${{" in source:
            raise ExpressionError(f"an if: mixing ${{{{ }}}} with text is always true on GitHub: {value!r}")
    if not _uses_status(Parser(source).parse()):
        source = f"success() && ({source})"
    return truthy(evaluate(source, contexts))


def _uses_status(node: Any) -> bool:
    if isinstance(node, Call):
        return node.function in STATUS or any(_uses_status(a) for a in node.args)
    if isinstance(node, Unary):
        return _uses_status(node.operand)
    if isinstance(node, Binary):
        return _uses_status(node.left) or _uses_status(node.right)
    if isinstance(node, Property):
        return _uses_status(node.target) or (not isinstance(node.key, str) and _uses_status(node.key))
    return False
