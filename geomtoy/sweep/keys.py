"""The sweep-key reference, generated from the field list (geomtoy.spec.FIELDS).

`geomtoy keys` prints it and docs/keys.md is `markdown()`; a test keeps the file up to date,
so the reference cannot drift from the keys the parser accepts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from geomtoy import spec


def _role(key: str, field: spec.Field) -> str:
    if key in spec.STATIC_KEYS:
        return "static"
    return "per-instance" if field.axis else "sweep"


def rows(fields: Mapping[str, spec.Field] | None = None) -> list[dict[str, str]]:
    """One row per key: key, type, default, role (static: fixes the program; per-instance:
    an array leaf; sweep: one value for the whole sweep), axis, meaning (all strings)."""
    out = []
    for key, field in (spec.FIELDS if fields is None else fields).items():
        if field.default is spec.REQUIRED:
            default = "required"
        elif field.default is None:
            default = "none"
        else:
            default = json.dumps(field.default)
        out.append(
            {
                "key": key,
                "type": getattr(field.check, "type", "value"),
                "default": default,
                "static": _role(key, field),
                "axis": "yes" if field.axis else "no",
                "meaning": field.doc,
            }
        )
    return out


def text() -> str:
    """The reference as plain text, one key per paragraph (for the terminal)."""
    lines = []
    for r in rows():
        where = r["static"] + ("" if r["axis"] == "yes" else ", not a grid axis")
        lines.append(f"{r['key']}  ({r['type']}; default {r['default']}; {where})")
        lines.append(f"    {r['meaning']}")
    return "\n".join(lines) + "\n"


def markdown() -> str:
    """docs/keys.md: the table of every sweep key."""
    head = [
        "# Sweep keys",
        "",
        "Generated from the field list in `geomtoy/spec.py` (`geomtoy keys` prints the same);",
        "do not edit by hand. The file format, grid axes and scales are described in",
        "[sweep-file.md](sweep-file.md). *static* keys fix the compiled program: an axis over",
        "one splits the sweep into groups; *per-instance* keys are array leaves of one program;",
        "*sweep* keys take one value for the whole sweep.",
        "",
        "| key | type | default | role | grid axis | meaning |",
        "|---|---|---|---|---|---|",
    ]
    cells = [
        "| `{key}` | {type} | `{default}` | {static} | {axis} | {meaning} |".format(
            **{k: v.replace("|", "\\|") for k, v in r.items()}
        )
        for r in rows()
    ]
    return "\n".join(head + cells) + "\n"
