"""The sweep-key reference, generated from the field lists (geomtoy.spec.FIELDS, and the
SAE sweeps' geomtoy.sae_spec.FIELDS given as `sae`, e.g. `SAE_KEYS`).

`geomtoy keys` prints it and docs/keys.md is `markdown(SAE_KEYS)`; a test keeps the file up
to date, so the reference cannot drift from the keys the parsers accept. Both field lists
are JAX-free vocabulary: `geomtoy keys` starts no JAX.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

from geomtoy import sae_spec, spec

SAE = tuple[Mapping[str, spec.Field], Collection[str]]
"""An SAE sweep's field list and its static keys."""
SAE_KEYS: SAE = (sae_spec.FIELDS, tuple(sae_spec.STATIC.values()))
"""The SAE sweeps' field list and static keys (geomtoy.sae_spec.FIELDS, STATIC)."""


def _role(key: str, field: spec.Field, static: Collection[str]) -> str:
    if key in static:
        return "static"
    return "per-instance" if field.axis else "sweep"


def sae_only(sae: SAE) -> dict[str, spec.Field]:
    """The SAE sweeps' keys that a toy sweep lacks or reads otherwise ([source], [sae],
    and train keys with other defaults)."""
    return {k: f for k, f in sae[0].items() if spec.FIELDS.get(k) is not f}


def rows(
    fields: Mapping[str, spec.Field] | None = None, static: Collection[str] = spec.STATIC_KEYS
) -> list[dict[str, str]]:
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
                "static": _role(key, field, static),
                "axis": "yes" if field.axis else "no",
                "meaning": field.doc,
            }
        )
    return out


def text(sae: SAE | None = None) -> str:
    """The reference as plain text, one key per paragraph (for the terminal); with `sae`,
    then the SAE sweeps' own keys."""
    lines = _text_lines(rows())
    if sae is not None:
        lines += ["", "# SAE sweeps (a file with an [sae] table; docs/sae.md)", ""]
        lines += _text_lines(rows(sae_only(sae), set(sae[1])))
    return "\n".join(lines) + "\n"


def _text_lines(table: list[dict[str, str]]) -> list[str]:
    lines = []
    for r in table:
        where = r["static"] + ("" if r["axis"] == "yes" else ", not a grid axis")
        lines.append(f"{r['key']}  ({r['type']}; default {r['default']}; {where})")
        lines.append(f"    {r['meaning']}")
    return lines


def markdown(sae: SAE | None = None) -> str:
    """docs/keys.md: the table of every sweep key (with `sae`, the SAE sweeps' own too)."""
    head = [
        "# Sweep keys",
        "",
        "Generated from the field lists in `geomtoy/spec.py` and `geomtoy/sae_spec.py`",
        "(`geomtoy keys` prints the same); do not edit by hand. The file format, grid axes and",
        "scales are described in [sweep-file.md](sweep-file.md). *static* keys fix the compiled",
        "program: an axis over one splits the sweep into groups; *per-instance* keys are array",
        "leaves of one program; *sweep* keys take one value for the whole sweep.",
        "",
    ]
    out = head + _table(rows())
    if sae is not None:
        out += [
            "",
            "## SAE sweeps",
            "",
            "A sweep file with an `[sae]` table trains sparse autoencoders on a toy sweep's",
            "models ([sae.md](sae.md)). It takes `name`, `description`, `root_seed` and the",
            "`train` keys above, and these of its own (or with other defaults):",
            "",
        ]
        out += _table(rows(sae_only(sae), set(sae[1])))
    return "\n".join(out) + "\n"


def _table(table: list[dict[str, str]]) -> list[str]:
    cells = [
        "| `{key}` | {type} | `{default}` | {static} | {axis} | {meaning} |".format(
            **{k: v.replace("|", "\\|") for k, v in r.items()}
        )
        for r in table
    ]
    return [
        "| key | type | default | role | grid axis | meaning |",
        "|---|---|---|---|---|---|",
    ] + cells
