"""Obviously correct NumPy (float64) reference of the tegum decomposition, one model.

`tegum_factors(W)` reads polytopes as `geomtoy.geometry.polytopes` does today (geometry
v3: directions only); `tegum_factors(W, version=2)` as geometry v2 did (equal norms,
sorted cosine rows within 0.05, weak interference bounded for every member), the frozen
"before" of the label comparison in tests/test_geometry_v3.py.

Recursive splitting as a person would do it: take each connected component of the
graph linking represented features at |cos| > LINK_COS; if it passes a vocabulary check
it is a factor, else remove its weakest links (every link as weak as the weakest link
of its maximum spanning tree, found by Kruskal) and treat each piece in turn. Features
left in no polytope form `other` factors, one per component among themselves.
"""

import numpy as np

from geomtoy.geometry import POLYTOPES, polytopes


def components(nodes, linked):
    """Connected components (sorted lists) of `nodes` under the boolean matrix `linked`."""
    todo, out = set(nodes), []
    while todo:
        start = min(todo)
        seen, frontier = {start}, [start]
        while frontier:
            node = frontier.pop()
            for other in list(todo - seen):
                if linked[node, other]:
                    seen.add(other)
                    frontier.append(other)
        todo -= seen
        out.append(sorted(seen))
    return out


def bottleneck(nodes, c):
    """Weakest link of a maximum spanning tree of `nodes` (Kruskal)."""
    parent = {v: v for v in nodes}

    def root(v):
        while parent[v] != v:
            v = parent[v]
        return v

    edges = sorted(((c[a, b], a, b) for a in nodes for b in nodes if a < b), reverse=True)
    joined, weakest = 1, np.inf
    for weight, a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[ra] = rb
            joined += 1
            weakest = weight
            if joined == len(nodes):
                break
    return weakest


V2_NORM_RTOL, V2_COS_TOL, V2_RANK_RTOL, V2_LEAN_MAX = 0.1, 0.05, 0.2, 0.25
"""Geometry v2's thresholds, frozen (geomtoy.geometry.thresholds before issue 25)."""


def matches_v2(sub_gram, polytope, lean):
    """Geometry v2's polytope check of one Gram block (k, k): equal norms, rank, sorted
    cosine rows."""
    k = polytope.n_vertices
    norm = np.sqrt(np.clip(np.diag(sub_gram), 0.0, None))
    if norm.max() > (1.0 + V2_NORM_RTOL) * norm.min():
        return False
    if k == 1:
        return bool(norm[0] > 0)
    lean = min(max(lean, 0.0), V2_LEAN_MAX)
    singular = np.sqrt(np.clip(np.linalg.eigvalsh(sub_gram), 0.0, None))
    if np.sum(singular > (V2_RANK_RTOL + np.sqrt(2.0) * lean) * singular[-1]) != polytope.n_dims:
        return False
    cos = sub_gram / np.outer(norm, norm)
    rows = np.sort(cos[~np.eye(k, dtype=bool)].reshape(k, k - 1), axis=-1)
    return bool(np.all(np.abs(rows - polytope.row_cosines) <= V2_COS_TOL + 1.5 * lean**2))


def tegum_factors(W, version=3):
    """Per-feature labels, factor root (lowest member index, -1) and leak of one model."""
    W = np.asarray(W, np.float64)
    n = W.shape[1]
    G = W.T @ W
    norm_sq = np.diag(G)
    represented = np.sqrt(norm_sq) > polytopes.REPRESENTED_NORM
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.nan_to_num(G**2 / np.outer(norm_sq, norm_sq))
        D = np.nan_to_num(norm_sq**2 / np.sum(G**2, axis=1))
    rep = [int(i) for i in np.flatnonzero(represented)]
    weak = (G**2)[:, ~represented].sum(axis=1) / np.where(norm_sq > 0, norm_sq, 1.0) ** 2

    def leak(nodes):
        outside = [j for j in rep if j not in nodes]
        return float(np.sqrt(c[np.ix_(nodes, outside)].max())) if outside else 0.0

    def check(nodes):
        sub = G[np.ix_(nodes, nodes)][None]
        if (len(nodes) == 1 or version == 2) and np.any(weak[nodes] > polytopes.INTERFERENCE_MAX):
            return None  # a dedicated dimension is one barely shared (v3: k = 1 only)
        if len(nodes) == 1 and D[nodes[0]] * (1 + polytopes.INTERFERENCE_MAX) < 1:
            return None
        lean = leak(nodes)
        if lean > polytopes.LEAK_MAX:
            return None
        if len(nodes) > 1 and polytopes.SEPARATION * lean > np.sqrt(bottleneck(nodes, c)):
            lean = 0.0
        for p in POLYTOPES.values():
            if p.n_vertices != len(nodes):
                continue
            if version == 2 and matches_v2(sub[0], p, lean):
                return p.name
            if version == 3 and polytopes.matches_polytope(sub, p, [lean])[0]:
                return p.name
        return None

    label = np.array(["not_represented"] * n, dtype=object)
    root = np.full(n, -1)
    found = []

    def visit(nodes):
        name = check(nodes)
        if name is not None:
            found.append((nodes, name))
        elif len(nodes) > 1:
            for piece in components(nodes, c > bottleneck(nodes, c)):
                visit(piece)

    for component in components(rep, c > polytopes.LINK_COS**2):
        visit(component)
    for nodes, name in found:
        label[nodes], root[nodes] = name, min(nodes)
    rest = [i for i in rep if root[i] < 0]
    for nodes in components(rest, c > polytopes.LINK_COS**2):
        label[nodes], root[nodes] = "other", min(nodes)
    leaks = np.full(n, np.nan)
    for r in set(root[rep].tolist()):
        members = [int(i) for i in np.flatnonzero(root == r)]
        leaks[members] = leak(members)
    return label, root, leaks
