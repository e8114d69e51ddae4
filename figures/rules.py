"""Print the Makefile's generated rules: the training engine's files, the SAE sweeps'
edges to the toy sweeps they read, and the figures, from what each file declares.

- ENGINE: every library file the runner imports, directly or through the package, except
  geometry/ (geometry tables are refreshed by `geomtoy analyze`, not by training).
- SAE sweeps (an [sae] table): their results depend on the toy sweep their `[source]`
  table names (`results = "pentagon"`); a bundled synthetic source has no such edge.
- GALLERY_SWEEPS: every sweep in the gallery's order (the paper's), for the explorer page.
- Every figures/fig_*.py names the sweeps it reads (`SWEEPS`) and the first image it writes
  (`FIGURE`); its image then depends on the script, on the analysed tables of those sweeps
  and on the library files the script runs (its geomtoy imports, followed through the
  package).
Read with `ast` and `tomllib` only (no imports of geomtoy), so it runs before anything is
installed.

    python figures/rules.py > figures/out/.rules.mk      (the Makefile does this)
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Figures sharing a paper section, in the paper's order; others follow by name.
WITHIN_SECTION = (
    "fig_basic_20x5",
    "fig_basic_80x20",
    "fig_dims_per_feature",
    "fig_feature_dimensionality",
    "fig_pentagon",
    "fig_nonuniform",
    "fig_correlated",
    "fig_dynamics",
    "fig_dynamics_correlated",
)


def paper_order(section: str, stem: str) -> tuple:
    """Sort key of a figure: its first paper section (§1 first), then `WITHIN_SECTION`;
    figures without a section (follow-up work) come last. The gallery (figures/index.py)
    and the explorer's sweep order (`gallery_sweeps`) both sort by it."""
    m = re.search(r"§(\d+(?:\.\d+)*)", section or "")
    key = (0, *map(int, m.group(1).split("."))) if m else (1,)
    within = WITHIN_SECTION.index(stem) if stem in WITHIN_SECTION else len(WITHIN_SECTION)
    return key, within, stem


def declared(script: Path) -> tuple[list[str], str]:
    """(SWEEPS, FIGURE, IN_GALLERY) of a figure script, as literals (IN_GALLERY = False:
    not built by `make figures`, only by its own target)."""
    found = {}
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("SWEEPS", "FIGURE", "IN_GALLERY"):
                found[target.id] = ast.literal_eval(node.value)
    if not {"SWEEPS", "FIGURE"} <= set(found):
        raise SystemExit(f"{script}: declare SWEEPS = [...] and FIGURE = '...' at module level")
    return list(found["SWEEPS"]), found["FIGURE"], found.get("IN_GALLERY", True)


def first_section(script: Path) -> str:
    """The first `section="..."` keyword of a figure script (its caption's paper section)."""
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "section":
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
    return ""


def gallery_sweeps() -> list[str]:
    """Every sweep, those of the gallery's figures first in the gallery's order (the paper's),
    then the rest by name: the explorer page `make` builds opens on the first figure's sweep."""
    scripts = sorted(
        (ROOT / "figures").glob("fig_*.py"),
        key=lambda p: paper_order(first_section(p), declared(p)[1]),
    )
    out = [s for p in scripts if declared(p)[2] for s in declared(p)[0]]
    out += sorted(p.stem for p in (ROOT / "sweeps").glob("*.toml"))
    return list(dict.fromkeys(out))


def _module_file(name: str) -> Path | None:
    """The source file of a geomtoy module (package: its __init__), or None."""
    if not (name == "geomtoy" or name.startswith("geomtoy.")):
        return None
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(path: Path) -> set[Path]:
    out = set()
    for node in ast.parse(path.read_text()).body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        out |= {f for f in map(_module_file, names) if f is not None}
    return out


def library_files(script: Path) -> list[str]:
    """Every geomtoy source file the script imports, directly or through the package."""
    seen, todo = set(), list(_imports(script))
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo.extend(_imports(f))
    return sorted(str(f.relative_to(ROOT)) for f in seen)


RUNNERS = {"ENGINE": "geomtoy/runs/runner.py", "SAE_ENGINE": "geomtoy/sae/family.py"}
"""What trains and writes the tables: the one runner of every sweep, and in addition the
SAE family (its blocks and tables) for SAE sweeps."""
TRAINING = ("geomtoy/engine/", "geomtoy/sweep/", "geomtoy/sae/", "geomtoy/results/")
"""The folders whose files decide trained numbers and table contents; the rest of runs/
(progress, locks, jobs, signals, budget) and geometry/ (refreshed by `geomtoy analyze`)
change no trained result."""


def engine_files(runner: str) -> list[str]:
    """A runner and what it imports from the training stages and the top-level vocabulary
    (spec, registry, checks, errors)."""
    files = {runner, *library_files(ROOT / runner)}
    return sorted(f for f in files if f.startswith(TRAINING) or f.count("/") == 1 or f == runner)


def sae_sources() -> dict[str, str | None]:
    """Each SAE sweep (a file with an [sae] table) and the toy sweep its [source] reads."""
    out = {}
    for toml in sorted((ROOT / "sweeps").glob("*.toml")):
        data = tomllib.loads(toml.read_text())
        if "sae" in data:
            source = data.get("source", {}).get("results")
            out[toml.stem] = source if isinstance(source, str) else None
    return out


def pipeline() -> list[str]:
    sae = sae_sources()
    lines = [f"{var} := " + " ".join(engine_files(r)) for var, r in RUNNERS.items()]
    lines.append("SAE_SWEEPS := " + " ".join(sae))
    for sweep, source in sae.items():
        if source and (ROOT / "sweeps" / f"{source}.toml").exists():
            lines.append(f"$(RESULTS)/{sweep}/.trained: $(RESULTS)/{source}/.trained")
    return lines


def rules() -> str:
    lines, pngs = [], []
    for script in sorted((ROOT / "figures").glob("fig_*.py")):
        sweeps, figure, in_gallery = declared(script)
        png = f"$(FIGOUT)/{figure}.png"
        if in_gallery:
            pngs.append(png)
        tables = " ".join(f"$(RESULTS)/{s}/.analyzed" for s in sweeps)
        deps = " ".join(library_files(script))
        lines += [f"{png}: figures/{script.name} {tables} {deps} | $(STAMP)", "\t$(FIGRUN)"]
    explore = " ".join(
        library_files(ROOT / "geomtoy" / "viz" / "explore.py") + ["geomtoy/viz/explore.py"]
    )
    head = [
        "# Generated by figures/rules.py from the runner's imports, the sweeps' [source]"
        " tables and each figure script's SWEEPS and FIGURE; do not edit.",
        *pipeline(),
        "FIGURE_PNGS := " + " ".join(pngs),
        "EXPLORE_DEPS := " + explore,
        "GALLERY_SWEEPS := " + " ".join(gallery_sweeps()),
    ]
    return "\n".join(head + lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(rules())
