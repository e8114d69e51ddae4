"""What an SAE reads: the hidden activations of a toy model, or of a synthetic dictionary.

Sources: the tied toy model kinds without a privileged hidden basis (`is_source`, read
from the model-kind registry: relu_output and linear), whose hidden vector is h = W x
(W of shape (m, n), columns are the features), and `synthetic`, a dictionary of n random
unit directions in m dimensions (`synthetic_dictionary`) under the same sparse feature
distribution, with no readout (its downstream loss is NaN). Kinds with a privileged
hidden basis (relu_hidden, abs) are not sources: their hidden vector ReLU(W x) does not
hold the features as directions.

`synthbench`: a SynthSAEBench-like source (Chanin and Garriga-Alonso 2026, SAELens'
synthetic module), a dictionary of n unit directions in m dimensions (random, then
orthogonalised by a few Adam steps on the squared off-diagonal cosines) under a feature
distribution with the benchmark's knobs (`Benchmark`, built by `benchmark`):
  - firing probabilities Zipfian in the feature index: 1 / i^exponent rescaled to
    [p_min, p_max];
  - low-rank correlation: a Gaussian copula with correlation F F^T + diag(1 - rowsum F^2),
    F (n, rank) ~ N(0, correlation_scale^2): feature i fires when its latent Gaussian is
    above the normal quantile of 1 - p_i;
  - a hierarchy of `roots` trees (the most frequent features), `branching` children per
    node, `depth` levels below the roots (SAELens' max_depth: depth 1 is a root with
    leaf children, so a tree holds sum_{l <= depth} branching^l features): a child fires
    only with its parent, the children of a parent are mutually exclusive (a uniformly
    random one of the active siblings stays), and its magnitude is scaled by its
    parent's value over the parent's mean. Probabilities are compensated as SAELens'
    compensate_probabilities does (`conditional_probabilities`): a child's is divided by
    its parent's Zipf value and by its chance of winning the exclusion, so its marginal
    is its Zipf value unless that asks for more than 1;
  - magnitudes ReLU(mean_i + std_i N(0, 1)) with mean_i linear in i from magnitude_start
    to magnitude_end and std_i folded normal |N(std_mean, std_std^2)| per feature.
Its labels (features.parquet `polytope`): hierarchy_root, hierarchy_child, independent.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from geomtoy.engine import models
from geomtoy.engine.models import Params
from geomtoy.registry import SAE_DICTIONARIES as DICTIONARIES  # no readout, no toy loss
from geomtoy.registry import SYNTHBENCH as SYNTHBENCH  # the source names, re-exported
from geomtoy.registry import SYNTHETIC as SYNTHETIC
from geomtoy.sae.model import unit_columns
from geomtoy.sae_spec import MAX_DEPTH

HIERARCHY_PASSES = MAX_DEPTH
"""Parent-to-child passes of the benchmark sampler: one per level below the roots."""
EXCLUSION_ITERATIONS = 100
"""Fixed-point iterations of the mutual-exclusion compensation (SAELens' limit)."""


def is_source(kind: str) -> bool:
    """Whether an SAE can read this toy model kind (or the synthetic dictionary)."""
    if kind in DICTIONARIES:
        return True
    k = models.MODELS.get(kind)
    return k is not None and not (k.privileged_hidden or k.untied)


SOURCES = (*(k for k in models.MODELS if is_source(k)), *DICTIONARIES)


def synthetic_dictionary(seed: int, n_hidden: int, n_features: int) -> np.ndarray:
    """n random unit directions in m dimensions (m, n), a pure function of the seed."""
    D = jax.random.normal(jax.random.key(seed), (n_hidden, n_features), jnp.float32)
    return np.asarray(unit_columns(D))


def hidden(toy: Params, x: jax.Array) -> jax.Array:
    """The toy model's hidden activations h = W x (m, B) of a feature-major batch x."""
    return toy.W @ x


def readout(source: str, toy: Params, h: jax.Array, activation: str = "relu") -> jax.Array:
    """The toy model's output from a hidden vector h: f(W^T h + b), f its output
    nonlinearity (models.ACTIVATIONS) if its kind has one."""
    z = toy.W.T @ h + toy.b[:, None]
    return models.ACTIVATIONS[activation](z) if models.MODELS[source].output_activation else z


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Benchmark:
    """The per-feature leaves of a synthbench distribution (a leading instance axis when
    stacked); every source carries them, inert (`Benchmark.inert`) unless synthbench."""

    parent: jax.Array  # (n,) int32: the parent feature, -1 for roots and free features
    threshold: jax.Array  # (n,): the copula threshold of a feature's latent Gaussian
    factor: jax.Array  # (n, rank): low-rank correlation factor F
    diag: jax.Array  # (n,): sqrt(1 - rowsum F^2)
    mean: jax.Array  # (n,): mean magnitude
    std: jax.Array  # (n,): magnitude standard deviation

    @classmethod
    def inert(cls, n: int) -> Benchmark:
        z = np.zeros(n, np.float32)
        return cls(np.full(n, -1, np.int32), z, np.zeros((n, 0), np.float32), z, z, z)


def zipf_probabilities(n: int, exponent: float, p_max: float, p_min: float) -> np.ndarray:
    """1 / i^exponent for i = 1..n, rescaled linearly onto [p_min, p_max] (SAELens)."""
    q = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return p_min + (p_max - p_min) * (q - q.min()) / max(q.max() - q.min(), 1e-300)


def hierarchy(n: int, roots: int, branching: int, depth: int) -> np.ndarray:
    """(n,) parent index: roots are features 0..roots-1, each of the `depth` levels below
    them follows the one above in order (child j of node a of the level above: next
    level's a * branching + j; SAELens' breadth-first order); the remaining features are
    free (-1)."""
    parent = np.full(n, -1, np.int64)
    level, start = np.arange(roots), roots
    for _ in range(depth):
        children = start + np.arange(len(level) * branching)
        if children[-1] >= n:
            raise ValueError(f"a hierarchy of depth {depth} needs more than {n} features")
        parent[children] = np.repeat(level, branching)
        level, start = children, start + len(children)
    return parent


def exclusion_wins(c: np.ndarray) -> np.ndarray:
    """(G, b) E[1/K | sibling i active] for G groups of b siblings, each active on its own
    with probability c (G, b), K the number of active siblings: sibling i's chance of
    being the one that stays. The other siblings' count is Poisson-binomial (a
    convolution, one sibling at a time)."""
    G, b = c.shape
    out = np.empty((G, b))
    for i in range(b):
        count = np.zeros((G, b))
        count[:, 0] = 1.0  # P(j of the other siblings active)
        for j in range(b):
            if j != i:
                shifted = np.pad(count, ((0, 0), (1, 0)))[:, :b]
                count = count * (1.0 - c[:, j : j + 1]) + shifted * c[:, j : j + 1]
        out[:, i] = count @ (1.0 / np.arange(1, b + 1))
    return out


def conditional_probabilities(p: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """(n,) the probability each feature is drawn with before the hierarchy is applied:
    p for free features and roots; p_i / p_parent for an only child; for mutually
    exclusive siblings the fixed point c_i = min(1, p_i / (p_parent win_i(c))), win_i
    from `exclusion_wins` (SAELens' compensate_probabilities, its iteration and limit)."""
    cond = np.where(parent >= 0, p / p[np.maximum(parent, 0)], p)
    kids = np.flatnonzero(parent >= 0)
    kids = kids[np.argsort(parent[kids], kind="stable")]
    _, counts = np.unique(parent[kids], return_counts=True)
    groups = np.split(kids, np.cumsum(counts)[:-1]) if len(kids) else []
    for b in set(counts[counts >= 2].tolist()):
        g = np.stack([k for k in groups if len(k) == b])
        base, up = p[g], p[parent[g[:, :1]]]
        c = np.minimum(base / up, 1.0)
        for _ in range(EXCLUSION_ITERATIONS):
            new = np.minimum(base / (up * exclusion_wins(c)), 1.0)
            done, c = np.max(np.abs(new - c)) < 1e-8, new
            if done:
                break
        cond[g] = c
    return cond


def orthogonalise(D: np.ndarray, steps: int, lr: float) -> np.ndarray:
    """Unit columns of D (m, n) after `steps` Adam steps on the mean squared off-diagonal
    cosine, renormalised after each step."""
    opt = optax.adam(lr)

    def cost(D):  # mean over the n^2 entries of G = D^T D with its diagonal zeroed,
        # as ||D D^T||_F^2 - sum_i ||d_i||^4: (m, m), never the (n, n) Gram matrix
        n = D.shape[1]
        return (jnp.sum((D @ D.T) ** 2) - jnp.sum(jnp.sum(D**2, axis=0) ** 2)) / n**2

    @jax.jit
    def update(D, state):
        updates, state = opt.update(jax.grad(cost)(D), state)
        return unit_columns(D + updates), state

    D = unit_columns(jnp.asarray(D, jnp.float32))
    state = opt.init(D)
    for _ in range(steps):
        D, state = update(D, state)
    return np.asarray(D)


def benchmark(seed: int, n: int, m: int, knobs: dict) -> tuple[np.ndarray, np.ndarray, Benchmark]:
    """(dictionary W (m, n), firing probabilities p (n,), Benchmark leaves) of one
    synthbench source, a pure function of the seed and the knobs (the sweep's source.*)."""
    rng = np.random.default_rng(seed)
    p = zipf_probabilities(n, knobs["zipf_exponent"], knobs["p_max"], knobs["p_min"])
    parent = hierarchy(n, knobs["roots"], knobs["branching"], knobs["depth"])
    conditional = conditional_probabilities(p, parent)
    from_normal = jax.scipy.special.ndtri(jnp.asarray(1.0 - np.minimum(conditional, 1.0)))
    F = rng.standard_normal((n, knobs["rank"])) * knobs["correlation_scale"]
    rowsum = np.sum(F**2, axis=1)
    if rowsum.size and rowsum.max() > 0.99:  # keep every diagonal term >= 0.01 (SAELens)
        F, rowsum = F * np.sqrt(0.99 / rowsum.max()), rowsum * 0.99 / rowsum.max()
    mean = np.linspace(knobs["magnitude_start"], knobs["magnitude_end"], n)
    std = np.abs(knobs["std_mean"] + knobs["std_std"] * rng.standard_normal(n))
    D = synthetic_dictionary(seed, m, n)
    D = orthogonalise(D, knobs["orthogonalise_steps"], knobs["orthogonalise_lr"])
    f32 = lambda a: np.asarray(a, np.float32)
    dist = Benchmark(parent.astype(np.int32), f32(from_normal), f32(F), f32(np.sqrt(1 - rowsum)),
                     f32(mean), f32(std))  # fmt: skip
    return D, p, dist


def benchmark_rows(n: int, rank: int) -> int:
    """Rows of uniforms one sample of a synthbench source needs."""
    return 3 * n + rank


def benchmark_features(dist: Benchmark, U: jax.Array) -> jax.Array:
    """Features x (n, B) of one synthbench source from uniforms U (benchmark_rows, B)."""
    n, r = dist.factor.shape
    N = jax.scipy.special.ndtri(jnp.clip(U, 2.0**-25, 1.0 - 2.0**-24))
    z = dist.factor @ N[n : n + r] + dist.diag[:, None] * N[:n]
    active = z > dist.threshold[:, None]
    child = (dist.parent >= 0)[:, None]
    up = jnp.maximum(dist.parent, 0)
    priority = U[2 * n + r :]
    for _ in range(HIERARCHY_PASSES):
        active = active & (~child | active[up])
        bid = jnp.where(active & child, priority, -1.0)
        top = jax.ops.segment_max(bid, up, num_segments=n)
        active = active & (~child | (bid >= top[up]))
    base = jnp.where(
        active, jax.nn.relu(dist.mean[:, None] + dist.std[:, None] * N[n + r : 2 * n + r]), 0.0
    )
    x = base
    scale = jnp.where(dist.mean > 0, 1.0 / jnp.maximum(dist.mean, 1e-30), 0.0)
    for _ in range(HIERARCHY_PASSES):
        x = jnp.where(child, base * x[up] * scale[up][:, None], base)
    return x
