"""The checks of sweep values: each takes a TOML value and returns it checked (or raises
`Bad` with the reason; the caller adds the file and the key), and carries a `type` that
the key reference (`geomtoy keys`) prints. Plain Python: no NumPy, no JAX.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Sequence


class Bad(Exception):
    """A value failed validation; the caller adds the file and the key."""


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


INT32_MAX = 2**31 - 1
"""Counts (steps, samples, instances, sizes) are int32 on the device."""
UINT32_MAX = 2**32 - 1
"""The root seed is a uint32 key."""
FLOAT32_MAX = 3.4028234663852886e38  # np.finfo(np.float32).max
"""Hyperparameters are float32 on the device: larger values would be inf."""


def integer(lo: int | None = None, hi: int = INT32_MAX, what: str = "int32") -> Callable:
    def check(v):
        if not is_int(v):
            raise Bad(f"expected an integer, got {show(v)}")
        if lo is not None and v < lo:
            raise Bad(f"must be >= {lo}, got {v}")
        if v > hi or v < -hi - 1:
            raise Bad(f"{v} does not fit in {what} (at most {hi})")
        return v

    check.integer = True
    check.type = "integer" + (f" >= {lo}" if lo is not None else "")
    return check


def number(lo: float | None = None, strict: bool = False) -> Callable:
    def check(v):
        if not is_number(v):
            raise Bad(f"expected a number, got {show(v)}")
        v = float(v)
        if not math.isfinite(v):
            raise Bad(f"must be finite, got {v}")
        if abs(v) > FLOAT32_MAX:
            raise Bad(f"{v:g} overflows float32 (at most {FLOAT32_MAX:.3g})")
        if lo is not None and (v <= lo if strict else v < lo):
            raise Bad(f"must be {'>' if strict else '>='} {lo:g}, got {v:g}")
        return v

    check.type = "number" + (f" {'>' if strict else '>='} {lo:g}" if lo is not None else "")
    return check


def probability(v):
    if not is_number(v):
        raise Bad(f"expected a probability, got {show(v)}")
    v = float(v)
    if not (0.0 < v <= 1.0):
        raise Bad(f"probability {v:g} outside (0, 1]")
    return v


probability.type = "probability in (0, 1]"


def choice(options: Sequence[str]) -> Callable:
    def check(v):
        if not isinstance(v, str):
            raise Bad(f"expected one of {', '.join(options)}; got {show(v)}")
        if v not in options:
            hint = difflib.get_close_matches(v, options, n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise Bad(f"unknown value {v!r}; expected one of {', '.join(options)}{more}")
        return v

    check.type = " | ".join(options)
    return check


def per_feature(element: Callable, what: str) -> Callable:
    """A number, or a list of numbers (one per feature; the length is checked later)."""

    def check(v):
        if isinstance(v, list):
            if not v:
                raise Bad(f"expected a {what} or a list of n of them, got []")
            out = []
            for i, x in enumerate(v):
                try:
                    out.append(element(x))
                except Bad as e:
                    raise Bad(f"entry {i}: {e}") from None
            return out
        return element(v)

    check.type = f"{element.type}, or a list of n"
    return check


def importance(v):
    if isinstance(v, dict):
        if set(v) != {"decay"}:
            raise Bad(f"a table here must be {{decay = d}} (importance d**i), got {show(v)}")
        try:
            return {"decay": number(0.0, strict=True)(v["decay"])}
        except Bad as e:
            raise Bad(f"decay: {e}") from None
    return per_feature(number(0.0), "importance >= 0")(v)


importance.type = "number >= 0, a list of n, or {decay = d} (d**i)"


def feature_probability(v):
    """A probability, a list of n, or {power_law = {alpha = a, density = s}} (Liu et al.)."""
    if not isinstance(v, dict):
        return per_feature(probability, "probability in (0, 1]")(v)
    if set(v) != {"power_law"} or not isinstance(v["power_law"], dict):
        raise Bad(f"a table here must be {{power_law = {{alpha = a}}}}, got {show(v)}")
    table = v["power_law"]
    if "alpha" not in table or set(table) - {"alpha", "density"}:
        reason = f"power_law takes alpha (required) and density, got {show(table)}"
        raise Bad(reason)
    # alpha >= -1: Liu et al.'s data exponent 1 + alpha spans [0, 2] (-1: uniform frequencies)
    out = {"alpha": number(-1.0)(table["alpha"])}
    if "density" in table:
        density = number(0.0)(table["density"])
        if density > 1.0:
            raise Bad(f"power_law density must be in [0, 1], got {density:g}")
        out["density"] = density
    return {"power_law": out}


feature_probability.type = (
    "probability in (0, 1], a list of n, or {power_law = {alpha = a, density = s}}"
)


def dir_name(v):
    if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", v):
        raise Bad(f"expected a directory name (letters, digits, _.+-), got {show(v)}")
    return v


dir_name.type = "name (letters, digits, _.+-)"


def text(v):
    if not isinstance(v, str):
        raise Bad(f"expected a string, got {show(v)}")
    return v


text.type = "string"


def boolean(v):
    if not isinstance(v, bool):
        raise Bad(f"expected true or false, got {show(v)}")
    return v


boolean.type = "boolean"


def block_size(v):
    if v == "auto":
        return v
    if not is_int(v) or not 1 <= v <= INT32_MAX:
        raise Bad(f'expected an integer in 1..{INT32_MAX} or "auto", got {show(v)}')
    return v


block_size.type = 'integer >= 1, or "auto"'


def show(v) -> str:
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, str):
        return f"string {v!r}"
    if isinstance(v, dict):
        return "table {" + ", ".join(f"{k} = {show(x)}" for k, x in v.items()) + "}"
    return repr(v)


def unknown_key(key: str, known: Sequence[str]) -> str:
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")
