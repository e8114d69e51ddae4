/* geomtoy explorer, map.js: The phase map over two axes, the D_i-along-x plot under it, tooltips and hover
 * highlighting. */
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
  const avail = Math.max(120, Math.min(560, MAP.width) - P.l - P.r);
  const cw = Math.max(3, Math.min(48, Math.floor(avail / nx))), ch = Math.max(3, Math.min(36, Math.floor(300 / ny), cw * 1.5));
  // the y title runs up the left edge where the grid is tall enough, else above the grid
  ctx.font = "11px system-ui, sans-serif";
  const yTitleW = ay.title ? ctx.measureText(ay.title).width : 0;
  MAP.yTitleUp = yTitleW + 4 <= ch * ny;
  P.t = ay.title && !MAP.yTitleUp ? 22 : 8;
  const xTitleW = ctx.measureText(ax.title).width;
  const W = Math.ceil(Math.max(P.l + cw * nx + P.r, Math.min(300, MAP.width), xTitleW + 8, MAP.yTitleUp ? 0 : yTitleW + 8)), H = P.t + ch * ny + P.b;
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
  // ticks and titles; each drawn text's box is kept (state().map.text: the tests check none is cut)
  const boxes = [];
  const text = (t, x, y) => {
    const w = ctx.measureText(t).width, size = parseFloat(ctx.font);
    const left = ctx.textAlign === "center" ? x - w / 2 : ctx.textAlign === "right" ? x - w : x;
    const top = ctx.textBaseline === "top" ? y : ctx.textBaseline === "bottom" ? y - size : y - size / 2;
    ctx.fillText(t, x, y);
    boxes.push([t, left, top, left + w, top + size]);
  };
  ctx.fillStyle = "#444"; ctx.font = "10px system-ui, sans-serif";
  let widestX = 0;
  for (const l of ax.labels) widestX = Math.max(widestX, ctx.measureText(l).width);
  MAP.everyX = Math.max(1, Math.ceil((widestX + 8) / cw));
  const everyX = MAP.everyX, everyY = Math.max(1, Math.ceil(13 / ch));
  const clampX = (x, w) => Math.min(Math.max(x, w / 2 + 1), W - w / 2 - 1); // centred text kept inside
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (let xv = 0; xv < nx; xv += everyX) text(ax.labels[xv], clampX(P.l + xv * cw + cw / 2, ctx.measureText(ax.labels[xv]).width), P.t + ny * ch + 3);
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (let yv = 0; yv < ny; yv += everyY) text(ay.labels[yv], P.l - 4, P.t + (ny - 1 - yv) * ch + ch / 2);
  ctx.textAlign = "center"; ctx.textBaseline = "bottom"; ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#222";
  text(ax.title, clampX(P.l + (nx * cw) / 2, xTitleW), canvas.height - 2);
  if (ay.title && MAP.yTitleUp) {
    const yc = P.t + (ny * ch) / 2;
    ctx.save(); ctx.translate(11, yc); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "middle"; ctx.fillText(ay.title, 0, 0); ctx.restore();
    boxes.push([ay.title, 11 - 6, yc - yTitleW / 2, 11 + 6, yc + yTitleW / 2]);
  } else if (ay.title) {
    ctx.textAlign = "left"; ctx.textBaseline = "top";
    text("↑ " + ay.title, 2, 4);
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
  return { x: ax.id, y: ay.id, nx, ny, cw, ch, pad_left: P.l, pad_top: P.t, color: colorMode(), width: W, height: H, text: boxes };
}
/** §5.1: every feature's D_i (dots, coloured by polytope) and D* (line) along the map's x axis,
 *  for the models of the map row that holds the selected model. */
function renderDims(D, ax, ay, cells, nx, ny, cw) {
  const wrap = $("dims-wrap");
  if (nx < 2 || ax.kind === "none") { wrap.hidden = true; return; }
  wrap.hidden = false;
  const A = D.A, nA = D.axes.length;
  const yv = ay.kind === "axis" ? A.axis_index[S.inst * nA + ay.k] : ay.kind === "seed" ? D.seeds.indexOf(A.seed[S.inst]) : 0;
  const P = MAP.pad, H = 150, top = 8, canvas = $("dims");
  const width = Math.max(P.l + cw * nx + P.r, Math.min(300, MAP.width)), height = top + H + 22;
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const Y = (d) => top + (1 - Math.min(d, 1.05) / 1.05) * H;
  ctx.font = "10px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const last = [-99, -99]; // the vocabulary's d/k (payload), labels in two columns where crowded
  for (const [d, label] of D.constants.reference_lines) {
    ctx.fillStyle = "#e4e4e4";
    ctx.fillRect(P.l, Math.round(Y(d)), cw * nx, 1);
    ctx.fillStyle = "#888";
    const y = Y(d), col = y - last[0] >= 9 ? 0 : y - last[1] >= 9 ? 1 : -1;
    if (col >= 0) { ctx.fillText(label, P.l - 4 - 24 * col, y); last[col] = y; }
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
