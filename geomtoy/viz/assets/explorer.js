/* geomtoy explorer: browse the geometry of every trained model of one or more sweeps.
 * Plain JavaScript, inline SVG and canvas; data embedded by geomtoy/viz/explore.py as one
 * <script type="application/json" id="sweep-K"> per sweep (typed arrays in base64). */
"use strict";
(function () {
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
      poly: A.polytope.subarray(fo, fo + n),
      imp: A.imp_vals.subarray(io, io + n),
      fp: A.fp_vals.subarray(po, po + n),
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

  // ---------------------------------------------------------------- SVG helpers
  /** Short label of a polytope label, from the sweep's payload (the vocabulary registry). */
  function shortLabel(label) {
    const k = S.D.polytopes.indexOf(label);
    return (S.D.polytope_short && S.D.polytope_short[k]) || label;
  }
  function arrow(x0, y0, x1, y1, color, f, faded, extra) {
    if (!(fin(x1) && fin(y1))) return ""; // a diverged model's NaN weights draw nothing
    const op = faded ? ' opacity="0.35"' : "";
    return '<g data-f="' + f + '"' + op + (extra || "") + '><line x1="' + x0.toFixed(1) + '" y1="' + y0.toFixed(1) + '" x2="' + x1.toFixed(1) + '" y2="' + y1.toFixed(1) +
      '" stroke="' + color + '" stroke-width="2.6" stroke-linecap="round"/><circle cx="' + x1.toFixed(1) + '" cy="' + y1.toFixed(1) + '" r="3.6" fill="' + color + '"/></g>';
  }
  function tipText(D, M, j) {
    return "feature " + j + ": " + D.polytopes[M.poly[j]] + (M.factor[j] >= 0 ? " (factor " + M.factor[j] + ")" : "") +
      "\n‖W‖ " + f3(M.norm[j]) + "  D " + f3(M.dim[j]) + "  interference " + f3(M.interf[j]) + "\nimportance " + g4(M.imp[j]) + "  p " + g4(M.fp[j]) + "  bias " + f3(M.b[j]);
  }

  /** One 2-D panel: points pts[a] = [x, y] of features cols[a]; labels "i polytope" or "i". */
  function planeSVG(D, M, cols, pts, colors, size, opts) {
    let R = 0;
    for (const p of pts) if (fin(Math.hypot(p[0], p[1] || 0))) R = Math.max(R, Math.hypot(p[0], p[1] || 0));
    R = Math.max(1.15, R * 1.12);
    const labels = opts.labels && cols.length <= 16, margin = labels ? (opts.long ? 58 : 22) : 10;
    const c = size / 2, s = (size / 2 - margin) / R;
    let out = '<svg width="' + size + '" height="' + size + '" viewBox="0 0 ' + size + " " + size + '">';
    out += '<line x1="6" y1="' + c + '" x2="' + (size - 6) + '" y2="' + c + '" stroke="#eee"/>';
    out += '<line x1="' + c + '" y1="6" x2="' + c + '" y2="' + (size - 6) + '" stroke="#eee"/>';
    out += '<circle cx="' + c + '" cy="' + c + '" r="' + s.toFixed(1) + '" fill="none" stroke="#ccc" stroke-dasharray="3 3"/>';
    let txt = "";
    cols.forEach((j, a) => {
      const x = c + s * pts[a][0], y = c - s * (pts[a][1] || 0);
      const faded = D.polytopes[M.poly[j]] === "not_represented";
      out += arrow(c, c, x, y, colors[j], j, faded);
      if (labels && !faded && fin(x) && fin(y)) {
        const L = Math.hypot(x - c, y - c) || 1, lx = x + ((x - c) / L) * 10, ly = y + ((y - c) / L) * 10;
        const anchor = lx < c - 6 ? "end" : lx > c + 6 ? "start" : "middle";
        const text = opts.long ? j + " " + shortLabel(D.polytopes[M.poly[j]]) : String(j);
        txt += '<text x="' + lx.toFixed(1) + '" y="' + (ly + 4).toFixed(1) + '" font-size="10.5" text-anchor="' + anchor + '" fill="#333" data-f="' + j + '">' + esc(text) + "</text>";
      }
    });
    return out + txt + "</svg>";
  }

  /** A rank-1 factor (dedicated feature, digon): its features on a line. */
  function lineSVG(D, M, cols, pts, colors, width) {
    let R = 1.15;
    for (const p of pts) if (fin(p[0])) R = Math.max(R, Math.abs(p[0]) * 1.1);
    const h = 46, c = width / 2, s = (width / 2 - 14) / R, y = 28;
    let out = '<svg width="' + width + '" height="' + h + '" viewBox="0 0 ' + width + " " + h + '">';
    out += '<line x1="4" y1="' + y + '" x2="' + (width - 4) + '" y2="' + y + '" stroke="#eee"/>';
    out += '<line x1="' + (c - s) + '" y1="' + (y - 5) + '" x2="' + (c - s) + '" y2="' + (y + 5) + '" stroke="#ccc"/><line x1="' + (c + s) + '" y1="' + (y - 5) + '" x2="' + (c + s) + '" y2="' + (y + 5) + '" stroke="#ccc"/>';
    cols.forEach((j, a) => {
      const x = c + s * pts[a][0];
      out += arrow(c, y, x, y, colors[j], j, false);
      if (fin(x)) out += '<text x="' + x.toFixed(1) + '" y="' + (y - 8) + '" font-size="10" text-anchor="middle" fill="#333" data-f="' + j + '">' + j + "</text>";
    });
    return out + "</svg>";
  }

  function rotation(key) {
    if (!S.rot[key]) { const r = rotMul(rotX(-0.45), rotY(0.6)); S.rot[key] = r; }
    return S.rot[key];
  }
  function rotX(a) { const c = Math.cos(a), s = Math.sin(a); return [1, 0, 0, 0, c, -s, 0, s, c]; }
  function rotY(a) { const c = Math.cos(a), s = Math.sin(a); return [c, 0, s, 0, 1, 0, -s, 0, c]; }
  function rotMul(a, b) {
    const o = new Array(9);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) o[i * 3 + j] = a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j];
    return o;
  }

  /** One rotatable 3-D panel (orthographic projection, depth by opacity). */
  function spaceSVG(D, M, cols, pts, colors, size, key) {
    const Rm = rotation(key);
    let R = 0;
    for (const p of pts) if (fin(Math.hypot(p[0], p[1], p[2]))) R = Math.max(R, Math.hypot(p[0], p[1], p[2]));
    R = Math.max(1.15, R * 1.15);
    const c = size / 2, s = (size / 2 - 12) / R;
    const P = (p) => [Rm[0] * p[0] + Rm[1] * p[1] + Rm[2] * p[2], Rm[3] * p[0] + Rm[4] * p[1] + Rm[5] * p[2], Rm[6] * p[0] + Rm[7] * p[1] + Rm[8] * p[2]];
    let out = '<svg class="rot" data-rot="' + esc(key) + '" width="' + size + '" height="' + size + '" viewBox="0 0 ' + size + " " + size + '">';
    for (let ax = 0; ax < 3; ax++) {
      const e = [0, 0, 0]; e[ax] = 1;
      const q = P(e);
      out += '<line x1="' + (c - s * q[0]).toFixed(1) + '" y1="' + (c + s * q[1]).toFixed(1) + '" x2="' + (c + s * q[0]).toFixed(1) + '" y2="' + (c - s * q[1]).toFixed(1) + '" stroke="#e3e3e3"/>';
      out += '<text x="' + (c + s * 1.05 * q[0]).toFixed(1) + '" y="' + (c - s * 1.05 * q[1]).toFixed(1) + '" font-size="9" fill="#bbb">PC' + (ax + 1) + "</text>";
    }
    const items = cols.map((j, a) => ({ j, q: P(pts[a]) })).sort((u, v) => u.q[2] - v.q[2]);
    const labels = cols.length <= 10;
    for (const it of items) {
      const depth = R > 0 ? it.q[2] / R : 0; // -1 (back) .. 1 (front)
      const x = c + s * it.q[0], y = c - s * it.q[1];
      const faded = D.polytopes[M.poly[it.j]] === "not_represented";
      out += arrow(c, c, x, y, colors[it.j], it.j, faded, ' opacity="' + (faded ? 0.3 : (0.55 + 0.45 * (depth + 1) / 2)).toFixed(2) + '"');
      if (labels && !faded && fin(x) && fin(y)) out += '<text x="' + (x + 5).toFixed(1) + '" y="' + (y - 4).toFixed(1) + '" font-size="10" fill="#333" data-f="' + it.j + '">' + it.j + "</text>";
    }
    return out + "</svg>";
  }

  // ---------------------------------------------------------------- feature directions
  let PANELS = []; // per 3-D panel: how to redraw it when rotated
  function renderVectors(D, M) {
    const colors = vectorColors(D, M);
    PANELS = [];
    let html = "", arrows = 0, panels = 0;
    const all = Array.from({ length: M.n }, (_, j) => j);
    $("vectors-extra").innerHTML = "";
    if (M.m === 1) {
      $("vectors-sub").textContent = "m = 1: W on the line, one row per feature";
      const size = 360, rowH = Math.max(10, Math.min(26, 300 / M.n)), h = rowH * M.n + 24;
      let R = 1.15;
      for (let j = 0; j < M.n; j++) if (fin(M.W[j])) R = Math.max(R, Math.abs(M.W[j]) * 1.15);
      const c = size / 2, s = (size / 2 - 50) / R;
      let out = '<svg width="' + size + '" height="' + h + '"><line x1="' + c + '" y1="4" x2="' + c + '" y2="' + (h - 16) + '" stroke="#ccc"/>';
      out += '<line x1="' + (c - s) + '" y1="4" x2="' + (c - s) + '" y2="' + (h - 16) + '" stroke="#ddd" stroke-dasharray="3 3"/><line x1="' + (c + s) + '" y1="4" x2="' + (c + s) + '" y2="' + (h - 16) + '" stroke="#ddd" stroke-dasharray="3 3"/>';
      out += '<text x="' + (c - s) + '" y="' + (h - 3) + '" font-size="10" text-anchor="middle" fill="#999">−1</text><text x="' + (c + s) + '" y="' + (h - 3) + '" font-size="10" text-anchor="middle" fill="#999">+1</text>';
      for (let j = 0; j < M.n; j++) {
        const y = 10 + j * rowH + rowH / 2, x = c + s * M.W[j];
        const faded = D.polytopes[M.poly[j]] === "not_represented";
        out += arrow(c, y, x, y, colors[j], j, faded);
        out += '<text x="4" y="' + (y + 4) + '" font-size="10.5" fill="#333" data-f="' + j + '">' + j + " " + esc(shortLabel(D.polytopes[M.poly[j]])) + "</text>";
        arrows++;
      }
      html = '<div class="panel">' + out + "</svg></div>";
      panels = 1;
    } else if (M.m === 2) {
      $("vectors-sub").textContent = "m = 2: the columns of W in the hidden plane";
      const pts = all.map((j) => [M.W[j], M.W[M.n + j]]);
      html = '<div class="panel">' + planeSVG(D, M, all, pts, colors, 380, { labels: true, long: true }) + "</div>";
      arrows = M.n;
      panels = 1;
    } else {
      $("vectors-sub").textContent = "m = " + M.m + ": each tegum factor in its own subspace (top principal directions; drag 3-D panels to rotate)";
      const groups = new Map();
      for (let j = 0; j < M.n; j++) if (M.factor[j] >= 0) { if (!groups.has(M.factor[j])) groups.set(M.factor[j], []); groups.get(M.factor[j]).push(j); }
      const factors = Array.from(groups.entries()).sort((a, b) => b[1].length - a[1].length || a[0] - b[0]);
      const limit = S.showAll ? factors.length : Math.min(factors.length, 23);
      const size = factors.length > 6 ? 170 : 210;
      // the whole model first
      const whole = project(M, all, 3);
      const nRep = M.n - Array.from(M.poly).filter((p) => D.polytopes[p] === "not_represented").length;
      const wholeTitle = "all " + M.n + " features (" + nRep + " represented), top " + whole.d + " PCs of W";
      html += panelHTML(D, M, "all", all, whole, colors, 230, wholeTitle);
      arrows += M.n;
      panels++;
      for (let f = 0; f < limit; f++) {
        const [id, cols] = factors[f];
        const pr = project(M, cols, 3);
        const label = D.polytopes[M.poly[cols[0]]];
        let dsum = 0;
        for (const j of cols) dsum += M.dim[j];
        const title = "factor " + id + ": " + label + (cols.length > 1 ? " · " + cols.length + " features" : "") + (pr.rank > 1 ? " · rank " + pr.rank : "") + " · D " + (dsum / cols.length).toFixed(2);
        html += panelHTML(D, M, "f" + id + ":" + cols.join(","), cols, pr, colors, size, title);
        arrows += cols.length;
        panels++;
      }
      if (factors.length > 23) {
        $("vectors-extra").innerHTML = factors.length + ' factors; <button class="link" id="show-all">' + (S.showAll ? "show the 23 largest" : "show all") + "</button>";
        $("show-all").onclick = () => { S.showAll = !S.showAll; render(); };
      } else if (!factors.length) {
        $("vectors-extra").textContent = "no represented feature (‖W_i‖ ≤ " + D.constants.represented_norm + ")";
      }
    }
    $("vectors").innerHTML = html;
    for (const p of PANELS) if (p.post) p.redraw();
    return { panels, arrows };
  }
  const BIG_PANEL = 48; // panels with more arrows are drawn on a canvas (cheaper than SVG nodes)
  function panelHTML(D, M, key, cols, pr, colors, size, title) {
    let body, width = size;
    if (cols.length > BIG_PANEL && pr.d >= 2) {
      const rot = pr.d === 3;
      const redraw = () => {
        const canvas = document.querySelector('#vectors canvas[data-panel="' + CSS.escape(key) + '"]');
        if (canvas) drawPanelCanvas(canvas, D, M, cols, pr.coords, colors, size, key, pr.d);
      };
      PANELS.push({ key, redraw, post: true });
      body = '<canvas class="' + (rot ? "rot" : "flat") + '" data-panel="' + esc(key) + '" data-rot="' + esc(key) + '" width="' + size + '" height="' + size + '"></canvas>';
    } else if (pr.d === 3) {
      PANELS.push({
        key,
        redraw: () => {
          const old = document.querySelector('#vectors svg[data-rot="' + CSS.escape(key) + '"]');
          if (!old) return;
          const tmp = document.createElement("div");
          tmp.innerHTML = spaceSVG(D, M, cols, pr.coords, colors, size, key);
          old.replaceWith(tmp.firstChild);
        },
      });
      body = spaceSVG(D, M, cols, pr.coords, colors, size, key);
    } else if (pr.d === 1 && key !== "all") {
      width = 150;
      body = lineSVG(D, M, cols, pr.coords, colors, width);
    } else {
      body = planeSVG(D, M, cols, pr.coords, colors, size, { labels: true });
    }
    return '<div class="panel" style="width:' + (width + 6) + 'px"><div class="title" title="' + esc(title) + '">' + esc(title) + "</div>" + body + "</div>";
  }

  /** A panel of many features on a canvas: 2-D, or 3-D under the panel's rotation. */
  function drawPanelCanvas(canvas, D, M, cols, pts, colors, size, key, d) {
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, size, size);
    let R = 0;
    for (const p of pts) if (fin(Math.hypot(p[0], p[1] || 0, p[2] || 0))) R = Math.max(R, Math.hypot(p[0], p[1] || 0, p[2] || 0));
    R = Math.max(1.15, R * 1.12);
    const c = size / 2, s = (size / 2 - 10) / R, Rm = d === 3 ? rotation(key) : [1, 0, 0, 0, 1, 0, 0, 0, 1];
    const P = (p) => [Rm[0] * p[0] + Rm[1] * p[1] + Rm[2] * (p[2] || 0), Rm[3] * p[0] + Rm[4] * p[1] + Rm[5] * (p[2] || 0), Rm[6] * p[0] + Rm[7] * p[1] + Rm[8] * (p[2] || 0)];
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#e3e3e3";
    ctx.beginPath();
    for (let ax = 0; ax < d; ax++) {
      const e = [0, 0, 0];
      e[ax] = 1;
      const q = P(e);
      ctx.moveTo(c - s * q[0], c + s * q[1]);
      ctx.lineTo(c + s * q[0], c - s * q[1]);
    }
    ctx.stroke();
    if (d === 2) { ctx.setLineDash([3, 3]); ctx.strokeStyle = "#ccc"; ctx.beginPath(); ctx.arc(c, c, s, 0, 2 * Math.PI); ctx.stroke(); ctx.setLineDash([]); }
    const items = cols.map((j, a) => ({ j, q: P(pts[a]) })).sort((u, v) => u.q[2] - v.q[2]);
    ctx.lineWidth = 1.6;
    ctx.lineCap = "round";
    for (const it of items) {
      const faded = D.polytopes[M.poly[it.j]] === "not_represented";
      ctx.globalAlpha = faded ? 0.3 : d === 3 ? 0.55 + 0.45 * (it.q[2] / R + 1) / 2 : 1;
      const x = c + s * it.q[0], y = c - s * it.q[1];
      if (!(fin(x) && fin(y))) continue;
      ctx.strokeStyle = ctx.fillStyle = colors[it.j];
      ctx.beginPath();
      ctx.moveTo(c, c);
      ctx.lineTo(x, y);
      ctx.stroke();
      ctx.fillRect(x - 1.8, y - 1.8, 3.6, 3.6);
    }
    ctx.globalAlpha = 1;
  }

  // rotate 3-D panels by drag (double click resets)
  let DRAG = null;
  document.addEventListener("mousedown", (e) => {
    const el = e.target.closest && e.target.closest("#vectors .rot");
    if (!el) return;
    DRAG = { key: el.getAttribute("data-rot"), x: e.clientX, y: e.clientY };
    e.preventDefault();
  });
  document.addEventListener("mousemove", (e) => {
    if (!DRAG) return;
    const dx = e.clientX - DRAG.x, dy = e.clientY - DRAG.y;
    DRAG.x = e.clientX; DRAG.y = e.clientY;
    S.rot[DRAG.key] = rotMul(rotX(-dy * 0.012), rotMul(rotY(dx * 0.012), rotation(DRAG.key)));
    const p = PANELS.find((q) => q.key === DRAG.key);
    if (p) p.redraw();
  });
  document.addEventListener("mouseup", () => { DRAG = null; });
  document.addEventListener("dblclick", (e) => {
    const el = e.target.closest && e.target.closest("#vectors .rot");
    if (!el) return;
    const key = el.getAttribute("data-rot");
    delete S.rot[key];
    const p = PANELS.find((q) => q.key === key);
    if (p) p.redraw();
  });

  // ---------------------------------------------------------------- Gram, bias, bars
  const GRAM_SIZE = 300;
  let GRAM = null, GRAM_OFF = null, RDBU_TABLE = null;
  function RDBU_LUT() {
    if (!RDBU_TABLE) { RDBU_TABLE = new Uint8Array(256 * 3); for (let q = 0; q < 256; q++) { const c = RDBU(q / 255); RDBU_TABLE[3 * q] = c[0]; RDBU_TABLE[3 * q + 1] = c[1]; RDBU_TABLE[3 * q + 2] = c[2]; } }
    return RDBU_TABLE;
  }
  function renderGram(D, M) {
    const n = M.n, m = M.m, W = M.W;
    const Wt = new Float64Array(n * m); // feature-major copy: contiguous dot products
    for (let h = 0; h < m; h++) for (let j = 0; j < n; j++) Wt[j * m + h] = W[h * n + j];
    const G = new Float32Array(n * n);
    for (let i = 0; i < n; i++) {
      const oi = i * m;
      for (let j = i; j < n; j++) {
        const oj = j * m;
        let s = 0;
        for (let h = 0; h < m; h++) s += Wt[oi + h] * Wt[oj + h];
        G[i * n + j] = G[j * n + i] = s;
      }
    }
    const cell = GRAM_SIZE / n, biasW = Math.max(10, Math.min(24, cell)), gap = 6;
    const canvas = $("gram");
    canvas.width = GRAM_SIZE + gap + biasW;
    canvas.height = GRAM_SIZE;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!GRAM_OFF || GRAM_OFF.width !== n) { GRAM_OFF = document.createElement("canvas"); GRAM_OFF.width = n; GRAM_OFF.height = n; }
    const off = GRAM_OFF, octx = off.getContext("2d"), img = octx.createImageData(n, n), px = img.data;
    const lut = RDBU_LUT();
    for (let k = 0; k < n * n; k++) {
      const v = G[k], q = 3 * (v >= 1 ? 255 : v <= -1 ? 0 : v === v ? Math.round(((v + 1) / 2) * 255) : 128);
      px[4 * k] = lut[q]; px[4 * k + 1] = lut[q + 1]; px[4 * k + 2] = lut[q + 2]; px[4 * k + 3] = 255;
    }
    octx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, GRAM_SIZE, GRAM_SIZE);
    for (let i = 0; i < n; i++) {
      ctx.fillStyle = css(RDBU((M.b[i] + 1) / 2));
      ctx.fillRect(GRAM_SIZE + gap, i * cell, biasW, Math.max(cell, 1));
    }
    ctx.strokeStyle = "#bbb";
    ctx.strokeRect(0.5, 0.5, GRAM_SIZE - 1, GRAM_SIZE - 1);
    ctx.strokeRect(GRAM_SIZE + gap + 0.5, 0.5, biasW - 1, GRAM_SIZE - 1);
    GRAM = { G, n, cell, gap, biasW, M };

    // bars of ||W_i|| coloured by interference, rows aligned with the Gram matrix
    const bars = $("bars"), width = 190, height = GRAM_SIZE + 16;
    if (bars.width !== width) bars.width = width;
    if (bars.height !== height) bars.height = height;
    const b = bars.getContext("2d");
    b.clearRect(0, 0, width, height);
    let top = 1.2;
    for (let j = 0; j < n; j++) if (fin(M.norm[j])) top = Math.max(top, M.norm[j] * 1.05);
    const sx = (width - 8) / top;
    for (let j = 0; j < n; j++) {
      const w = fin(M.norm[j]) ? M.norm[j] * sx : 0;
      b.fillStyle = css(VIRIDIS(M.interf[j]));
      b.fillRect(2, j * cell + cell * 0.08, w, Math.max(0.6, cell * 0.84));
    }
    b.fillStyle = "#999";
    b.fillRect(2, 0, 1, GRAM_SIZE);
    b.fillStyle = "#bbb";
    for (let y = 0; y < GRAM_SIZE; y += 6) b.fillRect(2 + Math.round(sx), y, 1, 3);
    b.fillStyle = "#888";
    b.font = "10px system-ui, sans-serif";
    b.textAlign = "center";
    b.fillText("1", 2 + sx, GRAM_SIZE + 12);
    b.textAlign = "left";
    b.fillText("0", 2, GRAM_SIZE + 12);
  }
  function gramLegend() {
    const bar = (f, lo, hi, label) => {
      let stops = "";
      for (let k = 0; k <= 10; k++) stops += '<stop offset="' + k / 10 + '" stop-color="' + css(f(k / 10)) + '"/>';
      const id = "g" + Math.random().toString(36).slice(2, 8);
      return '<svg width="170" height="30"><defs><linearGradient id="' + id + '">' + stops + '</linearGradient></defs><rect x="5" y="2" width="160" height="10" fill="url(#' + id + ')"/><text x="5" y="25" font-size="10" fill="#666">' + lo + '</text><text x="165" y="25" font-size="10" text-anchor="end" fill="#666">' + hi + '</text><text x="85" y="25" font-size="10" text-anchor="middle" fill="#666">' + label + "</text></svg>";
    };
    $("gram-legend").innerHTML = bar(RDBU, "−1", "+1", "WᵀW, b") + " " + bar(VIRIDIS, "0", "≥1", "interference");
  }

  // ---------------------------------------------------------------- stack plot (§8, §9)
  let STACK = null; // drawn blocks, for the tooltip
  function renderStack(D, M) {
    const card = $("stack-card");
    const flags = (D.kind_flags || {})[M.kind] || {};
    const privileged = !!flags.privileged_hidden;
    card.hidden = !privileged;
    STACK = null;
    if (!privileged) return null;
    const n = M.n, m = M.m, C = D.constants;
    let W = Array.from({ length: m }, (_, h) => Array.from(M.W.subarray(h * n, h * n + n), (v) => (fin(v) ? v : 0)));
    if (flags.untied) { // footnote 15: the largest |W1| weight into each neuron is 1
      W = W.map((row) => { let big = 0; for (const v of row) big = Math.max(big, Math.abs(v)); const s = big > C.dead_neuron ? big : 1; return row.map((v) => v / s); });
    }
    const info = W.map((row, h) => {
      let big = 0, top = 0;
      row.forEach((v, j) => { if (Math.abs(v) > big) { big = Math.abs(v); top = j; } });
      let count = 0;
      if (big > C.dead_neuron) for (const v of row) if (Math.abs(v) > C.feature_threshold * big) count++;
      let pos = 0, neg = 0;
      for (const v of row) { if (v > 0) pos += v; else neg -= v; }
      return { h, top, big, count, pos, neg };
    });
    // neurons sorted by the importance of their largest feature (§9), dead neurons last
    info.sort((a, b) => (b.big > C.dead_neuron) - (a.big > C.dead_neuron) || M.imp[b.top] - M.imp[a.top] || a.top - b.top || a.h - b.h);
    let up = 0, down = 0;
    for (const q of info) { up = Math.max(up, q.pos); down = Math.max(down, q.neg); }
    if (up + down <= 0) up = 1;
    const colW = Math.max(8, Math.min(44, 880 / m)), H = 230, padL = 40, padT = 10, padB = 34;
    const scale = H / (up + down), zero = padT + up * scale;
    const canvas = $("stack"), width = Math.ceil(padL + colW * m + 10), height = H + padT + padB;
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    const blocks = [];
    let mono = 0, poly = 0;
    const small = colW < 16;
    ctx.font = (small ? 8 : 10) + "px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "alphabetic";
    info.forEach((q, col) => {
      const row = W[q.h], x = padL + col * colW + 1, w = colW - 2;
      const order = row.map((v, j) => j).sort((a, b) => Math.abs(row[b]) - Math.abs(row[a]));
      let yUp = zero, yDown = zero;
      for (const j of order) {
        const v = row[j], hgt = Math.abs(v) * scale;
        if (hgt < 0.2) continue;
        let y;
        if (v > 0) { yUp -= hgt; y = yUp; } else { y = yDown; yDown += hgt; }
        ctx.fillStyle = featureHue(j);
        ctx.fillRect(x, y, w, hgt);
        if (hgt > 2.5) { ctx.fillStyle = "rgba(255,255,255,0.8)"; ctx.fillRect(x, v > 0 ? y : y + hgt - 0.6, w, 0.6); }
        blocks.push([x, y, w, hgt, q.h, j, v]);
      }
      if (q.count === 1) mono++; else if (q.count > 1) poly++;
      const cx = x + w / 2;
      ctx.fillStyle = "#555";
      ctx.fillText(String(q.h), cx, padT + H + 13);
      ctx.fillStyle = q.count > 1 ? "#c0392b" : "#888";
      ctx.fillText(q.count ? String(q.count) : "–", cx, padT + H + 26);
    });
    ctx.fillStyle = "#666";
    ctx.fillRect(padL, Math.round(zero), width - padL - 6, 1);
    ctx.textAlign = "right";
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillText("0", padL - 4, zero + 4);
    if (up > 0) ctx.fillText(up.toFixed(2), padL - 4, padT + 8);
    if (down > 0) ctx.fillText("−" + down.toFixed(2), padL - 4, padT + H);
    ctx.textAlign = "left";
    ctx.fillStyle = "#888";
    ctx.fillText("neuron", 2, padT + H + 13);
    ctx.fillText("features", 2, padT + H + 26);
    STACK = { blocks, D, M };
    $("stack-sub").textContent = (((D.kind_flags || {})[M.kind] || {}).untied ? "W₁ rescaled per neuron (footnote 15); " : "") +
      "one column per neuron, each weight a block coloured by its feature, negatives below the axis; " +
      "bottom row: features per neuron (|W| > " + C.feature_threshold + " × max) — " + mono + " monosemantic, " + poly + " polysemantic";
    return { neurons: m, mono, poly, order: info.map((q) => q.h), features_per_neuron: info.map((q) => q.count) };
  }
  $("stack").addEventListener("mousemove", (e) => {
    if (!STACK) return;
    const r = $("stack").getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    const hit = STACK.blocks.find((b) => x >= b[0] && x < b[0] + b[2] && y >= b[1] && y < b[1] + b[3]);
    if (!hit) return hideTip();
    showTip(e, "neuron " + hit[4] + ", feature " + hit[5] + ": " + hit[6].toFixed(3) + "\n" + tipText(STACK.D, STACK.M, hit[5]));
  });
  $("stack").addEventListener("mouseleave", hideTip);

  // ---------------------------------------------------------------- features table and counts
  const COLUMNS = [
    ["feature", "i", (M, j) => j, (v) => String(v)],
    ["importance", "imp.", (M, j) => M.imp[j], g4],
    ["p", "p", (M, j) => M.fp[j], g4],
    ["norm", "‖W_i‖", (M, j) => M.norm[j], f3],
    ["dimensionality", "D_i", (M, j) => M.dim[j], f3],
    ["interference", "interf.", (M, j) => M.interf[j], f3],
    ["bias", "bias", (M, j) => M.b[j], f3],
    ["factor", "factor", (M, j) => M.factor[j], (v) => (v < 0 ? "—" : String(v))],
    ["polytope", "polytope", (M, j) => M.poly[j], null],
  ];
  const ROW_H = 20, TABLE_HEIGHT = 460, VIRTUAL_ROWS = 120;
  let TABLE = null;
  /** The table body: every row for small models; for n > VIRTUAL_ROWS only the rows in view
   *  (plus a margin) between two spacers, re-rendered on scroll. */
  function renderRows() {
    const T = TABLE, n = T.rows.length, wrap = $("tablewrap");
    let first = 0, last = n;
    if (n > VIRTUAL_ROWS) {
      first = Math.max(0, Math.floor(wrap.scrollTop / ROW_H) - 10);
      last = Math.min(n, first + Math.ceil(TABLE_HEIGHT / ROW_H) + 20);
    }
    if (first === T.first && last === T.last) return;
    T.first = first; T.last = last;
    const D = T.D, M = T.M;
    let out = first > 0 ? '<tr class="spacer" style="height:' + first * ROW_H + 'px"><td colspan="' + COLUMNS.length + '"></td></tr>' : "";
    for (let r = first; r < last; r++) {
      const j = T.rows[r], label = D.polytopes[M.poly[j]];
      out += '<tr data-f="' + j + '"' + (label === "not_represented" ? ' class="nr"' : "") + ">";
      for (const c of COLUMNS) {
        if (c[0] === "polytope") out += '<td class="poly"><span class="chip" style="background:' + D.polytope_colors[M.poly[j]] + '"></span>' + esc(label) + "</td>";
        else out += "<td>" + c[3](c[2](M, j)) + "</td>";
      }
      out += "</tr>";
    }
    if (last < n) out += '<tr class="spacer" style="height:' + (n - last) * ROW_H + 'px"><td colspan="' + COLUMNS.length + '"></td></tr>';
    $("features").tBodies[0].innerHTML = out;
  }
  let ROWS_PENDING = false;
  $("tablewrap").addEventListener("scroll", () => {
    if (!TABLE || TABLE.rows.length <= VIRTUAL_ROWS || ROWS_PENDING) return;
    ROWS_PENDING = true;
    requestAnimationFrame(() => { ROWS_PENDING = false; renderRows(); });
  });
  const COL_TITLE = { feature: "feature index (features sorted by importance)", importance: "importance I_i", p: "feature probability 1 − S_i",
    norm: "‖W_i‖", dimensionality: "feature dimensionality D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²", interference: "Σ_{j≠i} (Ŵ_i·W_j)²",
    bias: "b_i", factor: "tegum factor id (— not represented); click a header to sort", polytope: "polytope label of the feature's tegum factor" };
  const COL_WIDTH = { feature: "34px", importance: "62px", p: "56px", norm: "50px", dimensionality: "46px", interference: "52px", bias: "52px", factor: "44px", polytope: "auto" };
  function renderTable(D, M) {
    const rows = Array.from({ length: M.n }, (_, j) => j);
    const col = COLUMNS.find((c) => c[0] === S.sort.col) || COLUMNS[0];
    if (col[0] !== "feature") rows.sort((a, b) => {
      const x = col[2](M, a), y = col[2](M, b);
      return (x < y ? -1 : x > y ? 1 : 0) * S.sort.dir || a - b;
    });
    else if (S.sort.dir < 0) rows.reverse();
    let out = "<colgroup>" + COLUMNS.map((c) => '<col style="width:' + COL_WIDTH[c[0]] + '">').join("") + "</colgroup><thead><tr>";
    for (const c of COLUMNS) out += '<th data-col="' + c[0] + '" title="' + COL_TITLE[c[0]] + '"' + (c[0] === "polytope" ? ' class="poly"' : "") + ">" + c[1] + (c[0] === S.sort.col ? (S.sort.dir > 0 ? " ▲" : " ▼") : "") + "</th>";
    out += "</tr></thead><tbody></tbody>";
    $("features").innerHTML = out;
    $("tablewrap").style.height = Math.min(TABLE_HEIGHT, ROW_H * (M.n + 1) + 8) + "px";
    TABLE = { D, M, rows, first: -1, last: -1 };
    renderRows();

    // counts: features and tegum factors per label
    const counts = {}, factors = {};
    for (let j = 0; j < M.n; j++) {
      const label = D.polytopes[M.poly[j]];
      counts[label] = (counts[label] || 0) + 1;
      if (M.factor[j] >= 0) (factors[label] = factors[label] || new Set()).add(M.factor[j]);
    }
    const factorCounts = {};
    for (const k in factors) factorCounts[k] = factors[k].size;
    let html = "";
    for (const label of D.polytopes) {
      if (!counts[label]) continue;
      const k = D.polytopes.indexOf(label);
      html += '<span class="count" data-label="' + esc(label) + '" data-features="' + counts[label] + '" data-factors="' + (factorCounts[label] || 0) + '"><span class="chip" style="background:' + D.polytope_colors[k] + '"></span>' +
        esc(label) + " <b>" + counts[label] + "</b>" + (factorCounts[label] ? ' <span class="note">(' + factorCounts[label] + (factorCounts[label] > 1 ? " factors" : " factor") + ")</span>" : "") + "</span>";
    }
    $("counts").innerHTML = html;
    return { counts, factors: factorCounts };
  }
  $("features").addEventListener("click", (e) => {
    const th = e.target.closest("th");
    if (!th) return;
    const c = th.getAttribute("data-col");
    S.sort = { col: c, dir: S.sort.col === c ? -S.sort.dir : 1 };
    renderTable(S.D, modelOf(S.D, S.inst));
  });

  // ---------------------------------------------------------------- info card and loss curve
  function axisValueText(D, k, v) { return D.axes[k].labels[v]; }
  function renderInfo(D, M) {
    const A = D.A, i = M.i, geo = D.geometries[A.geometry[i]], nA = D.axes.length;
    const point = A.point[i], isBest = D.bestOf[point] === i;
    let rows = "";
    const row = (k, v) => { rows += "<tr><td>" + k + "</td><td>" + v + "</td></tr>"; };
    row("geometry", '<span class="chip" style="background:' + D.geometry_colors[A.geometry[i]] + '"></span><span class="geometry" id="geometry">' + esc(geo) + "</span>");
    row("instance", i + " · seed " + A.seed[i] + (isBest ? " (best of " + D.pointInst[point].length + ")" : " (best: seed " + A.seed[D.bestOf[point]] + ")"));
    row("model", esc(M.kind) + " · n = " + M.n + ", m = " + M.m);
    row("loss", g4(A.loss[i]) + (A.diverged[i] ? ' <b style="color:#c00">diverged</b>' : ""));
    row("D* = m/‖W‖²<sub>F</sub>", f3(A.dpf[i]));
    row("represented", A.n_rep[i] + " of " + M.n);
    for (let k = 0; k < nA; k++) row(esc(D.axes[k].key), esc(axisValueText(D, k, A.axis_index[i * nA + k])));
    row("lr · wd", g4(A.lr[i]) + " · " + g4(A.wd[i]));
    $("info").innerHTML = "<table>" + rows + "</table>";

    // training loss curve (log scale)
    const C = A.curve_loss, steps = D.curve_steps[A.curve_row[i]] || [], nC = steps.length;
    if (!nC) { $("curve").innerHTML = ""; return; }
    const ys = [], xs = [];
    for (let c = 0; c < nC; c++) { const v = C[i * nC + c]; if (steps[c] >= 0 && fin(v) && v > 0) { ys.push(Math.log10(v)); xs.push(steps[c]); } }
    if (ys.length < 2) { $("curve").innerHTML = ""; return; }
    const w = 270, h = 90, lo = Math.min(...ys), hi = Math.max(...ys), x0 = xs[0], x1 = xs[xs.length - 1];
    const X = (x) => 48 + ((x - x0) / (x1 - x0 || 1)) * (w - 54), Y = (y) => 8 + (1 - (y - lo) / (hi - lo || 1)) * (h - 26);
    let d = "";
    ys.forEach((y, k) => { d += (k ? "L" : "M") + X(xs[k]).toFixed(1) + "," + Y(y).toFixed(1); });
    $("curve").innerHTML = '<div class="sub">training loss (log)</div><svg width="' + w + '" height="' + h + '"><path d="' + d + '" fill="none" stroke="#2b6cb0" stroke-width="1.5"/>' +
      '<text x="44" y="12" font-size="9" text-anchor="end" fill="#888">' + g4(Math.pow(10, hi)) + '</text><text x="44" y="' + (h - 16) + '" font-size="9" text-anchor="end" fill="#888">' + g4(Math.pow(10, lo)) + "</text>" +
      '<text x="48" y="' + (h - 3) + '" font-size="9" fill="#888">' + x0 + '</text><text x="' + (w - 6) + '" y="' + (h - 3) + '" font-size="9" text-anchor="end" fill="#888">step ' + x1 + "</text></svg>";
  }

  // ---------------------------------------------------------------- phase map
  const MAP = { pad: { l: 70, r: 8, t: 8, b: 46 } };
  function mapAxis(D, id) { return D.mapAxes.find((a) => a.id === id) || D.mapAxes[D.mapAxes.length - 1]; }
  function cellInstance(D, ax, ay, xv, yv) {
    const idx = S.idx.slice();
    let seed = null;
    for (const [a, v] of [[ax, xv], [ay, yv]]) {
      if (a.kind === "axis") idx[a.k] = v;
      else if (a.kind === "seed") seed = D.seeds[v];
    }
    const p = pointAt(D, idx);
    if (p < 0 || p === undefined) return -1;
    if (seed === null) return D.bestOf[p];
    const i = D.pointSeed[p].get(seed);
    return i === undefined ? -1 : i;
  }
  let DOMINANT = null;
  function dominant(D) {
    if (DOMINANT && DOMINANT.D === D) return DOMINANT.v;
    const A = D.A, out = new Int16Array(D.I), nr = D.polytopes.indexOf("not_represented");
    const cnt = new Int32Array(D.polytopes.length);
    for (let i = 0; i < D.I; i++) {
      cnt.fill(0);
      for (let f = A.foff[i]; f < A.foff[i + 1]; f++) cnt[A.polytope[f]]++;
      let best = nr, bc = 0;
      for (let k = 0; k < cnt.length; k++) if (k !== nr && cnt[k] > bc) { bc = cnt[k]; best = k; }
      out[i] = best;
    }
    DOMINANT = { D, v: out };
    return out;
  }
  function mapFeature(D) { return +$("map-feature").value || 0; }
  function colorMode() { return $("map-color").value; }
  /** Colour function over instances and its legend for the current colour mode. */
  function mapColoring(D, cells) {
    const A = D.A, mode = colorMode();
    if (mode === "geometry") return { color: (i) => D.geometry_colors[A.geometry[i]], cat: (i) => A.geometry[i], names: D.geometries, colors: D.geometry_colors };
    if (mode === "dominant") { const dom = dominant(D); return { color: (i) => D.polytope_colors[dom[i]], cat: (i) => dom[i], names: D.polytopes, colors: D.polytope_colors }; }
    if (mode === "feature") {
      const k = mapFeature(D);
      const col = (i) => {
        if (k >= A.n[i]) return "#ffffff";
        const f = A.foff[i] + k, base = BLUE_RED(A.interf[f]), t = clamp01(A.norm[f]), g = 221;
        return css([g + (base[0] - g) * t, g + (base[1] - g) * t, g + (base[2] - g) * t]);
      };
      return { color: col, feature: k };
    }
    let value, label;
    if (mode === "dpf") { value = (i) => A.dpf[i]; label = "D* = m/‖W‖²_F"; }
    else if (mode === "n_rep") { value = (i) => A.n_rep[i]; label = "represented features"; }
    else { value = (i) => (A.loss[i] > 0 ? Math.log10(A.loss[i]) : NaN); label = "log10 loss"; }
    let lo = Infinity, hi = -Infinity;
    for (const i of cells) if (i >= 0) { const v = value(i); if (fin(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
    if (mode === "dpf") { lo = Math.min(lo, 0); hi = Math.max(hi, 1); }
    if (mode === "n_rep") { lo = 0; hi = Math.max(hi, 1); }
    const t = (v) => (hi > lo ? (v - lo) / (hi - lo) : 0.5);
    return { color: (i) => css(VIRIDIS(t(value(i)))), lo, hi, label };
  }
  function renderMap(D) {
    const ax = mapAxis(D, $("map-x").value), ay = mapAxis(D, $("map-y").value);
    const nx = ax.labels.length, ny = ay.labels.length;
    const canvas = $("map"), P = MAP.pad, ctx = canvas.getContext("2d");
    ctx.font = "10px system-ui, sans-serif";
    let widest = 0;
    for (const l of ay.labels) widest = Math.max(widest, ctx.measureText(l).width);
    P.l = Math.round(Math.min(170, Math.max(44, widest + 26)));
    if (!MAP.width) MAP.width = canvas.parentNode.clientWidth || 480; // read once: no forced layout per redraw
    const avail = Math.max(260, Math.min(560, MAP.width) - P.l - P.r);
    const cw = Math.max(3, Math.min(48, Math.floor(avail / nx))), ch = Math.max(3, Math.min(36, Math.floor(300 / ny), cw * 1.5));
    const W = Math.max(P.l + cw * nx + P.r, 300), H = P.t + ch * ny + P.b;
    if (canvas.width !== W) canvas.width = W;
    if (canvas.height !== H) canvas.height = H;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const cells = new Int32Array(nx * ny);
    for (let yv = 0; yv < ny; yv++) for (let xv = 0; xv < nx; xv++) cells[yv * nx + xv] = cellInstance(D, ax, ay, xv, yv);
    const coloring = mapColoring(D, cells);
    const gapPx = cw >= 8 && ch >= 8 ? 1 : 0;
    const present = new Map();
    let current = null;
    for (let yv = 0; yv < ny; yv++) for (let xv = 0; xv < nx; xv++) {
      const i = cells[yv * nx + xv], x = P.l + xv * cw, y = P.t + (ny - 1 - yv) * ch; // numeric values grow upwards
      if (i < 0) { ctx.fillStyle = "#fafafa"; ctx.fillRect(x, y, cw - gapPx, ch - gapPx); continue; }
      ctx.fillStyle = coloring.color(i);
      ctx.fillRect(x, y, cw - gapPx, ch - gapPx);
      if (coloring.cat) present.set(coloring.cat(i), (present.get(coloring.cat(i)) || 0) + 1);
      if (i === S.inst) current = [x, y];
    }
    // the selected model's cell (if shown in this map)
    if (!current) {
      const A = D.A, nA = D.axes.length;
      const coord = (a) => (a.kind === "axis" ? A.axis_index[S.inst * nA + a.k] : a.kind === "seed" ? D.seeds.indexOf(A.seed[S.inst]) : 0);
      const xv = coord(ax), yv = coord(ay);
      if (cells[yv * nx + xv] >= 0 && ax.kind !== "seed" && ay.kind !== "seed") current = [P.l + xv * cw, P.t + (ny - 1 - yv) * ch];
    }
    if (current) {
      ctx.lineWidth = 2.5; ctx.strokeStyle = "#000";
      ctx.strokeRect(current[0] - 0.5, current[1] - 0.5, cw - gapPx + 1, ch - gapPx + 1);
      ctx.lineWidth = 1; ctx.strokeStyle = "#fff";
      ctx.strokeRect(current[0] + 1.5, current[1] + 1.5, cw - gapPx - 3, ch - gapPx - 3);
    }
    // ticks
    ctx.fillStyle = "#444"; ctx.font = "10px system-ui, sans-serif";
    let widestX = 0;
    for (const l of ax.labels) widestX = Math.max(widestX, ctx.measureText(l).width);
    MAP.everyX = Math.max(1, Math.ceil((widestX + 8) / cw));
    const everyX = MAP.everyX, everyY = Math.max(1, Math.ceil(13 / ch));
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (let xv = 0; xv < nx; xv += everyX) ctx.fillText(ax.labels[xv], P.l + xv * cw + cw / 2, P.t + ny * ch + 3);
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (let yv = 0; yv < ny; yv += everyY) ctx.fillText(ay.labels[yv], P.l - 4, P.t + (ny - 1 - yv) * ch + ch / 2);
    ctx.textAlign = "center"; ctx.textBaseline = "bottom"; ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#222";
    ctx.fillText(ax.title, P.l + (nx * cw) / 2, canvas.height - 2);
    if (ay.title) {
      ctx.save(); ctx.translate(11, P.t + (ny * ch) / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "middle"; ctx.fillText(ay.title, 0, 0); ctx.restore();
    }
    MAP.geo = { ax, ay, nx, ny, cw, ch, cells };
    renderDims(D, ax, ay, cells, nx, ny, cw);

    // legend
    let leg = "";
    if (coloring.cat) {
      const items = Array.from(present.entries()).sort((a, b) => b[1] - a[1]);
      for (const [k, c] of items) leg += '<span class="item"><span class="chip" style="background:' + coloring.colors[k] + '"></span>' + esc(coloring.names[k]) + ' <span class="note">×' + c + "</span></span>";
    } else if (coloring.feature !== undefined) {
      leg = '<span class="item">feature ' + coloring.feature + ': hue <span class="chip" style="background:#2255bb"></span>interference 0 → <span class="chip" style="background:#dd4444"></span>≥ 1; saturation: ‖W<sub>i</sub>‖ 0 (grey) → ≥ 1 (paper §4)</span>';
    } else {
      let stops = "";
      for (let k = 0; k <= 10; k++) stops += '<stop offset="' + k / 10 + '" stop-color="' + css(VIRIDIS(k / 10)) + '"/>';
      leg = '<span class="item">' + esc(coloring.label) + ' <svg width="160" height="12" style="vertical-align:-2px"><defs><linearGradient id="mapgrad">' + stops + '</linearGradient></defs><rect width="160" height="12" fill="url(#mapgrad)"/></svg> ' + g4(coloring.lo) + " … " + g4(coloring.hi) + "</span>";
    }
    $("legend").innerHTML = leg;
    const fixed = D.axes.map((a, k) => k).filter((k) => !(ax.kind === "axis" && ax.k === k) && !(ay.kind === "axis" && ay.k === k));
    const seedNote = ax.kind === "seed" || ay.kind === "seed" ? "each cell: that seed's model" : "each cell: the best seed of its grid point";
    $("map-note").textContent = seedNote + (fixed.length ? "; fixed: " + fixed.map((k) => D.axes[k].key + " = " + D.axes[k].labels[S.idx[k]]).join(", ") : "");
    return { x: ax.id, y: ay.id, nx, ny, cw, ch, pad_left: P.l, pad_top: P.t, color: colorMode() };
  }
  /** §5.1: every feature's D_i (dots, coloured by polytope) and D* (line) along the map's x axis,
   *  for the models of the map row that holds the selected model. */
  const DIMS_LINES = [[1, "1"], [3 / 4, "3/4"], [2 / 3, "2/3"], [1 / 2, "1/2"], [2 / 5, "2/5"], [3 / 8, "3/8"]];
  function renderDims(D, ax, ay, cells, nx, ny, cw) {
    const wrap = $("dims-wrap");
    if (nx < 2 || ax.kind === "none") { wrap.hidden = true; return; }
    wrap.hidden = false;
    const A = D.A, nA = D.axes.length;
    const yv = ay.kind === "axis" ? A.axis_index[S.inst * nA + ay.k] : ay.kind === "seed" ? D.seeds.indexOf(A.seed[S.inst]) : 0;
    const P = MAP.pad, H = 150, top = 8, canvas = $("dims");
    const width = Math.max(P.l + cw * nx + P.r, 300), height = top + H + 22;
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    const Y = (d) => top + (1 - Math.min(d, 1.05) / 1.05) * H;
    ctx.font = "10px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    let lastY = -99;
    for (const [d, label] of DIMS_LINES) {
      ctx.fillStyle = "#e4e4e4";
      ctx.fillRect(P.l, Math.round(Y(d)), cw * nx, 1);
      ctx.fillStyle = "#888";
      if (Y(d) - lastY >= 9) { ctx.fillText(label, P.l - 4, Y(d)); lastY = Y(d); }
      else ctx.fillText(label, P.l - 26, Y(d));
    }
    ctx.fillText("0", P.l - 4, Y(0));
    ctx.fillStyle = "#bbb";
    ctx.fillRect(P.l, Math.round(Y(0)), cw * nx, 1);
    const line = [], dots = D.polytopes.map(() => []); // one path per colour: few style changes
    for (let xv = 0; xv < nx; xv++) {
      const i = cells[yv * nx + xv];
      if (i < 0) continue;
      const x0 = P.l + xv * cw, n = A.n[i], fo = A.foff[i];
      if (i === S.inst) { ctx.fillStyle = "rgba(43,108,176,0.10)"; ctx.fillRect(x0, top, cw, H); }
      const spread = Math.min(cw * 0.6, 14);
      for (let j = 0; j < n; j++) {
        const d = A.dim[fo + j];
        if (!fin(d)) continue;
        const jitter = n > 1 ? ((j * 0.618) % 1 - 0.5) * spread : 0;
        dots[A.polytope[fo + j]].push(x0 + cw / 2 + jitter - 1.5, Y(d) - 1.5);
      }
      if (fin(A.dpf[i])) line.push([x0 + cw / 2, Y(A.dpf[i])]);
    }
    dots.forEach((xy, k) => {
      if (!xy.length) return;
      ctx.fillStyle = D.polytope_colors[k];
      ctx.beginPath();
      for (let q = 0; q < xy.length; q += 2) ctx.rect(xy[q], xy[q + 1], 3, 3);
      ctx.fill();
    });
    ctx.strokeStyle = "#222";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    line.forEach((p, k) => (k ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
    ctx.stroke();
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillStyle = "#444";
    const every = MAP.everyX || 1;
    for (let xv = 0; xv < nx; xv += every) ctx.fillText(ax.labels[xv], P.l + xv * cw + cw / 2, top + H + 4);
    $("dims-title").textContent = "feature dimensionality D_i of each model in this row (dots, coloured by polytope) and D* = m/‖W‖²_F (line), §5.1";
  }

  function mapCellAt(e) {
    const G = MAP.geo, r = $("map").getBoundingClientRect(), P = MAP.pad;
    if (!G) return null;
    const x = e.clientX - r.left - P.l, y = e.clientY - r.top - P.t;
    const xv = Math.floor(x / G.cw), row = Math.floor(y / G.ch);
    if (xv < 0 || xv >= G.nx || row < 0 || row >= G.ny) return null;
    const yv = G.ny - 1 - row;
    return { xv, yv, i: G.cells[yv * G.nx + xv] };
  }
  $("map").addEventListener("click", (e) => {
    const c = mapCellAt(e);
    if (c && c.i >= 0) selectInstance(c.i);
  });
  $("map").addEventListener("mousemove", (e) => {
    const c = mapCellAt(e), D = S.D;
    if (!c || c.i < 0) return hideTip();
    const A = D.A, G = MAP.geo;
    let text = (G.ax.title ? G.ax.title + " = " + G.ax.labels[c.xv] + "\n" : "") + (G.ay.title ? G.ay.title + " = " + G.ay.labels[c.yv] + "\n" : "");
    text += D.geometries[A.geometry[c.i]] + "\nseed " + A.seed[c.i] + " · loss " + g4(A.loss[c.i]) + " · D* " + f3(A.dpf[c.i]);
    if (colorMode() === "feature") { const k = mapFeature(D), f = A.foff[c.i] + k; if (k < A.n[c.i]) text += "\nfeature " + k + ": ‖W‖ " + f3(A.norm[f]) + ", interference " + f3(A.interf[f]); }
    showTip(e, text);
  });
  $("map").addEventListener("mouseleave", hideTip);
  $("gram").addEventListener("mousemove", (e) => {
    if (!GRAM) return;
    const r = $("gram").getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    const i = Math.floor(y / GRAM.cell);
    if (i < 0 || i >= GRAM.n) return hideTip();
    if (x < GRAM_SIZE) { const j = Math.floor(x / GRAM.cell); showTip(e, "(WᵀW)[" + i + ", " + j + "] = " + f3(GRAM.G[i * GRAM.n + j])); }
    else if (x >= GRAM_SIZE + GRAM.gap) showTip(e, "b[" + i + "] = " + f3(GRAM.M.b[i]));
    else hideTip();
  });
  $("gram").addEventListener("mouseleave", hideTip);
  $("bars").addEventListener("mousemove", (e) => {
    if (!GRAM) return;
    const r = $("bars").getBoundingClientRect(), j = Math.floor((e.clientY - r.top) / GRAM.cell);
    if (j < 0 || j >= GRAM.n) return hideTip();
    showTip(e, tipText(S.D, GRAM.M, j));
  });
  $("bars").addEventListener("mouseleave", hideTip);
  function showTip(e, text) { const t = $("tip"); t.textContent = text; t.hidden = false; t.style.left = e.clientX + 14 + "px"; t.style.top = e.clientY + 12 + "px"; }
  function hideTip() { $("tip").hidden = true; }

  // highlight one feature across panels, with its numbers in the tooltip
  let HL = null;
  document.addEventListener("mousemove", (e) => {
    if (HL !== null && S.D) showTip(e, tipText(S.D, modelOf(S.D, S.inst), +HL));
  });
  document.addEventListener("mouseover", (e) => {
    const el = e.target.closest && e.target.closest("[data-f]");
    const f = el && el.closest("main") ? el.getAttribute("data-f") : null;
    if (f === null && HL !== null) hideTip();
    if (f === HL) return;
    document.querySelectorAll(".hl").forEach((x) => x.classList.remove("hl"));
    HL = f;
    if (f !== null) document.querySelectorAll('main [data-f="' + f + '"]').forEach((x) => x.classList.add("hl"));
  });

  // ---------------------------------------------------------------- controls
  function buildSweep(k) {
    S.sweep = k;
    const D = (S.D = loadSweep(k));
    const nA = D.axes.length;
    S.idx = D.axes.map(() => 0);
    const info = [D.n_instances + " models", D.n_points + " grid points", D.seeds.length + (D.seeds.length > 1 ? " seeds" : " seed"), "kind " + D.kinds.join("/")];
    if (D.scale) info.push("scale " + D.scale);
    if (D.precision.weights !== "f4") info.push("weights float16");
    $("sweep-info").textContent = (D.description ? D.description + " — " : "") + info.join(" · ");
    $("sweep-info").title = (D.command || "") + "\n" + D.path;
    let html = "";
    D.axes.forEach((a, k) => {
      const id = "axis-" + k;
      html += '<div class="control"><label for="' + id + '">' + esc(a.key) + '<span class="value" id="' + id + '-value"></span></label>';
      if (a.numeric && a.labels.length > 1) html += '<input type="range" id="' + id + '" data-axis="' + k + '" min="0" max="' + (a.labels.length - 1) + '" step="1" value="0">';
      else html += '<select id="' + id + '" data-axis="' + k + '">' + a.labels.map((l, v) => '<option value="' + v + '">' + esc(l) + "</option>").join("") + "</select>";
      html += "</div>";
    });
    if (!nA) html = '<div class="note">no grid axes: one grid point</div>';
    $("axes").innerHTML = html;
    D.axes.forEach((a, k) => {
      $("axis-" + k).addEventListener("input", (e) => { S.idx[k] = +e.target.value; selectPoint(); });
    });
    // phase-map selectors
    const opts = (sel, val) => D.mapAxes.map((a) => '<option value="' + esc(a.id) + '"' + (a.id === val ? " selected" : "") + ">" + esc(a.kind === "none" ? "(none)" : a.title) + "</option>").join("");
    const x = nA >= 1 ? D.axes[0].key : "seed";
    const y = nA >= 2 ? D.axes[1].key : nA === 1 ? "seed" : "none";
    $("map-x").innerHTML = opts("x", x);
    $("map-y").innerHTML = opts("y", y);
    const colorOpts = [["geometry", "geometry of the best seed"], ["dominant", "most common polytope"], ["dpf", "D* (dims per feature)"], ["n_rep", "represented features"], ["loss", "loss"], ["feature", "one feature: norm × interference (§4)"]];
    $("map-color").innerHTML = colorOpts.map(([v, t]) => '<option value="' + v + '">' + t + "</option>").join("");
    let fopts = "";
    for (let j = 0; j < D.nMax; j++) fopts += '<option value="' + j + '">' + j + "</option>";
    $("map-feature").innerHTML = fopts;
    const vf = D.varied_feature;
    $("map-feature").value = String(vf === null || vf === undefined ? D.nMax - 1 : (vf + D.nMax) % D.nMax);
    updateFeatureSelect();
    $("sweep").value = String(k);
  }
  function updateFeatureSelect() { $("map-feature-label").style.display = colorMode() === "feature" ? "" : "none"; }

  function syncControls(D) {
    D.axes.forEach((a, k) => {
      const el = $("axis-" + k);
      if (+el.value !== S.idx[k]) el.value = String(S.idx[k]);
      $("axis-" + k + "-value").textContent = a.labels[S.idx[k]];
    });
    const A = D.A, p = A.point[S.inst], list = D.pointInst[p];
    $("seed").innerHTML = list.map((i) => '<option value="' + i + '"' + (i === S.inst ? " selected" : "") + ">seed " + A.seed[i] + (D.bestOf[p] === i ? " ★ best" : "") + " · loss " + g4(A.loss[i]) + " · " + esc(D.geometries[A.geometry[i]]) + "</option>").join("");
  }

  function selectPoint() {
    const D = S.D;
    const p = pointAt(D, S.idx);
    if (p === undefined || p < 0) return;
    selectInstance(D.bestOf[p]);
  }

  function selectInstance(i) {
    const D = S.D, nA = D.axes.length;
    if (!(i >= 0 && i < D.I)) return;
    S.inst = i;
    for (let k = 0; k < nA; k++) S.idx[k] = D.A.axis_index[i * nA + k];
    render();
  }

  let LAST = {};
  const PARTS = {};
  function timed(name, f) {
    const t0 = performance.now(), out = f();
    PARTS[name] = +(performance.now() - t0).toFixed(2);
    return out;
  }
  function renderModel() {
    const D = S.D, M = modelOf(D, S.inst);
    // canvases before DOM changes: drawing text on a canvas after innerHTML writes would force a style pass
    timed("gram", () => renderGram(D, M));
    const stack = timed("stack", () => renderStack(D, M));
    timed("info", () => renderInfo(D, M));
    const vec = timed("vectors", () => renderVectors(D, M));
    const tab = timed("table", () => renderTable(D, M));
    LAST = { map: LAST.map, vec, stack, tab };
  }

  function render() {
    const t0 = performance.now();
    const D = S.D;
    const map = timed("map", () => renderMap(D));
    timed("controls", () => syncControls(D));
    renderModel();
    S.lastMs = performance.now() - t0;
    writeState(map);
    writeHash();
  }

  // ---------------------------------------------------------------- state and hash (test hooks)
  function state(map) {
    const D = S.D, A = D.A, i = S.inst, nA = D.axes.length, M = modelOf(D, i);
    const axes = {};
    D.axes.forEach((a, k) => { axes[a.key] = { index: A.axis_index[i * nA + k], label: a.labels[A.axis_index[i * nA + k]] }; });
    return {
      sweep: S.sweep, name: D.name, instance: i, seed: A.seed[i], point: A.point[i], best: D.bestOf[A.point[i]] === i,
      axes, kind: M.kind, n: M.n, m: M.m, precision: D.precision, geometry: D.geometries[A.geometry[i]], n_represented: A.n_rep[i],
      loss: A.loss[i], counts: LAST.tab.counts, factors: LAST.tab.factors,
      vectors: LAST.vec, stack: LAST.stack, map: map || (LAST.map || null), redraw_ms: S.lastMs, redraw_parts: PARTS, errors: ERRORS.length,
    };
  }
  function writeState(map) {
    if (map) LAST.map = map;
    $("state").textContent = JSON.stringify(state(map));
  }
  let WRITING = false;
  function writeHash() {
    const D = S.D, A = D.A, i = S.inst;
    const parts = ["sweep=" + S.sweep];
    D.axes.forEach((a, k) => parts.push(encodeURIComponent(a.key) + "=" + S.idx[k]));
    parts.push("seed=" + A.seed[i]);
    parts.push("x=" + encodeURIComponent($("map-x").value), "y=" + encodeURIComponent($("map-y").value), "color=" + $("map-color").value);
    if (colorMode() === "feature") parts.push("feature=" + mapFeature(D));
    const h = "#" + parts.join("&");
    if (location.hash !== h) {
      WRITING = true;
      try { history.replaceState(null, "", h); } catch (err) { /* file:// in some browsers */ }
      WRITING = false;
    }
  }
  function parseHash() {
    const out = {};
    for (const part of location.hash.replace(/^#/, "").split("&")) {
      if (!part) continue;
      const eq = part.indexOf("=");
      out[decodeURIComponent(eq < 0 ? part : part.slice(0, eq))] = eq < 0 ? "" : decodeURIComponent(part.slice(eq + 1));
    }
    return out;
  }
  function applyHash() {
    const h = parseHash();
    let k = 0;
    if (h.sweep !== undefined) {
      const byName = INDEX.findIndex((s) => s.name === h.sweep);
      k = byName >= 0 ? byName : Math.max(0, Math.min(INDEX.length - 1, parseInt(h.sweep, 10) || 0));
    }
    if (k !== S.sweep || !S.D) buildSweep(k);
    const D = S.D;
    for (const sel of ["x", "y"]) if (h[sel] !== undefined && D.mapAxes.some((a) => a.id === h[sel])) $("map-" + sel).value = h[sel];
    if (h.color && Array.from($("map-color").options).some((o) => o.value === h.color)) $("map-color").value = h.color;
    if (h.feature !== undefined && +h.feature < D.nMax) $("map-feature").value = String(+h.feature);
    updateFeatureSelect();
    if (h.instance !== undefined && +h.instance >= 0 && +h.instance < D.I) return selectInstance(+h.instance);
    let found = false;
    D.axes.forEach((a, k2) => {
      if (h[a.key] === undefined) return;
      found = true;
      const v = Math.round(+h[a.key]);
      if (v >= 0 && v < a.labels.length) S.idx[k2] = v;
    });
    let p = pointAt(D, S.idx);
    if (p === undefined || p < 0) p = D.A.point[0];
    let i = D.bestOf[p];
    if (h.seed !== undefined && D.pointSeed[p].has(+h.seed)) i = D.pointSeed[p].get(+h.seed);
    if (!found && h.seed === undefined) i = defaultInstance(D); // no model named: the middle of the grid
    selectInstance(i);
  }
  /** Without a hash: the best model of the grid point in the middle of the grid. */
  function defaultInstance(D) {
    const idx = D.sizes.map((s) => Math.floor((s - 1) / 2));
    const p = pointAt(D, idx);
    return D.bestOf[p >= 0 ? p : D.A.point[0]];
  }
  window.addEventListener("resize", () => { MAP.width = 0; if (S.D) render(); });
  window.addEventListener("hashchange", () => { if (!WRITING) applyHash(); });

  // ---------------------------------------------------------------- wiring
  $("sweep").innerHTML = INDEX.map((s, k) => '<option value="' + k + '">' + esc(s.label || s.name) + " · " + s.n_instances + " models</option>").join("");
  $("sweep").addEventListener("change", (e) => { buildSweep(+e.target.value); selectInstance(defaultInstance(S.D)); });
  $("seed").addEventListener("change", (e) => selectInstance(+e.target.value));
  for (const id of ["map-x", "map-y", "map-color", "map-feature"]) $(id).addEventListener("change", () => { updateFeatureSelect(); render(); });
  $("vec-color").addEventListener("change", () => render());
  document.addEventListener("keydown", (e) => {
    if (e.target && /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName)) return;
    const D = S.D, G = MAP.geo;
    if (!D || !G) return;
    const dir = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[e.key];
    if (!dir) return;
    const A = D.A, nA = D.axes.length;
    const coord = (a) => (a.kind === "axis" ? A.axis_index[S.inst * nA + a.k] : a.kind === "seed" ? D.seeds.indexOf(A.seed[S.inst]) : 0);
    const xv = coord(G.ax) + dir[0], yv = coord(G.ay) + dir[1];
    if (xv < 0 || yv < 0 || xv >= G.nx || yv >= G.ny) return;
    const i = cellInstance(D, G.ax, G.ay, xv, yv);
    if (i >= 0) { e.preventDefault(); selectInstance(i); }
  });
  gramLegend();

  window.explorer = {
    select: (i) => { selectInstance(i); return state(); },
    state: () => state(),
    errors: () => ERRORS.slice(),
    /** Time `k` model selections spread over the sweep (JS + forced layout), in ms. */
    bench: (k) => {
      const D = S.D, times = [], parts = [], start = S.inst;
      k = k || 20;
      for (let r = 0; r < k; r++) {
        const i = Math.floor(((r + 0.5) * D.I) / k) % D.I;
        const t0 = performance.now();
        selectInstance(i);
        const t1 = performance.now();
        void document.body.offsetHeight; // include style and layout
        times.push(performance.now() - t0);
        parts.push(Object.assign({ layout: +(performance.now() - t1).toFixed(2) }, PARTS));
      }
      selectInstance(start);
      const sorted = times.slice().sort((a, b) => a - b);
      return { times, parts, median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1], n: D.n_instances };
    },
  };

  try {
    applyHash();
  } catch (err) {
    recordError("startup: " + (err && err.stack ? err.stack : err));
  }
})();
