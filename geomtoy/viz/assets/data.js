/* geomtoy explorer, data.js: Shared by every part: the error hook, formatting, decoding a sweep's payload into
 * typed arrays, one model's slice (modelOf), colour ramps, the page state S and the small
 * linear algebra (eigSym, project) the direction panels use. */
// ---------------------------------------------------------------- errors (test hook)
const ERRORS = [];
function recordError(msg) {
  ERRORS.push(String(msg));
  const el = document.getElementById("errors");
  if (el) { el.textContent = ERRORS.join("\n"); el.hidden = false; }
}
window.addEventListener("error", (e) => recordError((e.message || "error") + (e.lineno ? " (line " + e.lineno + ")" : "")));
window.addEventListener("unhandledrejection", (e) => recordError("unhandled rejection: " + e.reason));
const consoleError = console.error.bind(console);
console.error = function (...args) { recordError(args.map(String).join(" ")); consoleError(...args); };

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fin = (x) => Number.isFinite(x);
const f3 = (x) => (fin(x) ? x.toFixed(3) : "—");
const g4 = (x) => (fin(x) ? (Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2) : String(+x.toPrecision(4))) : "—");
const clamp01 = (t) => (t < 0 ? 0 : t > 1 ? 1 : t);

// ---------------------------------------------------------------- decoding
let F16 = null;
function f16table() {
  if (F16) return F16;
  F16 = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h >> 15, e = (h >> 10) & 31, f = h & 1023;
    let v;
    if (e === 0) v = f * Math.pow(2, -24);
    else if (e === 31) v = f ? NaN : Infinity;
    else v = (1 + f / 1024) * Math.pow(2, e - 15);
    F16[h] = s ? -v : v;
  }
  return F16;
}
function decode(a) {
  const bin = atob(a.b64);
  const u8 = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
  const buf = u8.buffer;
  switch (a.dtype) {
    case "f4": return new Float32Array(buf);
    case "f2": { const h = new Uint16Array(buf), t = f16table(), out = new Float32Array(h.length); for (let i = 0; i < h.length; i++) out[i] = t[h[i]]; return out; }
    case "u1": return u8;
    case "u2": return new Uint16Array(buf);
    case "i2": return new Int16Array(buf);
    case "i4": return new Int32Array(buf);
    case "u4": return new Uint32Array(buf);
  }
  throw new Error("unknown dtype " + a.dtype);
}

const INDEX = JSON.parse($("index").textContent);
const CACHE = {};

function loadSweep(k) {
  if (CACHE[k]) return CACHE[k];
  const D = JSON.parse($("sweep-" + k).textContent);
  const A = {};
  for (const name in D.arrays) A[name] = decode(D.arrays[name]);
  delete D.arrays;
  D.A = A;
  D.index = k;
  const I = (D.I = D.n_instances);
  const nA = D.axes.length;
  D.sizes = D.axes.map((a) => a.labels.length);
  D.strides = [];
  let total = 1;
  for (let a = nA - 1; a >= 0; a--) { D.strides[a] = total; total *= D.sizes[a]; }
  D.grid = new Int32Array(total).fill(-1);
  D.pointAxes = [];
  D.pointInst = [];
  for (let i = 0; i < I; i++) {
    const p = A.point[i];
    if (!D.pointInst[p]) {
      D.pointInst[p] = [];
      const idx = [];
      for (let a = 0; a < nA; a++) idx.push(A.axis_index[i * nA + a]);
      D.pointAxes[p] = idx;
      D.grid[linear(D, idx)] = p;
    }
    D.pointInst[p].push(i);
  }
  D.bestOf = [];
  D.seedSet = new Set();
  D.pointSeed = [];
  for (let p = 0; p < D.pointInst.length; p++) {
    const list = D.pointInst[p];
    if (!list) continue;
    list.sort((x, y) => A.seed[x] - A.seed[y]);
    let best = list.find((i) => A.best[i]);
    if (best === undefined) {
      best = list[0];
      for (const i of list) if (fin(A.loss[i]) && !(A.loss[i] >= A.loss[best])) best = i;
    }
    D.bestOf[p] = best;
    const bySeed = new Map();
    for (const i of list) { bySeed.set(A.seed[i], i); D.seedSet.add(A.seed[i]); }
    D.pointSeed[p] = bySeed;
  }
  D.seeds = Array.from(D.seedSet).sort((x, y) => x - y);
  D.mapAxes = D.axes.map((a, k) => ({ id: a.key, kind: "axis", k, labels: a.labels, title: a.key }));
  D.mapAxes.push({ id: "seed", kind: "seed", labels: D.seeds.map(String), title: "seed" });
  D.mapAxes.push({ id: "none", kind: "none", labels: [""], title: "" });
  D.nMax = 0;
  for (let i = 0; i < I; i++) D.nMax = Math.max(D.nMax, A.n[i]);
  CACHE[k] = D;
  return D;
}
function linear(D, idx) {
  let l = 0;
  for (let a = 0; a < idx.length; a++) l += idx[a] * D.strides[a];
  return l;
}
function pointAt(D, idx) { return D.grid[linear(D, idx)]; }

function modelOf(D, i) {
  const A = D.A, n = A.n[i], m = A.m[i], fo = A.foff[i], wo = A.woff[i];
  const io = A.imp_off[A.imp_row[i]], po = A.fp_off[A.fp_row[i]];
  return {
    i, n, m, kind: D.kinds[A.kind[i]],
    W: A.W.subarray(wo, wo + m * n), // (m, n) row-major: W[h * n + j]
    W2: A.W2 ? A.W2.subarray(wo, wo + m * n) : null, // (n, m)
    b: A.b.subarray(fo, fo + n),
    norm: A.norm.subarray(fo, fo + n),
    dim: A.dim.subarray(fo, fo + n),
    interf: A.interf.subarray(fo, fo + n),
    factor: A.factor.subarray(fo, fo + n),
    k: A.factor_size.subarray(fo, fo + n), d: A.factor_dim.subarray(fo, fo + n),
    fit: A.fit_error.subarray(fo, fo + n), leak: A.leak.subarray(fo, fo + n),
    poly: A.polytope.subarray(fo, fo + n),
    imp: A.imp_vals.subarray(io, io + n),
    fp: A.fp_vals.subarray(po, po + n),
    stack: A.moff ? stackOf(A, i, n, m, fo, wo) : null,
  };
}
/** One model's neuron stack plot as the payload holds it (geomtoy.geometry.neurons.stacks):
 * rows are neurons, each its features by |weight|, with the weight and where its block starts. */
function stackOf(A, i, n, m, fo, wo) {
  const mo = A.moff[i], sl = (a) => a.subarray(wo, wo + m * n);
  return {
    order: A.stack_order.subarray(mo, mo + m), count: A.stack_count.subarray(mo, mo + m),
    feature: sl(A.stack_feature), weight: sl(A.stack_weight), bottom: sl(A.stack_bottom),
    rank: A.stack_rank.subarray(fo, fo + n),
  };
}

// ---------------------------------------------------------------- colours
function hexRgb(h) { return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)]; }
function ramp(hexes) {
  const stops = hexes.map(hexRgb), k = stops.length - 1;
  return function (t) {
    if (!fin(t)) return [200, 200, 200];
    t = clamp01(t) * k;
    const j = Math.min(k - 1, Math.floor(t)), u = t - j, a = stops[j], b = stops[j + 1];
    return [a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u, a[2] + (b[2] - a[2]) * u];
  };
}
const css = (c) => "rgb(" + Math.round(c[0]) + "," + Math.round(c[1]) + "," + Math.round(c[2]) + ")";
const VIRIDIS = ramp(["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"]);
const RDBU = ramp(["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"]);
const IMPORTANCE = ramp(["#00441b", "#1b7837", "#5aae61", "#a6c44a", "#e5c100"]);
const BLUE_RED = ramp(["#2255bb", "#9a4c9c", "#dd4444"]);
const CATEGORICAL = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const featureHue = (j) => "hsl(" + ((j * 137.508) % 360).toFixed(1) + ",62%,48%)";

function importanceColors(M) {
  let lo = Infinity, hi = -Infinity;
  for (let j = 0; j < M.n; j++) { lo = Math.min(lo, M.imp[j]); hi = Math.max(hi, M.imp[j]); }
  const out = [];
  for (let j = 0; j < M.n; j++) out.push(css(IMPORTANCE(hi > lo ? (M.imp[j] - lo) / (hi - lo) : 0.35)));
  return out;
}
function vectorColors(D, M) {
  const mode = $("vec-color").value;
  if (mode === "polytope") return Array.from(M.poly, (p) => D.polytope_colors[p]);
  if (mode === "factor") return Array.from(M.factor, (f) => (f < 0 ? "#cccccc" : CATEGORICAL[f % CATEGORICAL.length]));
  return importanceColors(M);
}

// ---------------------------------------------------------------- state
const S = { sweep: 0, D: null, idx: [], inst: -1, rot: {}, showAll: false, sort: { col: "feature", dir: 1 }, lastMs: 0 };

// ---------------------------------------------------------------- linear algebra
/** Symmetric eigendecomposition (cyclic Jacobi) of a k x k matrix given row-major. */
function eigSym(a, k) {
  const A = Float64Array.from(a), V = new Float64Array(k * k);
  for (let i = 0; i < k; i++) V[i * k + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) off += A[p * k + q] * A[p * k + q];
    if (off < 1e-22) break;
    for (let p = 0; p < k; p++) {
      for (let q = p + 1; q < k; q++) {
        const apq = A[p * k + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (A[q * k + q] - A[p * k + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let r = 0; r < k; r++) {
          const arp = A[r * k + p], arq = A[r * k + q];
          A[r * k + p] = c * arp - s * arq;
          A[r * k + q] = s * arp + c * arq;
        }
        for (let r = 0; r < k; r++) {
          const apr = A[p * k + r], aqr = A[q * k + r];
          A[p * k + r] = c * apr - s * aqr;
          A[q * k + r] = s * apr + c * aqr;
        }
        for (let r = 0; r < k; r++) {
          const vrp = V[r * k + p], vrq = V[r * k + q];
          V[r * k + p] = c * vrp - s * vrq;
          V[r * k + q] = s * vrp + c * vrq;
        }
      }
    }
  }
  const order = Array.from({ length: k }, (_, i) => i).sort((x, y) => A[y * k + y] - A[x * k + x]);
  return { values: order.map((i) => A[i * k + i]), vectors: order.map((i) => Array.from({ length: k }, (_, r) => V[r * k + i])) };
}

/** Coordinates of the columns `cols` of W (m x n) on their top principal directions
 *  (uncentred: features are directions from the origin). Returns {coords: [[...d]], d, rank, sv}. */
function project(M, cols, maxDim) {
  const m = M.m, n = M.n, W = M.W, k = cols.length;
  const small = Math.min(m, k);
  let U = []; // unit directions in R^m
  let sv = [];
  if (k <= m) {
    const G = new Float64Array(k * k);
    for (let a = 0; a < k; a++) for (let c = a; c < k; c++) {
      let s = 0;
      for (let h = 0; h < m; h++) s += W[h * n + cols[a]] * W[h * n + cols[c]];
      G[a * k + c] = G[c * k + a] = s;
    }
    const e = eigSym(G, k);
    for (let r = 0; r < small; r++) {
      const sigma = Math.sqrt(Math.max(e.values[r], 0));
      sv.push(sigma);
      const u = new Float64Array(m);
      if (sigma > 1e-12) for (let h = 0; h < m; h++) { let s = 0; for (let a = 0; a < k; a++) s += W[h * n + cols[a]] * e.vectors[r][a]; u[h] = s / sigma; }
      U.push(u);
    }
  } else {
    const C = new Float64Array(m * m);
    for (let h = 0; h < m; h++) for (let g = h; g < m; g++) {
      let s = 0;
      for (let a = 0; a < k; a++) s += W[h * n + cols[a]] * W[g * n + cols[a]];
      C[h * m + g] = C[g * m + h] = s;
    }
    const e = eigSym(C, m);
    for (let r = 0; r < small; r++) { sv.push(Math.sqrt(Math.max(e.values[r], 0))); U.push(Float64Array.from(e.vectors[r])); }
  }
  const top = sv[0] || 0;
  let rank = 0;
  for (const s of sv) if (s > 0.1 * top && s > 1e-6) rank++;
  const d = Math.max(1, Math.min(maxDim, rank));
  U = U.slice(0, d);
  // sign convention: the largest coordinate along each direction is positive
  const coords = cols.map(() => new Array(d).fill(0));
  for (let r = 0; r < d; r++) {
    let big = 0;
    for (let a = 0; a < k; a++) {
      let s = 0;
      for (let h = 0; h < m; h++) s += U[r][h] * W[h * n + cols[a]];
      coords[a][r] = s;
      if (Math.abs(s) > Math.abs(big)) big = s;
    }
    if (big < 0) for (let a = 0; a < k; a++) coords[a][r] = -coords[a][r];
  }
  return { coords, d, rank, sv };
}
