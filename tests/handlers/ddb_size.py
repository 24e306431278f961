"""DynamoDB's item-size rules, to measure what an item costs to write.

https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
- String: name bytes + UTF-8 bytes. Binary: name bytes + raw bytes.
- Number: name bytes + 1 byte per two significant digits (leading/trailing zeroes trimmed) + 1.
- Null/Boolean: name bytes + 1.
- List/Map: name bytes + 3 + the nested elements' sizes, each element + 1 byte.
A write request unit covers 1 KB (1,024 bytes) of item: a standard write costs ceil(size / 1024).
"""
from __future__ import annotations

import math
from decimal import Decimal
from typing import Any


def number_bytes(text: str) -> int:
    digits = format(abs(Decimal(text)), "f").replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_bytes(value: dict[str, Any]) -> int:
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "B":
        return len(inner)
    if kind == "N":
        return number_bytes(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_bytes(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(value_bytes(v) + 1 for v in inner)
    raise ValueError(f"type {kind} not covered")


def item_bytes(item: dict[str, dict[str, Any]]) -> int:
    return sum(len(name.encode("utf-8")) + value_bytes(value) for name, value in item.items())


def write_units(item: dict[str, dict[str, Any]]) -> int:
    return math.ceil(item_bytes(item) / 1024)
