/* geomtoy explorer, saes.js: The SAE card: for the selected toy model, the SAEs that read its
 * hidden activations (payload "saes", one entry per SAE results directory; geomtoy/viz/saes.py),
 * their scores, and the chosen SAE's decoder directions beside the model's features: drawn over
 * the columns of W for m = 2, as cosines to the true features (heatmap) otherwise. */
// ---------------------------------------------------------------- SAEs of the selected model
function loadSAEs(D) {
  if (D.saeList) return D.saeList;
  D.saeList = (D.saes || []).map((E) => {
    const A = {};
    for (const k in E.arrays) A[k] = decode(E.arrays[k]);
    const axes = E.axes.map((a) => ({ key: a.key, labels: a.labels, index: decode(a.index) }));
    const byToy = new Map();
    for (let j = 0; j < E.n_saes; j++) {
      if (!byToy.has(A.toy[j])) byToy.set(A.toy[j], []);
      byToy.get(A.toy[j]).push(j);
    }
    return { name: E.name, path: E.path, activation: E.activation, instances: E.instances, n: E.n, m: E.m, A, axes, byToy };
  });
  return D.saeList;
}
function saesOf(D, i) {
  const out = [];
  loadSAEs(D).forEach((E, k) => { for (const j of E.byToy.get(i) || []) out.push([k, j]); });
  return out;
}
function saeGrid(E, j) { return E.axes.map((a) => a.key.replace(/^sae\./, "") + " " + a.labels[a.index[j]]).join(", "); }
const SAE_COLUMNS = [
  ["sweep", (E, j) => esc(E.name)], ["grid", (E, j) => esc(saeGrid(E, j))], ["seed", (E, j) => E.A.seed[j]],
  ["width", (E, j) => E.A.width[j]], ["L0", (E, j) => f3(E.A.l0[j])], ["MMCS", (E, j) => f3(E.A.mmcs[j])],
  ["rec > 0.9", (E, j) => f3(E.A.rec90[j])], ["rec > 0.99", (E, j) => f3(E.A.rec99[j])],
  ["dead", (E, j) => E.A.dead[j]], ["expl. var.", (E, j) => f3(E.A.ev[j])],
];
const SAE_TITLE = { L0: "mean active latents per sample", MMCS: "mean over true features of the best decoder cosine",
  "rec > 0.9": "share of true features with a decoder column above cosine 0.9", "rec > 0.99": "same, above 0.99",
  dead: "latents firing on no evaluation sample", "expl. var.": "explained variance of h" };

function renderSAE(D, M) {
  const list = loadSAEs(D);
  $("sae-card").hidden = list.length === 0;
  if (!list.length) return null;
  const mine = saesOf(D, M.i);
  if (!mine.length) {
    const have = new Set();
    list.forEach((E) => E.byToy.forEach((_, t) => have.add(t)));
    const ids = Array.from(have).sort((a, b) => a - b);
    $("sae-sub").textContent = "";
    $("sae-note").innerHTML = "No SAE reads this model. " + list.map((E) => esc(E.name) + " reads " + (E.instances === "best" ? "the best seed of each grid point" : "every model")).join("; ") +
      ": models " + ids.slice(0, 24).map((t) => '<button class="link" data-inst="' + t + '">' + t + "</button>").join(", ") + (ids.length > 24 ? ", …" : "");
    $("sae-table").innerHTML = "";
    $("sae-view").innerHTML = "";
    $("sae-recovery").innerHTML = "";
    return { n: 0, with_saes: ids };
  }
  if (!S.sae || S.sae.inst !== M.i || !mine.some(([k, j]) => k === S.sae.k && j === S.sae.j)) {
    let best = mine[0];
    for (const q of mine) if (list[q[0]].A.mmcs[q[1]] > list[best[0]].A.mmcs[best[1]]) best = q;
    S.sae = { inst: M.i, k: best[0], j: best[1] };
  }
  const E = list[S.sae.k], j = S.sae.j;
  $("sae-note").textContent = mine.length + " SAE" + (mine.length > 1 ? "s" : "") + " read this model's hidden activations h = W x; click a row to draw it.";
  let head = "<tr>" + SAE_COLUMNS.map(([c]) => '<th title="' + esc(SAE_TITLE[c] || "") + '">' + esc(c) + "</th>").join("") + "</tr>";
  const rows = mine.map(([k, q]) => '<tr data-k="' + k + '" data-j="' + q + '"' + (k === S.sae.k && q === j ? ' class="sel"' : "") + ">" +
    SAE_COLUMNS.map(([, f]) => "<td>" + f(list[k], q) + "</td>").join("") + "</tr>").join("");
  $("sae-table").innerHTML = "<thead>" + head + "</thead><tbody>" + rows + "</tbody>";
  const w = E.A.width[j], d0 = E.A.doff[j], n = Math.min(M.n, E.n);
  const view = M.m === 2 && E.m === 2 ? "plane" : "cosines";
  $("sae-sub").textContent = E.name + ": " + saeGrid(E, j) + ", seed " + E.A.seed[j] + " (" + E.activation + ", width " + w + ")";
  $("sae-view").innerHTML = view === "plane"
    ? saePlaneSVG(M, E, j) + '<div class="note">features W<sub>i</sub> (importance colours, index at the tip); decoder columns, unit length (black; dead latents grey, dotted)</div>'
    : '<canvas id="sae-cos"></canvas><div class="note">cos(W<sub>i</sub>, decoder column): rows true features, columns latents ordered by the feature they match best; red +1, blue −1</div>';
  if (view === "cosines") drawSAECosines(D, M, E, j);
  renderSAERecovery(D, M, E, j);
  let recovered = 0;
  for (let f = 0; f < n; f++) if (E.A.rec[j * E.n + f] > 0.99) recovered++;
  return { n: mine.length, sweep: E.name, sae: j, toy: E.A.toy[j], width: w, view, decoders: Array.from(E.A.dec.subarray(d0 * E.m, (d0 + w) * E.m)), recovered_099: recovered };
}

/** m = 2: the model's features (importance colours) and the SAE's unit decoder columns
 * (black; dead latents grey, dotted), as ARENA draws them. */
function saePlaneSVG(M, E, j) {
  const size = 300, c = size / 2, colors = importanceColors(M), w = E.A.width[j], d0 = E.A.doff[j];
  let R = 1;
  for (let f = 0; f < M.n; f++) { const r = Math.hypot(M.W[f], M.W[M.n + f]); if (fin(r)) R = Math.max(R, r); }
  const s = (size / 2 - 14) / (1.1 * R);
  let out = '<svg id="sae-plane" width="' + size + '" height="' + size + '" viewBox="0 0 ' + size + " " + size + '">';
  out += '<line x1="6" y1="' + c + '" x2="' + (size - 6) + '" y2="' + c + '" stroke="#eee"/><line x1="' + c + '" y1="6" x2="' + c + '" y2="' + (size - 6) + '" stroke="#eee"/>';
  for (let f = 0; f < M.n; f++) {
    const x = c + s * M.W[f], y = c - s * M.W[M.n + f];
    if (!fin(x) || !fin(y)) continue;
    out += '<line x1="' + c + '" y1="' + c + '" x2="' + x.toFixed(1) + '" y2="' + y.toFixed(1) + '" stroke="' + colors[f] + '" stroke-width="5" stroke-linecap="round" opacity="0.75" data-f="' + f + '"/>';
    const L = Math.hypot(x - c, y - c) || 1;
    out += '<text x="' + (x + ((x - c) / L) * 10).toFixed(1) + '" y="' + (y + ((y - c) / L) * 10 + 4).toFixed(1) + '" font-size="10.5" text-anchor="middle" fill="#333">' + f + "</text>";
  }
  for (let l = 0; l < w; l++) {
    // W_dec is (m, width) row-major per SAE: row 0 holds x, row 1 y
    const dx = E.A.dec[d0 * E.m + l], dy = E.A.dec[d0 * E.m + w + l], live = E.A.live[d0 + l] > 0;
    const x = c + s * dx, y = c - s * dy;
    out += '<line class="dec" x1="' + c + '" y1="' + c + '" x2="' + x.toFixed(1) + '" y2="' + y.toFixed(1) + '" stroke="' + (live ? "#111" : "#999") + '" stroke-width="1.6"' + (live ? "" : ' stroke-dasharray="3 3"') + "><title>latent " + l + (live ? "" : " (dead)") + "</title></line>";
  }
  return out + "</svg>";
}

/** m != 2: cos(W_i, decoder column) for every true feature (rows) and latent (columns, ordered
 * by the feature they match best), red +1 ... blue -1. */
function drawSAECosines(D, M, E, j) {
  const w = E.A.width[j], d0 = E.A.doff[j], n = E.n, cell = Math.max(2, Math.min(14, Math.floor(520 / w), Math.floor(320 / n)));
  const canvas = $("sae-cos"), padL = 26, padT = 4;
  canvas.width = padL + cell * w + 2;
  canvas.height = padT + cell * n + 2;
  const ctx = canvas.getContext("2d"), base = d0 * n; // cos (n, width) row-major per SAE
  for (let f = 0; f < n; f++) {
    for (let a = 0; a < w; a++) {
      const l = E.A.order[d0 + a], v = E.A.cos[base + f * w + l];
      ctx.fillStyle = css(RDBU((v + 1) / 2));
      ctx.fillRect(padL + a * cell, padT + f * cell, cell, cell);
    }
  }
  ctx.fillStyle = "#666";
  ctx.font = "10px system-ui, sans-serif";
  ctx.textAlign = "right";
  const every = Math.ceil(10 / cell);
  for (let f = 0; f < n; f += every) ctx.fillText(String(f), padL - 3, padT + f * cell + cell / 2 + 3);
  canvas.onmousemove = (e) => {
    const r = canvas.getBoundingClientRect(), a = Math.floor((e.clientX - r.left - padL) / cell), f = Math.floor((e.clientY - r.top - padT) / cell);
    if (a < 0 || a >= w || f < 0 || f >= n) return hideTip();
    const l = E.A.order[d0 + a];
    showTip(e, "feature " + f + ", latent " + l + (E.A.live[d0 + l] ? "" : " (dead)") + ": cos " + f3(E.A.cos[base + f * w + l]));
  };
  canvas.onmouseleave = hideTip;
}

/** Each true feature's recovery (best decoder cosine) by the feature's polytope. */
function renderSAERecovery(D, M, E, j) {
  const n = Math.min(M.n, E.n);
  let out = "<thead><tr><th>feature</th><th>recovery</th><th>polytope</th></tr></thead><tbody>";
  for (let f = 0; f < n; f++) {
    const r = E.A.rec[j * E.n + f], p = D.polytopes[M.poly[f]];
    out += '<tr data-f="' + f + '"><td>' + f + '</td><td><span class="chip" style="background:' + css(VIRIDIS(fin(r) ? r : NaN)) + '"></span>' + f3(r) + "</td><td>" + esc(p) + "</td></tr>";
  }
  $("sae-recovery").innerHTML = out + "</tbody>";
}

$("sae-table").addEventListener("click", (e) => {
  const tr = e.target.closest("tr[data-k]");
  if (!tr || !S.sae) return;
  S.sae = { inst: S.inst, k: +tr.dataset.k, j: +tr.dataset.j };
  render();
});
$("sae-note").addEventListener("click", (e) => {
  const b = e.target.closest("[data-inst]");
  if (b) selectInstance(+b.dataset.inst);
});
