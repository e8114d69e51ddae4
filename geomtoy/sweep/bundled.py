"""The paper's sweep files, shipped with the package: run one by name, list them.

In a checkout they are the top-level `sweeps/*.toml` (what the Makefile runs); an installed
wheel carries the same files as `geomtoy/sweeps/` (setup.py copies them at build time).
Each file's first comment line names the figure it serves, e.g.
``# Figure 3 (phase diagram, n=2, m=1), paper §4: ...``.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from pathlib import Path

from geomtoy.errors import SweepError

_PACKAGE = Path(__file__).resolve().parents[1]  # geomtoy/
_PACKAGED = _PACKAGE / "sweeps"
_CHECKOUT = _PACKAGE.parent / "sweeps"


def directory() -> Path | None:
    """Where the bundled sweeps are: the wheel's package data, else a checkout's sweeps/."""
    for candidate in (_PACKAGED, _CHECKOUT):
        if candidate.is_dir() and any(candidate.glob("*.toml")):
            return candidate
    return None


def names() -> list[str]:
    """Names of the bundled sweeps (file stems), sorted."""
    where = directory()
    return sorted(p.stem for p in where.glob("*.toml")) if where else []


def resolve(name_or_path: str | Path) -> Path:
    """An existing file as given, else the bundled sweep of that name (``pentagon`` or
    ``pentagon.toml``). A bare name that is neither is a SweepError that suggests the
    closest bundled name (``pentagonn``: did you mean pentagon?); a path that does not
    exist comes back unchanged, so the sweep loader reports the missing file."""
    path = Path(name_or_path)
    if path.exists() or path.parent != Path("."):
        return path
    where = directory()
    stem = path.name.removesuffix(".toml")
    if where is not None and (where / f"{stem}.toml").is_file():
        return where / f"{stem}.toml"
    hint = difflib.get_close_matches(stem, names(), n=1, cutoff=0.6)
    if hint:
        reason = (
            f"no such file or bundled sweep (did you mean {hint[0]}? geomtoy sweeps lists them)"
        )
        raise SweepError(path, None, reason)
    return path


@dataclasses.dataclass(frozen=True)
class Bundled:
    name: str
    figure: str  # what the header says it serves: "Figure 3 (phase diagram, n=2, m=1), paper §4"
    description: str
    path: Path


def listing() -> list[Bundled]:
    """Every bundled sweep with the figure it serves and its description."""
    out = []
    for name in names():
        path = directory() / f"{name}.toml"
        text = path.read_text(encoding="utf-8")
        first = next((ln for ln in text.splitlines() if ln.startswith("#")), "")
        figure = first.lstrip("# ").split(":", 1)[0].split(", docs/", 1)[0].strip()
        description = str(tomllib.loads(text).get("description", ""))
        out.append(Bundled(name, figure, description, path))
    return out
