/* geomtoy explorer, app.js: Controls, selection, the render loop, the URL hash and state test hooks, wiring and
 * start-up (window.explorer). */
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
  const sae = timed("sae", () => renderSAE(D, M));
  LAST = { map: LAST.map, vec, stack, tab, sae };
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
    vectors: LAST.vec, stack: LAST.stack, sae: LAST.sae, map: map || (LAST.map || null), redraw_ms: S.lastMs, redraw_parts: PARTS, errors: ERRORS.length,
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
