"""The learning page: one self-contained HTML file (inline CSS, JavaScript and SVG) around view.py's data.

The data goes in as JSON inside <script type="application/json">, with every <, > and & escaped, so no name in a
config can close the script or open a tag; the JavaScript reads it with JSON.parse and puts text on the page with
textContent only.
"""

from __future__ import annotations

import json

from bpcli.results import finite_or_none


def page_json(data: dict) -> str:
    """The page's data as JSON safe inside a script element: no <, > or & survives (\\u003c ...)."""
    text = json.dumps(finite_or_none(data), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def view_html(data: dict) -> str:
    """The whole page for a ViewPage.to_dict()."""
    return TEMPLATE.replace("/*DATA*/", page_json(data), 1)


CSS = """
:root { --blue: #0072B2; --orange: #D55E00; --ink: #1b1b1b; --mute: #5a5a5a; --line: #d0d0d0; --bg: #fafafa; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--bg); }
header { padding: 8px 16px; border-bottom: 1px solid var(--line); background: #fff; }
h1 { font-size: 19px; margin: 0; display: inline; }
#source { color: var(--mute); margin-left: 8px; font-size: 13px; }
#note { color: var(--mute); font-size: 13px; margin: 2px 0 0; }
main { display: grid; grid-template-columns: minmax(0, 1.15fr) minmax(0, 1fr); gap: 12px; padding: 10px 16px; }
section.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
#net { width: 100%; height: auto; display: block; }
.controls { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center; }
.controls label { font-size: 13px; color: var(--mute); }
#epoch { flex: 1 1 200px; min-width: 160px; }
#epoch-label { font-variant-numeric: tabular-nums; min-width: 8em; font-weight: 600; }
select, button { font: inherit; font-size: 14px; padding: 3px 6px; }
select { max-width: 100%; min-width: 0; flex: 1 1 12em; }
button { min-width: 4.5em; }
#curve { width: 100%; height: auto; display: block; }
#plane-box { display: flex; gap: 12px; align-items: flex-start; flex-wrap: wrap; }
#plane { width: 280px; max-width: 100%; height: auto; }
.legend { font-size: 12px; color: var(--mute); }
#plane-box .legend { flex: 1 1 180px; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: -2px; border: 1px solid #999; }
#chain { margin-top: 10px; }
#chain h2 { font-size: 16px; margin: 0 0 4px; }
#chain h3 { font-size: 14px; margin: 10px 0 2px; }
#chain .eq { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 13px; }
#chain .note { color: var(--mute); font-size: 12px; }
#chain ol { margin: 2px 0; padding-left: 20px; }
#chain summary { cursor: pointer; font-size: 14px; font-weight: 600; margin-top: 6px; }
#chain table { border-collapse: collapse; font-size: 13px; margin: 2px 0; }
#chain td, #chain th { padding: 1px 8px 1px 0; text-align: right; font-family: ui-monospace, Menlo, monospace;
                       white-space: nowrap; }
#chain th { color: var(--mute); font-weight: normal; border-bottom: 1px solid var(--line); }
#chain td.l, #chain th.l { text-align: left; }
#chain .grad { font-weight: 700; font-size: 15px; }
#chain .grad .note { display: block; font-weight: normal; font-family: system-ui, sans-serif; }
.tablewrap { overflow-x: auto; }
g.param { cursor: pointer; }
g.param:focus { outline: none; }
g.param:focus .edge, g.param.sel .edge { stroke-dasharray: none; filter: drop-shadow(0 0 2px #000); }
g.param:focus .handle, g.param.sel .handle { stroke: #000; stroke-width: 2.5; }
.nodelabel { font-size: 13px; text-anchor: middle; pointer-events: none; }
.acttext { font-size: 11px; text-anchor: middle; fill: var(--mute); pointer-events: none; }
.layerlabel { font-size: 11px; text-anchor: middle; fill: var(--mute); }
@media (max-width: 860px) {
  main { grid-template-columns: minmax(0, 1fr); padding: 8px; gap: 8px; }
  main > div { display: contents; }
  #net-card { order: 1; } #time-card { order: 2; } #chain { order: 3; margin-top: 0; } #plane-box { order: 4; }
  header { padding: 6px 8px; }
  #source { display: block; margin-left: 0; }
}
"""

JS = r"""
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const NS = "http://www.w3.org/2000/svg";
const LEVELS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
const CLASS = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999"];
const LOW = [213, 94, 0], MID = [247, 247, 247], HIGH = [0, 114, 178];  // orange - white - blue
const net = D.network, S = D.samples;
let ei = D.epochs.length - 1, si = -1, param = null, timer = null, stepsOpen = false;  // si -1: the mean over the samples

function el(tag, attrs, text, parent) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined && text !== null) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function sv(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function mix(a, b, t) { return a.map((v, i) => Math.round(v + (b[i] - v) * t)); }
function ramp(ch) {  // a colour level (one character) -> a colour on the diverging scale
  const t = LEVELS.indexOf(ch) / (LEVELS.length - 1);
  const c = t < 0.5 ? mix(LOW, MID, t * 2) : mix(MID, HIGH, (t - 0.5) * 2);
  return "rgb(" + c.join(",") + ")";
}
function classColour(ch, light) {
  const c = CLASS[LEVELS.indexOf(ch) % CLASS.length];
  return light ? c + "80" : c;
}
function pale(ch) {  // the plane's background: the same scale, lighter, so the samples stand out
  const t = LEVELS.indexOf(ch) / (LEVELS.length - 1);
  const c = t < 0.5 ? mix(LOW, MID, t * 2) : mix(MID, HIGH, (t - 0.5) * 2);
  return "rgb(" + mix(c, [255, 255, 255], 0.35).join(",") + ")";
}

// --- the network -------------------------------------------------------------------------------
const narrow = window.innerWidth < 600;
const most = Math.max(D.network.inputs.length, ...D.network.layers.map(c => c.nodes.length));
const W = narrow ? 380 : 640, R = narrow ? 24 : 30, H = Math.max(200, Math.min(620, most * (2 * R + 44) + 50));
const svg = document.getElementById("net");
const cols = [{nodes: net.inputs, labels: net.inputs}].concat(net.layers);
const pos = cols.map((c, l) => c.nodes.map((_, j) => {
  const n = c.nodes.length, gap = Math.min(2 * R + 44, (H - 50) / Math.max(n, 1));
  return [R + 30 + l * (W - 2 * R - 70) / Math.max(cols.length - 1, 1), 20 + (H - 20) / 2 + (j - (n - 1) / 2) * gap];
}));
const rad = cols.map(c => Math.max(6, Math.min(R, (H - 50) / Math.max(c.nodes.length, 1) / 2 - 20)));
svg.setAttribute("viewBox", "0 0 " + W + " " + H);
const gEdges = sv("g", {}, svg), gNodes = sv("g", {}, svg);
const paramEls = {};
const plane = S.plane, N = plane ? plane.n : 0;

function paramGroup(p, parent) {
  const g = sv("g", {"class": "param", "data-param": p.name, tabindex: "0", role: "button"}, parent);
  g.addEventListener("click", () => choose(p.name));
  g.addEventListener("keydown", ev => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); choose(p.name); } });
  paramEls[p.name] = g;
  return g;
}
for (const p of net.params) {
  const l = p.layer + 1;
  if (p.kind === "W") {
    const a = pos[l - 1][p.from], b = pos[l][p.to];
    const g = paramGroup(p, gEdges);
    sv("line", {x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: "transparent", "stroke-width": 12}, g);
    sv("line", {"class": "edge", x1: a[0], y1: a[1], x2: b[0], y2: b[1]}, g);
    const t = 0.72;
    sv("circle", {"class": "handle", cx: a[0] + (b[0] - a[0]) * t, cy: a[1] + (b[1] - a[1]) * t, r: 4.5,
                  fill: "#fff", "stroke-width": 1.5}, g);
  } else {
    const nodes = p.to === null ? net.layers[p.layer].nodes.map((_, j) => j) : [p.to];
    const g = paramGroup(p, gNodes);
    for (const j of nodes) {
      const b = pos[l][j], r = rad[l];
      sv("line", {"class": "edge", x1: b[0] - r - 12, y1: b[1] - r - 10, x2: b[0] - r * 0.6, y2: b[1] - r * 0.6}, g);
      sv("rect", {"class": "handle", x: b[0] - r - 18, y: b[1] - r - 16, width: 11, height: 11, rx: 2,
                  fill: "#fff", "stroke-width": 1.5}, g);
    }
  }
}
const nodeEls = [], heatEls = [];
cols.forEach((c, l) => {
  const x = pos[l][0][0];
  const t = sv("text", {"class": "layerlabel", x: x, y: 14}, gNodes);
  t.textContent = l === 0 ? "inputs" : "layer " + c.letter + " (" + c.activation + ")";
  nodeEls.push(c.nodes.map((name, j) => {
    const [cx, cy] = pos[l][j], r = rad[l];
    const g = sv("g", {"aria-label": "node " + c.labels[j]}, gNodes);
    const circ = sv("circle", {cx: cx, cy: cy, r: r, fill: l === 0 ? "#eee" : "#fff", stroke: "#333",
                               "stroke-width": 1.5}, g);
    if (plane && l > 0) {  // the node's activation over the input plane, inside the node
      const clip = sv("clipPath", {id: "clip" + l + "_" + j}, g);
      sv("circle", {cx: cx, cy: cy, r: r - 1}, clip);
      const hg = sv("g", {"clip-path": "url(#clip" + l + "_" + j + ")"}, g);
      const cell = 2 * r / N, cells = [];
      for (let k = 0; k < N * N; k++)
        cells.push(sv("rect", {x: cx - r + (k % N) * cell, y: cy - r + Math.floor(k / N) * cell,
                               width: cell + 0.3, height: cell + 0.3}, hg));
      heatEls.push({l: l - 1, j: j, cells: cells});
      g.appendChild(circ);  // the ring on top
      circ.setAttribute("fill", "none");
      circ.setAttribute("stroke-width", "4");
    }
    const label = sv("text", {"class": "nodelabel", x: cx, y: cy - r - 4}, gNodes);
    label.textContent = c.labels[j];
    const act = sv("text", {"class": "acttext", x: cx, y: cy + r + 12}, gNodes);
    return {circ: circ, act: act, ring: plane && l > 0};
  }));
});

// --- the controls ------------------------------------------------------------------------------
const slider = document.getElementById("epoch");
slider.max = D.epochs.length - 1;
slider.value = ei;
const sampleSel = document.getElementById("sample");
el("option", {value: "-1"}, "mean over the " + S.m + " samples", sampleSel);
S.labels.forEach((lab, k) => el("option", {value: String(k)}, lab, sampleSel));
const paramSel = document.getElementById("param");
el("option", {value: ""}, "choose a weight or bias", paramSel);
for (const p of net.params) {
  const loc = net.explain[p.name].location;
  el("option", {value: p.name}, p.name + " (" + (p.kind === "W" ? "weight " + loc.from + " -> " + loc.to : "bias of " + loc.to) + ")", paramSel);
}
slider.addEventListener("input", () => { ei = +slider.value; draw(); });
sampleSel.addEventListener("change", () => { si = +sampleSel.value; draw(); });
paramSel.addEventListener("change", () => { if (paramSel.value) choose(paramSel.value); });
const play = document.getElementById("play");
play.addEventListener("click", () => {
  if (timer) { clearInterval(timer); timer = null; play.textContent = "play"; play.setAttribute("aria-pressed", "false"); return; }
  if (ei >= D.epochs.length - 1) ei = 0;
  play.textContent = "pause"; play.setAttribute("aria-pressed", "true");
  timer = setInterval(() => {
    if (ei >= D.epochs.length - 1) { play.click(); return; }
    ei += 1; slider.value = ei; draw();
  }, Math.max(40, 6000 / D.epochs.length));
});

// --- the loss curve ----------------------------------------------------------------------------
const curve = document.getElementById("curve");
const CW = 420, CH = 150, CL = 64, CR = 10, CT = 10, CB = 26;
curve.setAttribute("viewBox", "0 0 " + CW + " " + CH);
const cx = x => CL + x * (CW - CL - CR), cy = y => CT + (1 - y) * (CH - CT - CB);
sv("rect", {x: CL, y: CT, width: CW - CL - CR, height: CH - CT - CB, fill: "#fff", stroke: "#ccc"}, curve);
function polyline(pts, attrs) {
  if (!pts.length) return;
  sv("polyline", Object.assign({points: pts.map(p => cx(p[0]).toFixed(1) + "," + cy(p[1]).toFixed(1)).join(" "),
                                fill: "none", "stroke-width": 1.8}, attrs), curve);
}
polyline(D.curve.train, {stroke: "#0072B2"});
polyline(D.curve.val, {stroke: "#D55E00", "stroke-dasharray": "5 3"});
function ctext(x, y, s, anchor) { const t = sv("text", {x: x, y: y, "font-size": 11, fill: "#555", "text-anchor": anchor || "start"}, curve); t.textContent = s; }
if (D.curve.train.length) {
  ctext(CL - 4, cy(0) + 4, D.curve.ticks[0][1], "end");
  ctext(CL - 4, cy(1) + 4, D.curve.ticks[1][1], "end");
  ctext(CL, CH - 8, "epoch " + D.curve.epochs[0]);
  ctext(CW - CR, CH - 8, "epoch " + D.curve.epochs[1], "end");
  document.getElementById("curve-note").textContent = "The loss over the epochs" + (D.curve.val.length ? " (solid) and the validation loss (dashed)" : "") +
    (D.curve.log ? ", log scale" : "") + "; the vertical line is the epoch shown.";
} else {
  ctext((CL + CW) / 2, CH / 2, "no training yet: the network as initialised", "middle");
}
const marker = sv("line", {y1: CT, y2: CH - CB, stroke: "#000", "stroke-width": 1.2}, curve);

// --- the input plane ---------------------------------------------------------------------------
let planeCells = [], planeDots = [];
if (plane) {
  document.getElementById("plane-box").hidden = false;
  const P = document.getElementById("plane"), PS = 240;
  P.setAttribute("viewBox", "0 0 " + (PS + 40) + " " + (PS + 34));
  const c = PS / N;
  for (let k = 0; k < N * N; k++)
    planeCells.push(sv("rect", {x: 30 + (k % N) * c, y: 4 + Math.floor(k / N) * c, width: c + 0.3, height: c + 0.3}, P));
  plane.points.forEach((p, k) => {
    const ch = plane.targets[k];
    planeDots.push(sv("circle", {cx: 30 + p[0] * PS, cy: 4 + p[1] * PS, r: 5, "stroke-width": 2, stroke: "#fff",
                                 fill: plane.classes ? classColour(ch) : ramp(ch)}, P));
  });
  const lab = (x, y, s, a, rot) => { const t = sv("text", {x: x, y: y, "font-size": 11, fill: "#444", "text-anchor": a}, P); if (rot) t.setAttribute("transform", "rotate(-90 " + x + " " + y + ")"); t.textContent = s; };
  lab(30, PS + 18, plane.range[0][0], "start");
  lab(30 + PS, PS + 18, plane.range[0][1], "end");
  lab(30 + PS / 2, PS + 30, plane.inputs[0] + (plane.scaled ? " (standardised)" : ""), "middle");
  lab(22, 4 + PS, plane.range[1][0], "start", true);
  lab(22, 4, plane.range[1][1], "end", true);
  lab(12, 4 + PS / 2, plane.inputs[1], "middle", true);
}

// --- drawing an epoch ----------------------------------------------------------------------------
function draw() {
  const E = D.epochs[ei];
  document.getElementById("epoch-label").textContent = "epoch " + E.epoch + " (" + (ei + 1) + " of " + D.epochs.length + ")";
  slider.setAttribute("aria-valuetext", "epoch " + E.epoch);
  document.body.dataset.epoch = E.epoch;
  for (const p of net.params) {
    const g = paramEls[p.name], v = E.weights[p.name];
    const colour = v >= 0 ? "#0072B2" : "#D55E00";
    g.dataset.value = String(v);
    g.setAttribute("aria-label", p.name + " = " + E.weights_text[p.name]);
    for (const e of g.querySelectorAll(".edge")) {
      e.setAttribute("stroke", colour);
      e.setAttribute("stroke-width", (0.6 + 7 * Math.min(1, Math.abs(v) / E.scale)).toFixed(2));
      e.setAttribute("stroke-dasharray", v >= 0 ? "" : "6 3");
    }
    for (const h of g.querySelectorAll(".handle")) h.setAttribute("stroke", colour);
  }
  nodeEls.forEach((layer, l) => layer.forEach((n, j) => {
    if (l === 0) {
      n.act.textContent = si < 0 ? "" : S.x_text[si][j];
      return;
    }
    const A = E.acts[l - 1];
    const ch = si < 0 ? A.mean_level[j] : A.levels[j][si];
    const txt = si < 0 ? A.mean_text[j] : A.text[j][si];
    n.circ.setAttribute(n.ring ? "stroke" : "fill", ramp(ch));
    n.act.textContent = (si < 0 ? "mean " : "") + txt;
  }));
  if (E.heat) {
    for (const h of heatEls) {
      const s = E.heat.nodes[h.l][h.j];
      h.cells.forEach((c, k) => c.setAttribute("fill", ramp(s[k])));
    }
    planeCells.forEach((c, k) => c.setAttribute("fill", plane.classes ? classColour(E.heat.plane[k], true) : pale(E.heat.plane[k])));
    planeDots.forEach((d, k) => { const on = si >= 0 && S.shown[si] === k + 1; d.setAttribute("r", on ? 8 : 5); d.setAttribute("stroke", on ? "#000" : "#fff"); });
  }
  if (E.x !== null) { marker.setAttribute("x1", cx(E.x)); marker.setAttribute("x2", cx(E.x)); }
  if (param) showChain(param);
}

// --- the chain rule of one parameter -----------------------------------------------------------------
function table(parent, head, rows, leftCols, cls) {
  const wrap = el("div", {"class": "tablewrap"}, null, parent);
  const t = el("table", {"class": cls || ""}, null, wrap);
  const tr = el("tr", {}, null, t);
  head.forEach((h, k) => el("th", {"class": (leftCols || []).includes(k) ? "l" : "", scope: "col"}, h, tr));
  for (const r of rows) {
    const row = el("tr", {}, null, t);
    r.forEach((c, k) => el("td", {"class": (leftCols || []).includes(k) ? "l" : ""}, c, row));
  }
  return t;
}
function choose(name) {
  param = name;
  paramSel.value = name;
  for (const k in paramEls) paramEls[k].classList.toggle("sel", k === name);
  showChain(name);
}
function showChain(name) {
  const box = document.getElementById("chain");
  box.replaceChildren();
  box.hidden = false;
  const E = D.epochs[ei], T = net.explain[name], C = E.chain[name], loc = T.location;
  el("h2", {}, "dC/d" + name + " at epoch " + E.epoch + ": " + name + " = " + C.value, box);
  el("p", {"class": "note"}, T.kind + " of layer " + loc.layer + (T.kind === "weight" ? " from " + loc.from : "") +
     " into node " + loc.to + (loc["class"] ? " (class " + loc["class"] + ")" : ""), box);
  el("div", {"class": "eq"}, T.chain[0], box);
  el("div", {"class": "note"}, T.chain[1], box);
  const steps = el("details", {"class": "steps"}, null, box);
  steps.open = stepsOpen;
  steps.addEventListener("toggle", () => { stepsOpen = steps.open; });
  el("summary", {}, "the chain rule in " + T.steps.length + " steps", steps);
  const ol = el("ol", {}, null, steps);
  for (const s of T.steps) {
    const li = el("li", {}, null, ol);
    el("div", {"class": "eq"}, s[1], li);
    el("div", {"class": "note"}, s[2], li);
  }
  const syms = T.factors.map(f => f[0]);
  // the upstream sum dL/do per sample: its own column, or the factor it is (a hidden weight with several paths)
  const upK = T.upstream ? syms.indexOf(T.upstream[0]) : -1;
  const upstream = C.upstream || (upK >= 0 ? C.factors[upK] : null);
  if (si >= 0) {
    el("h3", {}, "Every factor at " + S.labels[si], box);
    const rows = T.factors.map((f, k) => [f[0], C.factors[k][si], f[1]]);
    rows.push(["dL_" + S.shown[si] + "/d" + name, C.products[si], "the product"]);
    table(box, ["factor", "value", "rule"], rows, [0, 2], "factors");
    if (upstream)
      el("p", {"class": "eq"}, "upstream sum " + T.upstream[0] + " = " + upstream[si] + "  (" + T.upstream[1] + ")", box);
  } else {
    el("h3", {}, "Every factor at each sample" + (S.shown.length < S.m ? " (" + S.shown.length + " of " + S.m + " shown)" : ""), box);
    const rows = S.shown.map((i, k) => [String(i)].concat(C.factors.map(f => f[k]), [C.products[k]]));
    table(box, ["i"].concat(syms, ["dL_i/d" + name]), rows, [], "factors");
    if (upstream && upK < 0)
      el("p", {"class": "note"}, "the upstream sum " + T.upstream[0] + " (" + T.upstream[1] + "): " + upstream.join(", "), box);
  }
  el("p", {"class": "eq"}, "mean over the " + S.m + " samples: dC/d" + name + " = 1/" + S.m + " * sum_i dL_i/d" + name + " = " + C.mean, box);
  if (T.sums.length) {
    el("h3", {}, "The upstream sum at sample " + T.detail_sample + " (explain's detail sample)", box);
    T.sums.forEach((s, k) => {
      const [total, nums] = C.sums[k];
      el("div", {"class": "note"}, s[0], box);
      const rows = s[2].map((r, q) => [r[0], r[1] + " = " + nums[q][0], r[2] + " = " + nums[q][1], nums[q][2]]);
      rows.push(["", "", s[1] + " =", total]);
      table(box, ["node", "delta", "weight", "delta * weight"], rows, [0, 1, 2]);
    });
  }
  if (T.paths && C.paths && T.paths[1].length > 1) {
    const [sampleSum, total, list] = C.paths;
    el("h3", {}, T.paths[0] + " paths from " + name + " to the loss (values at sample " + T.detail_sample + ")", box);
    const rows = T.paths[1].map((p, k) => [p[0], p[1].map((sym, q) => sym + " = " + list[k][0][q]).join(" * "), list[k][1], list[k][2]]);
    rows.push(["sum", "", sampleSum, total]);
    table(box, ["path", "factors", "product", "mean over samples"], rows, [0, 1]);
  }
  const g = el("p", {"class": "grad eq", "data-grad": C.engine}, "dC/d" + name + " = " + C.engine, box);
  el("span", {"class": "note"}, "  the engine's gradient (backward pass)" + (C.agrees ? "; the mean above agrees" : "; the mean above DISAGREES") +
     "; central difference " + C.numeric[0] + ": " + C.numeric[1], g);
  const U = C.update, TU = T.update;
  el("h3", {}, "The update at epoch " + E.epoch + " (training step t = " + U.t + ")", box);
  table(box, ["term", "value"], [["optimiser", TU.optimizer], ["lr", TU.lr]].concat(U.terms), [0]);
  el("p", {"class": "eq upd", "data-new": U["new"]}, name + " <- " + U.old + " - " + (U.terms.find(t => t[0] === "step") || ["", U.gradient])[1] + " = " + U["new"], box);
  const note = U.note === undefined ? TU.note : U.note;
  if (note) el("p", {"class": "note"}, note, box);
}

document.getElementById("title").textContent = D.title;
document.title = "bpcli view: " + D.title;
document.getElementById("source").textContent = D.source + " · " + D.kept + " kept epoch(s), " + D.embedded + " on the slider";
document.getElementById("note").textContent = D.note;
draw();
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>bpcli view</title>
<style>""" + CSS + """</style>
</head>
<body>
<header><h1 id="title"></h1><span id="source"></span><p id="note"></p></header>
<main>
<div>
<section class="card" id="net-card" aria-label="the network">
<svg id="net" role="group" aria-label="The network: click a weight (a line's small circle) or a bias (a small square) for its chain rule"></svg>
<p class="legend"><span class="swatch" style="background:#0072B2"></span> positive weight
 <span class="swatch" style="background:#D55E00"></span> negative weight (dashed); width by size.
 Nodes: activation, orange low, white middle, blue high.</p>
</section>
<section class="card" id="plane-box" hidden aria-label="the output over the input plane">
<svg id="plane" role="img" aria-label="the network's output over the plane of its two inputs, with the training samples"></svg>
<p class="legend">The output over the input plane at this epoch, the training samples as dots (their targets' colour);
each hidden node shows its own activation over the same plane.</p>
</section>
</div>
<div>
<section class="card" id="time-card" aria-label="time and sample">
<div class="controls">
<label for="epoch">epoch</label>
<input type="range" id="epoch" min="0" max="0" step="1" value="0">
<span id="epoch-label" aria-live="polite"></span>
<button id="play" type="button" aria-pressed="false">play</button>
</div>
<div class="controls">
<label for="sample">sample</label><select id="sample"></select>
</div>
<div class="controls">
<label for="param">parameter</label><select id="param"></select>
</div>
<svg id="curve" role="img" aria-label="the loss over the epochs, a line at the selected epoch"></svg>
<p class="legend" id="curve-note"></p>
</section>
<section class="card" id="chain" hidden aria-live="polite" aria-label="the chain rule of the chosen parameter"></section>
</div>
</main>
<script type="application/json" id="data">/*DATA*/</script>
<script>""" + JS + """</script>
</body>
</html>
"""
