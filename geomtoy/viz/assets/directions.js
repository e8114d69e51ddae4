/* geomtoy explorer, directions.js: The feature directions card: SVG helpers, the 1-D/2-D/3-D panels of W's columns
 * (tegum factors projected on their principal directions), rotation by drag. */
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
    let out = '<svg width="' + size + '" height="' + h + '" viewBox="0 0 ' + size + " " + h + '"><line x1="' + c + '" y1="4" x2="' + c + '" y2="' + (h - 16) + '" stroke="#ccc"/>';
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
