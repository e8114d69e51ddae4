/* geomtoy explorer, panels.js: The model cards: W^T W with the bias and the norm bars, the neuron stack plot, the
 * features table (virtualised rows) and the info card with its loss curve. */
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
  const privileged = !!flags.privileged_hidden && !!M.stack;
  card.hidden = !privileged;
  STACK = null;
  if (!privileged) return null;
  const n = M.n, m = M.m, C = D.constants, st = M.stack;
  // the layout (order, blocks, where each starts) is the payload's; here only pixels
  let up = 0, down = 0;
  for (let k = 0; k < m * n; k++) {
    const top = st.bottom[k] + st.weight[k];
    if (fin(top)) { up = Math.max(up, top); down = Math.max(down, -top); }
  }
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
  st.order.forEach((h, col) => {
    const x = padL + col * colW + 1, w = colW - 2, count = st.count[h];
    for (let k = h * n; k < h * n + n; k++) {
      const v = st.weight[k], j = st.feature[k], hgt = Math.abs(v) * scale;
      if (!(hgt >= 0.2)) continue;
      const y = zero - (v > 0 ? st.bottom[k] + v : st.bottom[k]) * scale;
      ctx.fillStyle = stackColor(st.rank[j], n);
      ctx.fillRect(x, y, w, hgt);
      if (hgt > 2.5) { ctx.fillStyle = "rgba(255,255,255,0.8)"; ctx.fillRect(x, v > 0 ? y : y + hgt - 0.6, w, 0.6); }
      blocks.push([x, y, w, hgt, h, j, v]);
    }
    if (count === 1) mono++; else if (count > 1) poly++;
    const cx = x + w / 2;
    ctx.fillStyle = "#555";
    ctx.fillText(String(h), cx, padT + H + 13);
    ctx.fillStyle = count > 1 ? "#c0392b" : "#888";
    ctx.fillText(count ? String(count) : "–", cx, padT + H + 26);
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
  $("stack-sub").textContent = (flags.untied ? "W₁ rescaled per neuron (footnote 15); " : "") +
    "one column per neuron, each weight a block coloured by its feature's importance (most important yellow), negatives below the axis; " +
    "bottom row: features per neuron (|W| > " + C.feature_threshold + " × max) — " + mono + " monosemantic, " + poly + " polysemantic";
  return { neurons: m, mono, poly, order: Array.from(st.order), features_per_neuron: Array.from(st.order, (h) => st.count[h]) };
}
/** The stack plot's colour of importance rank r of n (the figures' viridis key, geomtoy.viz.plot.stack_colors). */
function stackColor(r, n) { return css(VIRIDIS(1 - (0.95 * r) / Math.max(1, n - 1))); }
$("stack").addEventListener("mousemove", (e) => {
  if (!STACK) return;
  const r = $("stack").getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
  const hit = STACK.blocks.find((b) => x >= b[0] && x < b[0] + b[2] && y >= b[1] && y < b[1] + b[3]);
  if (!hit) return hideTip();
  showTip(e, "neuron " + hit[4] + ", feature " + hit[5] + ": " + hit[6].toFixed(3) + "\n" + tipText(STACK.D, STACK.M, hit[5]));
});
$("stack").addEventListener("mouseleave", hideTip);

// ---------------------------------------------------------------- features table and counts
const COLUMNS = [ // the KEY_COLUMNS first: pinned at the left while the rest scrolls under them
  ["feature", "i", (M, j) => j, (v) => String(v)],
  ["polytope", "polytope", (M, j) => M.poly[j], null],
  ["dimensionality", "D_i", (M, j) => M.dim[j], f3],
  ["fit_error", "fit err.", (M, j) => M.fit[j], (x) => (fin(x) ? x.toFixed(4) : "—")],
  ["norm", "‖W_i‖", (M, j) => M.norm[j], f3],
  ["interference", "interf.", (M, j) => M.interf[j], f3],
  ["importance", "imp.", (M, j) => M.imp[j], g4],
  ["p", "p", (M, j) => M.fp[j], g4],
  ["bias", "bias", (M, j) => M.b[j], f3],
  ["factor", "factor", (M, j) => M.factor[j], (v) => (v < 0 ? "—" : String(v))],
  ["factor_size", "k", (M, j) => M.k[j], (v) => (v > 0 ? String(v) : "—")],
  ["factor_dim", "d", (M, j) => M.d[j], (v) => (v > 0 ? String(v) : "—")],
  ["leak", "leak", (M, j) => M.leak[j], f3],
];
/** The columns a reader came for (issue 27): always in view, at any width. */
const KEY_COLUMNS = 4;
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
    COLUMNS.forEach((c, k) => {
      const key = k < KEY_COLUMNS ? ' class="key' + (c[0] === "polytope" ? " poly" : "") + '" style="left:' + COL_LEFT[k] + 'px"' : "";
      if (c[0] === "polytope") out += "<td" + key + '><span class="chip" style="background:' + D.polytope_colors[M.poly[j]] + '"></span>' + esc(label) + "</td>";
      else out += "<td" + key + ">" + c[3](c[2](M, j)) + "</td>";
    });
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
  bias: "b_i", factor: "tegum factor id (— not represented); click a header to sort",
  factor_size: "k: features in the feature's tegum factor", factor_dim: "d: dimensions the factor spans",
  fit_error: "RMS Gram error of the factor to its polytope (— for other)", leak: "largest |cos| of a factor member to a represented feature outside it",
  polytope: "polytope label of the feature's tegum factor" };
const COL_WIDTH = { feature: 36, polytope: 128, dimensionality: 50, fit_error: 62, norm: 52, interference: 60, importance: 66, p: 60, bias: 56, factor: 56, factor_size: 34, factor_dim: 34, leak: 50 };
/** Left offsets (px) of the pinned key columns: the widths before them. */
const COL_LEFT = COLUMNS.slice(0, KEY_COLUMNS).map((c, k) => COLUMNS.slice(0, k).reduce((s, d) => s + COL_WIDTH[d[0]], 0));
function renderTable(D, M) {
  const rows = Array.from({ length: M.n }, (_, j) => j);
  const col = COLUMNS.find((c) => c[0] === S.sort.col) || COLUMNS[0];
  if (col[0] !== "feature") rows.sort((a, b) => {
    const x = col[2](M, a), y = col[2](M, b);
    return (x < y ? -1 : x > y ? 1 : 0) * S.sort.dir || a - b;
  });
  else if (S.sort.dir < 0) rows.reverse();
  const total = COLUMNS.reduce((s, c) => s + COL_WIDTH[c[0]], 0);
  let out = "<colgroup>" + COLUMNS.map((c) => '<col style="width:' + COL_WIDTH[c[0]] + 'px">').join("") + "</colgroup><thead><tr>";
  COLUMNS.forEach((c, k) => {
    const cls = (k < KEY_COLUMNS ? "key" : "") + (c[0] === "polytope" ? " poly" : "");
    out += '<th data-col="' + c[0] + '" title="' + COL_TITLE[c[0]] + '"' + (cls ? ' class="' + cls.trim() + '"' : "") + (k < KEY_COLUMNS ? ' style="left:' + COL_LEFT[k] + 'px"' : "") + ">" + c[1] + (c[0] === S.sort.col ? (S.sort.dir > 0 ? " ▲" : " ▼") : "") + "</th>";
  });
  out += "</tr></thead><tbody></tbody>";
  $("features").innerHTML = out;
  $("features").style.width = total + "px";
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
