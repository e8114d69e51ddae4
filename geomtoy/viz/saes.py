"""The SAEs of a toy sweep, for the explorer's SAE card.

An SAE results directory (`geomtoy run` of a sweep with an `[sae]` table) records the toy
sweep it read: `source_fingerprint` in its meta.json is the toy sweep's fingerprint, and
`spec.source.results` its directory, relative to the SAE directory's parent (the results
root). `attach` pairs SAE directories with toy ones; `sae_payload` encodes one SAE
directory for the page: per SAE its toy instance, grid values, scores, decoder columns,
the cosines between them and the true features (`geometry.recovery`) and each true
feature's recovery.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geomtoy.geometry import recovery
from geomtoy.results import store as results
from geomtoy.spec import SweepError
from geomtoy.viz.encode import array, codes, finite_json, ints

COS_F32_BUDGET = 4_000_000
"""Bytes of float32 cosines above which an SAE sweep's cosine tables are float16."""

SCORES = {
    "l0": "l0",
    "mmcs": "mmcs",
    "rec90": "recovered_0.9",
    "rec99": "recovered_0.99",
    "ev": "explained_variance",
    "mse": "mse",
    "loss": "loss",
}
"""Payload name -> instances.parquet column of the per-SAE scores the card lists."""


def read_meta(path: Path) -> dict | None:
    """meta.json of a directory, or None if it has none (SweepError if unreadable)."""
    return results.ResultsDir(Path(path)).read_meta()


def is_sae(meta: dict | None) -> bool:
    return bool(meta) and meta.get("family") == "sae"


def source_dir(path: Path, meta: dict) -> Path | None:
    """The toy results directory an SAE directory read (None for synthetic dictionaries)."""
    src = meta.get("spec", {}).get("source", {}).get("results")
    if not src or src == "synthetic":
        return None
    src = Path(src)
    return src if src.is_absolute() else Path(path).parent / src


def siblings(toy: Path) -> list[Path]:
    """Complete SAE results directories beside a toy results directory (one results root)."""
    out = []
    for d in sorted(Path(toy).resolve().parent.iterdir()):
        if d.is_dir() and (d / "meta.json").exists():
            try:
                meta = read_meta(d)
            except SweepError:  # a damaged neighbour is not ours to report
                continue
            if is_sae(meta) and meta["status"] == "complete":
                out.append(d)
    return out


def _complete_toy(d: Path) -> bool:
    try:
        meta = read_meta(d)
    except SweepError:
        return False
    return bool(meta) and meta["status"] == "complete" and not is_sae(meta)


def expand(dirs) -> list[Path]:
    """Results directories as given, a results root (a directory without meta.json that holds
    results directories) replaced by its complete toy sweeps (their SAEs are beside them)."""
    out = []
    for d in map(Path, dirs):
        inner = []
        if d.is_dir() and not (d / "meta.json").exists():
            inner = [c for c in sorted(d.iterdir()) if c.is_dir() and _complete_toy(c)]
        out += inner or [d]
    return out


def attach(dirs) -> tuple[list[Path], dict[Path, list[Path]]]:
    """Split the given directories (`expand`ed) into toy sweeps (in order, each once, plus the
    source of any SAE directory given without it) and the SAE directories of each: those
    given, and those beside each toy directory whose source fingerprint is the toy sweep's."""
    toys: dict[Path, Path] = {}  # resolved -> as given
    given: list[Path] = []
    for d in expand(dirs):
        meta = read_meta(d)
        if is_sae(meta):
            src = source_dir(d, meta)
            if src is None:
                reason = "SAEs of synthetic dictionaries: no toy model to show"
                raise SweepError(d, "source.results", reason)
            if not (src / "meta.json").exists():
                reason = f"its toy results {src} are not there; give the toy results directory too"
                raise SweepError(d, "source.results", reason)
            given.append(d.resolve())
            d = src
        toys.setdefault(d.resolve(), d)
    saes: dict[Path, list[Path]] = {}
    for key, t in toys.items():
        fingerprint = (read_meta(t) or {}).get("fingerprint")
        found = given + (siblings(t) if key.exists() else [])
        mine = [d for d in found if read_meta(d).get("source_fingerprint") == fingerprint]
        saes[t] = list(dict.fromkeys(mine))
    return list(toys.values()), saes


def _per_sae(res: results.Results, n_toy: int) -> dict[str, list[np.ndarray]]:
    """Per SAE: decoder columns (m, width), cosines to the true features (n, width),
    latents ordered by the feature they match best, live latents, recovery (n,)."""
    P = res.params
    width = np.asarray(P["width"], np.int64)
    cos = recovery.cosines(P["W"], P["W_dec"])  # (I, n, width_max)
    _, match = recovery.latent_match(P["W"], P["W_dec"])
    rec = np.full((len(width), n_toy), np.nan)
    f_inst, f_feat = res.column("instance", "features"), res.column("feature", "features")
    rec[f_inst, f_feat] = res.column("recovery", "features")
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("dec", "cos", "order", "live", "rec")}
    for i, w in enumerate(width):
        c = cos[i, :, :w]
        best = c[np.clip(match[i, :w], 0, None), np.arange(w)]
        out["dec"].append(P["W_dec"][i, :, :w].reshape(-1))
        out["cos"].append(c.reshape(-1))
        out["order"].append(np.lexsort((-best, np.where(match[i, :w] < 0, n_toy, match[i, :w]))))
        out["live"].append(np.nan_to_num(P["frequency"][i, :w]) > 0)
        out["rec"].append(rec[i])
    return out


def sae_payload(path: str | Path) -> dict:
    """One SAE results directory for the page (SweepError if it is not a complete one)."""
    res = results.open_results(path)
    meta, P = res.meta, res.params
    col = {name: res.column(name) for name in res.instances.column_names}
    J = len(col["instance"])
    if J and not np.array_equal(col["instance"], np.arange(J)):
        raise SweepError(
            res.path / "instances.parquet", "instance", "instance ids are not 0 .. I-1"
        )
    n, m = int(P["W"].shape[2]), int(P["W"].shape[1])
    width = np.asarray(P["width"], np.int64)
    per = _per_sae(res, n)
    cos = np.concatenate(per["cos"]) if J else np.zeros(0)
    axes = []
    for key in meta.get("axes") or {}:
        labels, index = codes([f"{v:.4g}" if isinstance(v, float) else str(v) for v in col[key]])
        axes.append({"key": key, "labels": labels, "index": ints(index)})
    arrays = {k: array(col[c], "f4") for k, c in SCORES.items()}
    arrays |= {
        "toy": ints(col["toy"]),
        "seed": ints(col["seed"]),
        "width": ints(width),
        "dead": ints(col["dead"]),
        "best": array(np.asarray(col["best"], bool), "u1"),
        "doff": array(np.concatenate([[0], np.cumsum(width)]), "u4"),
        "dec": array(np.concatenate(per["dec"]) if J else np.zeros(0), "f4"),
        "cos": array(cos, "f4" if 4 * cos.size <= COS_F32_BUDGET else "f2"),
        "order": ints(np.concatenate(per["order"]) if J else np.zeros(0, np.int64)),
        "live": array(np.concatenate(per["live"]) if J else np.zeros(0), "u1"),
        "rec": array(np.concatenate(per["rec"]) if J else np.zeros(0), "f4"),
    }
    spec = meta.get("spec", {})
    return {
        "name": str(meta["name"]),
        "path": str(res.path),
        "description": str(spec.get("description", "")),
        "activation": str(spec.get("sae", {}).get("activation", "")),
        "instances": str(spec.get("source", {}).get("instances", "")),
        "wall_time_s": finite_json(meta.get("wall_time_s") or 0.0),
        "n_saes": J,
        "n": n,
        "m": m,
        "axes": axes,
        "arrays": arrays,
    }
