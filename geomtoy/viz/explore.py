"""The explorer: one self-contained HTML page to browse every trained model of sweeps.

    geomtoy explore DIR [DIR ...] [--out FILE]

After a sweep a researcher wants to move through the grid and see what each model
learned, not only read static figures. `build_explorer` reads complete results
directories (`results.open_results`) and writes one HTML file that needs no server and no
network: plain JavaScript, inline SVG and canvas, the data embedded. The page has a
sweep picker, one control per grid axis and a seed picker (default: the grid point's
best seed), and for the selected model the views of the paper:

- the feature directions, the columns of W (paper §1): in the plane for m = 2, on a
  line for m = 1, and for m > 2 each tegum factor in its own subspace (its columns
  projected on their top 2 or 3 principal directions, 3-D ones rotatable by drag),
  coloured by importance and labelled by polytope (§5.1);
- W^T W and the bias as heatmaps, and the bars of ||W_i|| coloured by interference (§3.2);
- the features table (norm, D_i, interference, bias, factor, polytope, §3.2, §5.1);
- a phase map over two chosen axes (or an axis and the seed), each cell coloured by the
  best seed's geometry summary, or by the norm and interference of one feature as in
  the paper's phase diagram (§4); clicking a cell selects that model (arrow keys move);
  under it every feature's D_i and the model's D* along the map's x axis (§5.1);
- for ReLU-hidden and abs models, the per-neuron stack plot (§8, §9; abs weights
  rescaled as in footnote 15);
- the SAEs that read the model (`geomtoy.viz.saes`: SAE results directories given, or
  beside a toy one with its fingerprint as their source): their scores and decoder
  columns, drawn over the features for m = 2, as cosines to the true features otherwise.

The page reflows with the window: three columns on a laptop (the features table across two,
every column in view at 1400 px), two under 1250 px, one under 900 px; the table's key
columns (feature, polytope, D_i, fit error) come first and stay pinned while the rest
scrolls. `make figures` lists the sweeps in the gallery's order, so the page opens on the
paper's first figure's sweep.

Data are embedded compactly (`geomtoy.viz.payload`): each table column is one
little-endian typed array in base64, float16 only for large sweeps, strings and rows
de-duplicated, models of different shapes stored ragged. A sweep of 10,000 models with n = 20, m = 5 makes a page
of 11.5 MB (float32); with m = 20 16 MB (float16 weights). The page decodes a sweep when
it is first picked; a redraw touches one model only, and tables of more than 120
features render only the rows in view.

Test hooks: the page reads `location.hash` (``#sweep=0&data.feature_probability=3&seed=1``,
axis values by index; also ``instance=``, ``x=``, ``y=``, ``color=``) and writes its
state as JSON into ``<pre id="state">`` and caught errors into ``<pre id="errors">``;
``window.explorer`` exposes ``select``, ``state`` and ``bench``.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from geomtoy.results import store as results
from geomtoy.spec import SweepError
from geomtoy.viz import saes
from geomtoy.viz.arguments import DEFAULT_OUT, add_arguments  # noqa: F401 (re-exported)
from geomtoy.viz.payload import sweep_payload

ASSET_NAMES = ("explorer.html", "explorer.css")
JS_FILES = ("data.js", "directions.js", "panels.js", "map.js", "saes.js", "app.js")
"""The page's script, in order: concatenated into one closure inside explorer.html, so the
parts share their top-level names (data.js first: helpers and state every other part uses;
app.js last: wiring and start-up)."""


# ---------------------------------------------------------------- the page


def _asset(name: str) -> str:
    return (resources.files("geomtoy.viz") / "assets" / name).read_text(encoding="utf-8")


def _script_json(obj) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def render(payloads: list[dict], title: str = "geomtoy explorer") -> str:
    """The HTML page for already loaded sweeps (`sweep_payload`)."""
    template, css = (_asset(n) for n in ASSET_NAMES)
    js = "\n".join(_asset(n) for n in JS_FILES)
    index = [
        {k: p[k] for k in ("name", "path", "n_instances", "description", "scale")} for p in payloads
    ]
    names = [p["name"] for p in payloads]
    for entry in index:  # the picker tells apart sweeps of one name by their directory
        entry["label"] = (
            entry["name"]
            if names.count(entry["name"]) == 1
            else f"{entry['name']} ({entry['path']})"
        )
    data = "\n".join(
        f'<script type="application/json" id="sweep-{i}">{_script_json(p)}</script>'
        for i, p in enumerate(payloads)
    )
    parts = {
        "{{TITLE}}": html.escape(title),
        "/*{{CSS}}*/": css,
        "{{INDEX}}": _script_json(index),
        "<!--{{DATA}}-->": data,
        "/*{{JS}}*/": js,
    }
    # one pass over the template only: nothing inserted is searched again
    return re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)], template)


def _page(dirs: Sequence[str | Path]) -> str:
    """The explorer page for results directories (each once): toy sweeps, each with the SAE
    sweeps that read it (`saes.attach`: given ones and those beside it)."""
    if not dirs:
        raise SweepError("geomtoy explore", None, "no results directory given")
    toys, found = saes.attach(dirs)
    named = {Path(d).resolve() for d in dirs}
    payloads = []
    for t in toys:
        toy = _or_skip(sweep_payload, t, named)
        if toy is not None:
            sae = [_or_skip(saes.sae_payload, d, named) for d in found[t]]
            payloads.append(toy | {"saes": [p for p in sae if p is not None]})
    if not payloads:
        raise SweepError(dirs[0], None, "no complete, readable results directory here")
    return render(payloads, title="geomtoy explorer: " + ", ".join(p["name"] for p in payloads))


def _or_skip(load, d: Path, named: set[Path]) -> dict | None:
    """`load(d)`; a directory found (beside another, or under a results root) rather than
    named that cannot be read is skipped with one warning line, so it never stops the
    page of the others; a named one is refused (SweepError)."""
    try:
        return load(d)
    except SweepError as e:
        if Path(d).resolve() in named:
            raise
        print(f"geomtoy explore: warning: skipped a damaged directory ({e})", file=sys.stderr)
        return None


def show(dirs: str | Path | Sequence[str | Path], height: int = 760) -> None:
    """Display the explorer for `dirs` inline in a notebook: the same self-contained page
    as `geomtoy explore`, in an iframe (needs IPython)."""
    from IPython.display import HTML, display

    dirs = [dirs] if isinstance(dirs, str | Path) else list(dirs)
    page = html.escape(_page(dirs), quote=True)
    frame = f'<iframe srcdoc="{page}" style="width:100%;height:{height}px;border:0"></iframe>'
    display(HTML(f"<div>{frame}</div>"))  # a bare iframe makes IPython warn


def build_explorer(dirs: Sequence[str | Path], out: str | Path, overwrite: bool = False) -> Path:
    """Write the explorer page for the results directories `dirs` to `out`; returns `out`.

    Raises SweepError (the CLI's exit 2) for a directory that is not a complete results
    directory, or an output path that cannot be written; an existing file at `out` is
    replaced only if it is an explorer page (or with `overwrite`).
    """
    out = Path(out)
    inside = out.parent.resolve()
    if results.ResultsDir(inside).meta.exists() or inside.name == "blocks":
        reason = "inside a results directory; write the page elsewhere, e.g. --out explorer.html"
        raise SweepError(out, None, reason)
    if out.is_file() and not overwrite and not is_explorer_page(out):
        reason = "exists and is not an explorer page; give another --out, or --overwrite"
        raise SweepError(out, None, reason)
    page = _page(dirs)
    if out.is_dir():
        raise SweepError(
            out, None, "is a directory; give the HTML file to write, e.g. --out explorer.html"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        results.atomic_write_bytes(out, page.encode("utf-8"))
    except OSError as e:
        raise SweepError(out, None, f"cannot write: {e.strerror or e}") from None
    return out


def is_explorer_page(path: Path) -> bool:
    """Whether `path` holds a page `build_explorer` wrote (its title, near the start)."""
    try:
        with open(path, "rb") as f:
            return b"<title>geomtoy explorer" in f.read(4096)
    except OSError:
        return False


def describe(out: Path) -> str:
    """One line about a written page."""
    return f"{out}: explorer page, {out.stat().st_size / 1e6:.1f} MB; open it in a browser"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m geomtoy.viz.explore DIR [DIR ...] [--out FILE]`; 0, or 2 with one line for bad input."""

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str):
            self.exit(2, f"{self.prog}: error: {message}\n")

    parser = add_arguments(_Parser(prog="geomtoy explore", description=__doc__.split("\n\n")[0]))
    args = parser.parse_args(argv)
    try:
        out = build_explorer(args.dirs, args.out, args.overwrite)
    except SweepError as e:
        print(f"geomtoy explore: error: {e}", file=sys.stderr)
        return 2
    print(describe(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
