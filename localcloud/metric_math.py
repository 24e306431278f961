"""A small subset of CloudWatch metric math, enough for alarms built from a few metrics.

Per period, each query id has a value or None (no data). Supported: numbers, ids,
``+ - * /``, comparisons ``== != < <= > >=`` (1 or 0), ``FILL(id_or_expr, number)`` (a missing
value becomes the number), ``IF(condition, a, b)``. Arithmetic with a missing operand is
missing, as in CloudWatch, which is why alarms on math fill their inputs.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html
Anything else raises ``UnsupportedExpression`` so the monitor can say it does not evaluate it.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping

Value = float | None
Node = Callable[[Mapping[str, Value]], Value]

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|<=|>=|[-+*/(),<>]))")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
_ARITH: dict[str, Callable[[float, float], float | None]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else None,
}


class UnsupportedExpression(ValueError):
    pass


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip() == "":
                break
            raise UnsupportedExpression(f"cannot read {text[pos:]!r} in {text!r}")
        out.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    return out


def compile_expression(text: str) -> Node:
    """The expression as a function of {id: value} for one period."""
    tokens = _tokens(text)
    pos = [0]

    def peek() -> str | None:
        return tokens[pos[0]] if pos[0] < len(tokens) else None

    def take(expected: str | None = None) -> str:
        token = peek()
        if token is None or (expected is not None and token != expected):
            raise UnsupportedExpression(f"expected {expected or 'more'} in {text!r}")
        pos[0] += 1
        return token

    def comparison() -> Node:
        left = additive()
        op = peek()
        if op in _COMPARE:
            take()
            right = additive()
            test = _COMPARE[op]
            return lambda env: None if (a := left(env)) is None or (b := right(env)) is None else float(test(a, b))
        return left

    def additive() -> Node:
        node = term()
        while peek() in ("+", "-"):
            node = _binary(node, _ARITH[take()], term())
        return node

    def term() -> Node:
        node = atom()
        while peek() in ("*", "/"):
            node = _binary(node, _ARITH[take()], atom())
        return node

    def atom() -> Node:
        token = take()
        if token == "(":
            node = comparison()
            take(")")
            return node
        if token == "-":
            inner = atom()
            return lambda env: None if (v := inner(env)) is None else -v
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            number = float(token)
            return lambda env: number
        if peek() == "(":
            take("(")
            args = [comparison()]
            while peek() == ",":
                take(",")
                args.append(comparison())
            take(")")
            return _function(token.upper(), args, text)
        name = token
        return lambda env: env.get(name)

    node = comparison()
    if peek() is not None:
        raise UnsupportedExpression(f"unexpected {peek()!r} in {text!r}")
    return node


def _binary(left: Node, op: Callable[[float, float], float | None], right: Node) -> Node:
    return lambda env: None if (a := left(env)) is None or (b := right(env)) is None else op(a, b)


def _function(name: str, args: list[Node], text: str) -> Node:
    if name == "FILL" and len(args) == 2:
        inner, fill = args
        return lambda env: fill(env) if (v := inner(env)) is None else v
    if name == "IF" and len(args) == 3:
        condition, yes, no = args
        return lambda env: None if (c := condition(env)) is None else (yes(env) if c else no(env))
    raise UnsupportedExpression(f"{name} with {len(args)} argument(s) is not evaluated locally ({text!r})")
