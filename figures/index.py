"""Figure 8 and the gallery: a phase table per sweep, and figures/out/index.html.

For every complete results directory under --results, the phase table counts, per grid
point, the features carrying each polytope label (all seeds together) and names the best
seed's geometry; it is written as phase_table_<sweep>.csv and shown in the gallery. The
gallery links every figure of --out that has a caption (stem.json written by
geomtoy.viz.plot.save), in the paper's order (introduction first), with the paper section and
the figure's line of measured numbers.
"""

import argparse
import csv
import html
import json
import sys
from pathlib import Path

import numpy as np

from geomtoy import spec
from geomtoy.geometry import vocabulary
from geomtoy.results import store as results
from geomtoy.viz import plot

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rules  # noqa: E402  (figures/rules.py: the paper's order, stated once)

LABELS = list(vocabulary.LABELS)


def paper_order(meta: dict) -> tuple:
    """Sort key of a caption: the paper's order (`rules.paper_order`, stated once)."""
    return rules.paper_order(meta.get("section", ""), meta["stem"])


HTML_ROWS = 400
"""Rows of a phase table shown on the page (the csv holds all: 10^5 for phase_2x1_1e5)."""


def phase_table(res: results.Results) -> tuple[list[str], list[list]]:
    """(header, rows): grid axes, seeds, label counts, best seed's geometry and loss."""
    axes = list(res.meta.get("axes", []))
    point = res.column("point")
    labels = plot.per_feature(res, "polytope")
    best = res.column("best").astype(bool)
    geometry = res.column("geometry")
    loss = res.column("loss")
    present = [name for name in LABELS if np.any(labels == name)]  # labels that occur
    header = axes + ["seeds"] + present + ["best seed geometry", "best loss"]
    columns = [res.column(a) for a in axes]
    order = np.argsort(point, kind="stable")
    starts = np.flatnonzero(np.r_[True, point[order][1:] != point[order][:-1]])
    rows = []
    for idx in np.split(order, starts[1:]):  # the instances of each grid point
        b = idx[best[idx]][0]
        values = [c[b] for c in columns]
        values = [f"{v:.4g}" if isinstance(v, float | np.floating) else str(v) for v in values]
        counts = [int((labels[idx] == name).sum()) for name in present]
        rows.append(values + [len(idx)] + counts + [str(geometry[b]), f"{loss[b]:.4g}"])
    return header, rows


SAE_COLUMNS = ["l0", "explained_variance", "mmcs", "recovered_0.9", "recovered_0.99", "dead"]


def sae_table(res: results.Results) -> tuple[list[str], list[list]]:
    """(header, rows) of an SAE sweep: per toy model and SAE grid point, seed means of
    L0, explained variance, MMCS, shares of features recovered and dead latents."""
    axes = ["toy"] + list(res.meta.get("axes", []))
    point = res.column("point")
    header = axes + ["seeds", "toy geometry"] + SAE_COLUMNS
    rows = []
    for p in np.unique(point):
        idx = np.flatnonzero(point == p)
        values = [res.column(a)[idx[0]] for a in axes]
        values = [f"{v:.4g}" if isinstance(v, float | np.floating) else str(v) for v in values]
        means = [f"{np.mean(res.column(c)[idx]):.3g}" for c in SAE_COLUMNS]
        rows.append(values + [len(idx), str(res.column("geometry")[idx[0]])] + means)
    return header, rows


def table_html(header, rows) -> str:
    head = "".join(f"<th>{html.escape(h.replace('_', ' '))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c)) if c != 0 else ''}</td>" for c in r) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
figure{margin:2em 0;border-bottom:1px solid #ddd;padding-bottom:1em}
img{max-width:100%}figcaption{font-size:0.95em}.numbers{font-family:monospace;font-size:0.85em;color:#444}
table{border-collapse:collapse;font-size:0.8em;margin:0.5em 0 2em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#f4f4f4}details{margin:0.5em 0}"""


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", default="results/default")
    parser.add_argument("--out", default="figures/out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    parts = [
        "<!doctype html><meta charset='utf-8'><title>geomtoy figures</title>",
        f"<style>{STYLE}</style><h1>geomtoy: Toy Models of Superposition, reproduced</h1>",
        f"<p>Results: <code>{html.escape(args.results)}</code>. Sections refer to "
        "Elhage et al. 2022 (arXiv:2209.10652), summarised in docs/paper.md.</p>",
    ]
    captions = [json.loads(p.read_text()) for p in out.glob("fig_*.json")]
    for meta in sorted(captions, key=paper_order):
        stem = meta["stem"]
        parts.append(
            f"<figure id='{stem}'><h2>{html.escape(meta['title'])} "
            f"<small>(paper {html.escape(meta['section'])})</small></h2>"
            f"<a href='{stem}.pdf'><img src='{stem}.png' alt='{html.escape(meta['title'])}'></a>"
            f"<figcaption>{html.escape(meta['caption'])}<br><span class='numbers'>"
            f"{html.escape(meta['numbers'])}</span><br><small>sweeps: "
            f"{html.escape(', '.join(meta['sweeps']))}</small></figcaption></figure>"
        )
    explorer = out / "explorer.html"
    if explorer.exists():
        parts.append("<p><a href='explorer.html'>Interactive explorer</a></p>")

    parts.append(
        "<h2>Phase tables (figure 8)</h2><p>Per grid point: features carrying each "
        "polytope label over all seeds, and the best seed's geometry.</p>"
    )
    root = Path(args.results)
    for sweep_dir in (
        sorted(p for p in root.iterdir() if (p / "meta.json").exists()) if root.exists() else []
    ):
        try:
            res = results.open_results(sweep_dir)
        except spec.SweepError:
            continue
        header, rows = sae_table(res) if res.meta.get("family") == "sae" else phase_table(res)
        with open(out / f"phase_table_{sweep_dir.name}.csv", "w", newline="") as f:
            csv.writer(f).writerows([header] + rows)
        shown = f"; the first {HTML_ROWS} here" if len(rows) > HTML_ROWS else ""
        parts.append(
            f"<details><summary><b>{html.escape(sweep_dir.name)}</b> "
            f"({len(rows)} grid points{shown}, "
            f"<a href='phase_table_{sweep_dir.name}.csv'>csv</a>)"
            f"</summary>{table_html(header, rows[:HTML_ROWS])}</details>"
        )
    (out / "index.html").write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
