"""SAE sweep files: the toy sweeps' grammar (geomtoy.sweep.grammar.parse) over the SAE field
list (geomtoy.sae_spec, JAX-free).

A sweep with an `[sae]` table trains sparse autoencoders on the hidden activations of toy
models that an earlier sweep trained (`source.results`, a results directory relative to
the results root, i.e. the parent of --out, or absolute; `source.instances` = "best" per
grid point or "all"), or on synthetic dictionaries (`source.results = "synthetic"`). The
SAE grid is the product of the source's models with the SAE axes, times `train.seeds`.
`source.results = "synthbench"` reads a SynthSAEBench-like source (geomtoy.sae.source);
its knobs default to SynthSAEBench-16k's. Keys and defaults: docs/sae.md.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

from geomtoy import spec as S
from geomtoy import sweep as toy_sweep
from geomtoy.results import store as results
from geomtoy.sae import source as sources
from geomtoy.sae.model import ACTIVATIONS
from geomtoy.sae.source import SYNTHETIC, is_source, synthetic_dictionary
from geomtoy.sae.train import SAEShape, step_bytes
from geomtoy.sae_spec import FIELDS, SECTIONS, STATIC, SYNTHBENCH_KNOBS
from geomtoy.sweep import bundled, grammar

SCHEMA = grammar.Schema(
    FIELDS,
    sections=SECTIONS,
    top_level=S.TOP_LEVEL,
    smoke_limits=S.SMOKE_LIMITS,
)


@dataclasses.dataclass(frozen=True)
class Toys:
    """The toy models an SAE sweep reads, one row each (NumPy)."""

    ids: np.ndarray  # (T,) instance ids in the source (dictionary seeds when synthetic)
    b: np.ndarray  # (T, n)
    importance: np.ndarray  # (T, n)
    static: list  # (T,) dicts: source kind, n, m, structure, set_size
    columns: dict[str, Any]  # source columns (grid axes, geometry), prefixed "toy."
    polytope: np.ndarray  # (T, n) str: the toy's label of each feature
    fingerprint: str
    arrays: Any  # (W (T, m, n), feature_probability (T, n), synthbench leaves or None), or
    # a function returning them: a synthbench source is built on first use (a dry run or
    # a plan never orthogonalises its dictionary)
    where: str = SYNTHETIC  # the source results directory, or synthetic
    scale: str | None = None  # the scale the source was run at (None: synthetic)

    @functools.cached_property
    def _arrays(self) -> tuple:
        return self.arrays() if callable(self.arrays) else self.arrays

    @property
    def W(self) -> np.ndarray:
        return self._arrays[0]

    @property
    def feature_probability(self) -> np.ndarray:
        return self._arrays[1]

    @property
    def dist(self) -> sources.Benchmark | None:
        return self._arrays[2]


@dataclasses.dataclass(frozen=True)
class Group:
    index: int
    shape: SAEShape
    rows: np.ndarray  # global SAE instance ids
    block_size: int


@dataclasses.dataclass(frozen=True)
class SAESweep:
    name: str
    file: str
    scale: str
    sets: tuple[str, ...]
    source: str  # the sweep file's text
    spec: dict
    resolved: dict
    axes: tuple
    seeds: int
    toys: Toys
    toy_of: np.ndarray  # (I,) row into toys
    point: np.ndarray  # (I,)
    seed: np.ndarray  # (I,)
    values: dict[str, np.ndarray]  # per-instance SAE values: l1_coefficient, k, lr
    groups: tuple[Group, ...]

    @property
    def n_instances(self) -> int:
        return len(self.toy_of)

    def fingerprint(self) -> str:
        doc = {k: v for k, v in self.spec.items() if k not in S.HASH_EXCLUDED}
        doc["source_fingerprint"] = self.toys.fingerprint
        text = json.dumps(doc, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def plan_lines(self) -> list[str]:
        """What `geomtoy run --dry-run` prints: instances, groups and blocks, per group."""
        lines = [
            f"{self.name}: {self.n_instances:,} SAEs on {len(self.toys.ids):,} toy models, "
            f"{len(self.groups)} groups, {len(self.blocks())} blocks"
        ]
        for g in self.groups:
            s = g.shape
            lines.append(
                f"  group {g.index}: {s.activation} SAE width {s.width} on m={s.n_hidden} "
                f"(n={s.n_features}) B={s.batch_size} steps={s.steps}: {len(g.rows):,} SAEs "
                f"in blocks of {g.block_size:,}"
            )
        return lines

    def blocks(self) -> list[tuple[int, Group, np.ndarray]]:
        out = []
        for g in self.groups:
            for start in range(0, len(g.rows), g.block_size):
                out.append((len(out), g, g.rows[start : start + g.block_size]))
        return out


def load(path: str | Path, scale: str = "default", sets=(), results_root=None) -> SAESweep:
    """Read, check and expand an SAE sweep file; SweepError on bad input."""
    return loads(grammar.read_text(path), str(path), scale, sets, results_root)


def loads(text: str, file: str, scale: str = "default", sets=(), results_root=None) -> SAESweep:
    parsed = grammar.parse(text, file, scale, tuple(sets), SCHEMA)
    r = parsed.resolved
    synthetic = r["source.results"] == SYNTHETIC
    if r["source.results"] == sources.SYNTHBENCH:
        toys = _benchmark(r, file)
    else:
        toys = _synthetic(r) if synthetic else _from_results(r, file, results_root, scale)
    axes = parsed.axes
    combos = list(itertools.product(*(a.values for a in axes)))
    toy_of, point, seed = [], [], []
    per = {k: [] for k in ("l1", "k", "lr", "target_l0", "threshold")}
    shapes: dict[SAEShape, list[int]] = {}
    for t in range(len(toys.ids)):
        for p, combo in enumerate(combos):
            values = dict(r) | {a.key: v for a, v in zip(axes, combo)}
            shape = SAEShape(
                n_features=toys.static[t]["n_features"], n_hidden=toys.static[t]["n_hidden"],
                source=toys.static[t]["kind"], structure=toys.static[t]["structure"],
                set_size=toys.static[t]["set_size"], magnitude=toys.static[t]["magnitude"],
                output_activation=toys.static[t]["activation"],
                shared_data=toys.static[t]["kind"] in sources.DICTIONARIES,
                **{f: values[k] for f, k in STATIC.items()},
            )  # fmt: skip
            for s in range(r["train.seeds"]):
                shapes.setdefault(shape, []).append(len(toy_of))
                toy_of.append(t)
                point.append(t * len(combos) + p)
                seed.append(s)
                k, target = _sparsity(values, shape)
                per["l1"].append(values["sae.l1_coefficient"])
                per["k"].append(k)
                per["lr"].append(values["train.lr"])
                per["target_l0"].append(target)
                per["threshold"].append(values["sae.jumprelu_threshold"])
    groups = tuple(
        Group(i, shape, np.asarray(rows), _block_size(r["train.block_size"], shape, len(rows)))
        for i, (shape, rows) in enumerate(shapes.items())
    )
    return SAESweep(
        name=r["name"], file=file, scale=scale, sets=tuple(sets), source=text, spec=parsed.spec,
        resolved=r, axes=axes, seeds=r["train.seeds"], toys=toys, toy_of=np.asarray(toy_of),
        point=np.asarray(point), seed=np.asarray(seed),
        values={k: np.asarray(v) for k, v in per.items()}, groups=groups,
    )  # fmt: skip


def _sparsity(values: dict, shape: SAEShape) -> tuple[int, float]:
    """(k, the L0 the coefficient is steered to): sae.target_l0 sets k for the k
    activations (rounded, at least 1) and steers the coefficient of the others."""
    target = values["sae.target_l0"]
    k = values["sae.k"]
    if ACTIVATIONS[shape.activation].uses_k:
        k, target = (max(1, round(target)) if target > 0 else k), 0.0
    return min(k, shape.width), target


def _block_size(setting, shape: SAEShape, n: int) -> int:
    if setting == "auto":
        setting = max(1, S.AUTO_BLOCK_BYTES // step_bytes(shape))
    return max(1, min(setting, n))


def _synthetic(r: dict) -> Toys:
    n, m, d = r["source.n_features"], r["source.n_hidden"], r["source.dictionaries"]
    fp = np.broadcast_to(np.asarray(r["source.feature_probability"], np.float64), (d, n))
    static = dict(kind=SYNTHETIC, n_features=n, n_hidden=m, structure=r["source.structure"],
                  set_size=r["source.set_size"], magnitude=r["source.magnitude"],
                  activation="relu")  # fmt: skip
    return Toys(
        ids=np.arange(d), b=np.zeros((d, n)), importance=np.ones((d, n)),
        arrays=(np.stack([synthetic_dictionary(i, m, n) for i in range(d)]), np.array(fp), None),
        static=[static] * d, columns={"toy.dictionary": np.arange(d)},
        polytope=np.full((d, n), SYNTHETIC, dtype=object), fingerprint="synthetic",
    )  # fmt: skip


def _benchmark(r: dict, file: str) -> Toys:
    """The synthbench dictionaries (seeds 0, 1, ...) and their distributions."""
    n, m, d = r["source.n_features"], r["source.n_hidden"], r["source.dictionaries"]
    knobs = {k: r[f"source.{k}"] for k in BENCHMARK_KNOBS}
    knobs["rank"] = r["source.correlation_rank"]
    if not knobs["p_min"] < knobs["p_max"]:
        raise S.SweepError(file, "source.p_min", "must be below source.p_max")
    if knobs["depth"] > sources.HIERARCHY_PASSES:
        raise S.SweepError(file, "source.depth", f"at most {sources.HIERARCHY_PASSES}")
    b = knobs["branching"]
    size = knobs["roots"] * sum(b**level for level in range(knobs["depth"] + 1))
    if size > n:
        reason = f"the hierarchy holds {size} features, more than source.n_features = {n}"
        raise S.SweepError(file, "source.roots", reason)

    def build():
        built = [sources.benchmark(i, n, m, knobs) for i in range(d)]
        dist = jax.tree.map(lambda *a: np.stack(a), *(dist for _, _, dist in built))
        return np.stack([w for w, _, _ in built]), np.stack([p for _, p, _ in built]), dist

    parent = sources.hierarchy(n, knobs["roots"], knobs["branching"], knobs["depth"])
    label = np.where(parent >= 0, "hierarchy_child", "independent").astype(object)
    label[: knobs["roots"]] = "hierarchy_root"
    static = dict(kind=sources.SYNTHBENCH, n_features=n, n_hidden=m, structure="independent",
                  set_size=1, magnitude="uniform", activation="relu")  # fmt: skip
    return Toys(
        ids=np.arange(d), b=np.zeros((d, n)), importance=np.ones((d, n)),
        static=[static] * d, columns={"toy.dictionary": np.arange(d)},
        polytope=np.tile(label, (d, 1)), fingerprint="synthbench", arrays=build,
        where=sources.SYNTHBENCH,
    )  # fmt: skip


BENCHMARK_KNOBS = tuple(k for k in SYNTHBENCH_KNOBS if k != "correlation_rank")
"""The synthbench keys source.<knob> that geomtoy.sae.source.benchmark reads by name (the
correlation rank it reads as `rank`)."""


def _from_results(r: dict, file: str, root, scale: str = "default") -> Toys:
    path = Path(r["source.results"])
    if not path.is_absolute():
        path = Path(root or "results") / path
    try:
        res = results.open_results(path)
    except S.SweepError as e:
        reason = f"{path}: {e.reason}"
        if not path.exists():
            reason += f"; run `{_source_command(r['source.results'], path, scale)}` first"
        raise S.SweepError(file, "source.results", reason) from None
    meta = res.meta
    src = toy_sweep.loads(meta["source"], file=meta["file"], scale=meta["scale"], sets=meta["sets"])
    keep = ~res.column("diverged").astype(bool)
    if r["source.instances"] == "best":
        keep &= res.column("best").astype(bool)
    ids = np.flatnonzero(keep)
    rows = {}
    for g in src.groups:
        for j, i in enumerate(g.instance):
            rows[int(i)] = (g, j)
    fp, imp, static = [], [], []
    for i in ids:
        g, j = rows[int(i)]
        if not is_source(g.shape.kind):
            reason = f"toy models of kind {g.shape.kind!r} have no feature directions to recover"
            raise S.SweepError(file, "source.results", reason)
        fp.append(g.feature_probability[j])
        imp.append(g.importance[j])
        static.append(dict(kind=g.shape.kind, n_features=g.shape.n_features,
                           n_hidden=g.shape.n_hidden, structure=g.shape.structure,
                           set_size=g.shape.set_size, magnitude=g.shape.magnitude,
                           activation=g.shape.activation))  # fmt: skip
    if len({(d["n_features"], d["n_hidden"]) for d in static}) > 1:
        reason = f"{path} holds toy models of several shapes; an SAE sweep reads one (n, m)"
        raise S.SweepError(file, "source.results", reason)
    if not len(ids):
        raise S.SweepError(file, "source.results", f"{path} has no finished toy model")
    names = [c for c in res.instances.column_names if c not in ("instance", "group")]
    columns = {f"toy.{c}": res.column(c)[ids] for c in names}
    n = res.params["W"].shape[2]
    polytope = res.column("polytope", "features").reshape(-1, n)[ids]
    return Toys(
        ids=ids, b=res.params["b"][ids], importance=np.asarray(imp), static=static,
        columns=columns, polytope=polytope, fingerprint=meta["fingerprint"],
        arrays=(res.params["W"][ids], np.asarray(fp), None),
        where=str(path), scale=meta.get("scale"),
    )  # fmt: skip


def _source_command(name: str, path: Path, scale: str) -> str:
    """The command that makes a missing toy source: a bundled sweep of that name run into
    `path`, at the SAE sweep's scale."""
    sweep = Path(name).name if Path(name).name in bundled.names() else "SWEEP.toml"
    command = f"geomtoy run {sweep}" + ("" if scale == "default" else f" --scale {scale}")
    return command + ("" if path == Path("results") / sweep else f" --out {path}")
