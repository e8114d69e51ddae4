"""Compact JSON encoding for the explorer page: typed arrays in base64, de-duplicated
strings and rows, strict JSON (no NaN). NumPy only."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import numpy as np

_CODES = {"f4": "<f4", "f2": "<f2", "u1": "|u1", "u2": "<u2", "i2": "<i2", "i4": "<i4", "u4": "<u4"}


def array(values, code: str) -> dict:
    """One typed array as {"dtype", "b64", "size"} (little-endian, what JS typed arrays read)."""
    a = np.asarray(values).astype(np.dtype(_CODES[code]), copy=False)
    a = np.ascontiguousarray(a).reshape(-1)
    return {
        "dtype": code,
        "size": int(a.size),
        "b64": base64.b64encode(a.tobytes()).decode("ascii"),
    }


def int_code(values: np.ndarray, signed: bool = False) -> str:
    """Smallest typed-array code that holds every value."""
    lo = int(values.min()) if values.size else 0
    hi = int(values.max()) if values.size else 0
    if signed or lo < 0:
        return "i2" if -(2**15) <= lo and hi < 2**15 else "i4"
    return "u1" if hi < 2**8 else "u2" if hi < 2**16 else "u4"


def ints(values, signed: bool = False) -> dict:
    """An integer typed array of the smallest code that holds it."""
    values = np.asarray(values)
    return array(values, int_code(values, signed))


def codes(strings: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """De-duplicate strings: (table in order of first appearance, code per string)."""
    table: dict[str, int] = {}
    out = np.fromiter(
        (table.setdefault(str(s), len(table)) for s in strings), np.int64, len(strings)
    )
    return list(table), out


def dedupe_rows(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ragged float rows -> (values of the distinct rows concatenated, their offsets, row id
    per input)."""
    table: dict[bytes, int] = {}
    distinct: list[np.ndarray] = []
    ids = np.empty(len(rows), np.int64)
    for i, r in enumerate(rows):
        r = np.asarray(r, np.float32)
        key = r.tobytes() + str(r.size).encode()
        k = table.get(key)
        if k is None:
            k = table[key] = len(distinct)
            distinct.append(r)
        ids[i] = k
    offsets = np.concatenate([[0], np.cumsum([r.size for r in distinct])]).astype(np.int64)
    values = np.concatenate(distinct) if distinct else np.zeros(0, np.float32)
    return values, offsets, ids


def finite_json(x):
    """A float for JSON: NaN and inf become None (JSON has no NaN)."""
    x = float(x)
    return x if math.isfinite(x) else None


def jsonable(obj):
    """meta.json content made strictly JSON (no NaN) for embedding."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float):
        return finite_json(obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    return str(obj)
