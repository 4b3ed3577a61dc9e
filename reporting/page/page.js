// Draws the plots of a `ctpipe report` page as inline SVG (no libraries, no network).
// The page holds every plot's spec as JSON (`<script id="plot-specs">`) and one
// `<figure class="plot" id=...>` per plot. Kinds: "histogram" (equal bins on a numeric axis),
// "bars" (grouped bars over categories, optionally horizontal with threshold marks) and
// "lines" (series of points). After drawing, each figure carries `data-drawn` = the number
// of data marks drawn; a plot that fails is reported on the console and marked `data-error`,
// which the browser test looks for.
"use strict";

const NS = "http://www.w3.org/2000/svg";
const COLORS = {newest: "#1f6fb4", reference: "#9a9a9a", candidate: "#1f6fb4",
                baseline: "#e08a1e", ideal: "#555555", crossed: "#c62828", threshold: "#222222"};

function el(tag, attrs, parent, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function fmt(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "n/a";
  const size = Math.abs(value);
  if (size >= 1e5) return value.toExponential(2);
  if (size >= 100) return value.toFixed(0);
  if (size >= 1 || size === 0) return String(Number(value.toFixed(2)));
  return String(Number(value.toPrecision(3)));
}

function niceTicks(low, high, count) {
  if (!(high > low)) high = low + 1;
  const raw = (high - low) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(low / step - 1e-9) * step; t <= high + step * 1e-9; t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  return ticks;
}

function linear(domain, range) {
  const [d0, d1] = domain[1] > domain[0] ? domain : [domain[0], domain[0] + 1];
  const scale = (v) => range[0] + ((v - d0) / (d1 - d0)) * (range[1] - range[0]);
  scale.domain = [d0, d1];
  return scale;
}

function extent(values, spec) {
  const finite = values.filter(Number.isFinite);
  let low = spec && spec.min !== undefined ? spec.min : Math.min(...finite);
  let high = spec && spec.max !== undefined ? spec.max : Math.max(...finite);
  if (!finite.length) { low = 0; high = 1; }
  if (high === low) { low -= 0.5; high += 0.5; }
  if (!spec || spec.min === undefined || spec.max === undefined) {
    const pad = (high - low) * 0.08;
    if (!spec || spec.min === undefined) low -= pad;
    if (!spec || spec.max === undefined) high += pad;
  }
  return [low, high];
}

function short(label, size) {
  return label.length > size ? label.slice(0, size - 1) + "…" : label;
}

// The frame every kind shares: title, legend, plot area, axis titles.
function frame(figure, spec, height) {
  const width = spec.width || 360;
  const box = {left: spec.left || 52, right: width - 12, top: 46, bottom: height - (spec.bottom || 42)};
  const svg = el("svg", {viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
                         "aria-label": spec.title});
  figure.insertBefore(svg, figure.firstChild);
  el("text", {x: 8, y: 16, class: "title"}, svg, spec.title);
  let x = 8;
  for (const series of spec.series) {
    const color = COLORS[series.style] || "#444";
    const mark = series.style === "ideal"
      ? el("line", {x1: x, x2: x + 14, y1: 30, y2: 30, stroke: color, "stroke-dasharray": "4 3"}, svg)
      : el("rect", {x, y: 25, width: 12, height: 10, fill: color,
                    "fill-opacity": series.style === "reference" ? 0.55 : 0.85}, svg);
    mark.setAttribute("class", "legend-mark");
    const label = el("text", {x: x + 17, y: 34, class: "legend"}, svg, short(series.name, 40));
    x += 30 + label.textContent.length * 6.1;
  }
  if (spec.x_label) {
    el("text", {x: (box.left + box.right) / 2, y: height - 4, class: "axis-title",
                "text-anchor": "middle"}, svg, spec.x_label);
  }
  if (spec.y_label) {
    el("text", {x: 12, y: (box.top + box.bottom) / 2, class: "axis-title", "text-anchor": "middle",
                transform: `rotate(-90 12 ${(box.top + box.bottom) / 2})`}, svg, spec.y_label);
  }
  return {svg, box};
}

function yAxis(svg, box, scale, formatter) {
  for (const tick of niceTicks(scale.domain[0], scale.domain[1], 5)) {
    const y = scale(tick);
    el("line", {x1: box.left, x2: box.right, y1: y, y2: y, class: "grid"}, svg);
    el("text", {x: box.left - 4, y: y + 3, class: "tick", "text-anchor": "end"}, svg,
       (formatter || fmt)(tick));
  }
  el("line", {x1: box.left, x2: box.left, y1: box.top, y2: box.bottom, class: "axis"}, svg);
}

function xAxis(svg, box, scale, ticks, formatter) {
  for (const tick of ticks) {
    const x = scale(tick);
    el("line", {x1: x, x2: x, y1: box.bottom, y2: box.bottom + 4, class: "tick-mark"}, svg);
    el("text", {x, y: box.bottom + 15, class: "tick", "text-anchor": "middle"}, svg,
       (formatter || fmt)(tick));
  }
  el("line", {x1: box.left, x2: box.right, y1: box.bottom, y2: box.bottom, class: "axis"}, svg);
}

const percent = (v) => `${Number((v * 100).toPrecision(3))}%`;

function drawHistogram(figure, spec) {
  const {svg, box} = frame(figure, spec, spec.height || 220);
  const [low, high] = spec.axis;
  const bins = spec.series[0].values.length;
  const edges = Array.from({length: bins + 1}, (_, i) => low + ((high - low) * i) / bins);
  const x = linear([edges[0], edges[edges.length - 1]], [box.left, box.right]);
  const top = Math.max(...spec.series.flatMap((s) => s.values));
  const y = linear([0, top > 0 ? top * 1.1 : 1], [box.bottom, box.top]);
  yAxis(svg, box, y, percent);
  xAxis(svg, box, x, niceTicks(edges[0], edges[edges.length - 1], 4));
  let marks = 0;
  for (const series of spec.series) {
    const color = COLORS[series.style];
    series.values.forEach((value, i) => {
      if (!(value > 0)) return;
      const bar = el("rect", {x: x(edges[i]) + 0.5, y: y(value),
                              width: Math.max(0.5, x(edges[i + 1]) - x(edges[i]) - 1),
                              height: box.bottom - y(value), fill: color, class: "mark",
                              "fill-opacity": series.style === "reference" ? 0.45 : 0.55}, svg);
      el("title", {}, bar, `${series.name}: ${percent(value)} of values in ` +
                             `[${fmt(edges[i])}, ${fmt(edges[i + 1])})`);
      marks += 1;
    });
  }
  return marks;
}

function drawBars(figure, spec) {
  const categories = spec.categories;
  const horizontal = Boolean(spec.horizontal);
  const band = horizontal ? 9 + 7 * spec.series.length : 0;
  const rotate = !horizontal && (categories.length > 8 || categories.some((c) => c.length > 6));
  const height = spec.height || (horizontal ? 100 + categories.length * band : rotate ? 270 : 230);
  const {svg, box} = frame(figure, rotate ? {...spec, bottom: 82} : spec, height);
  const values = spec.series.flatMap((s) => s.values).concat(spec.thresholds || []);
  const [, high] = extent(values.map((v) => (v === null ? NaN : v)), {min: 0, max: spec.max});
  const value = horizontal ? linear([0, high], [box.left, box.right])
                           : linear([0, high], [box.bottom, box.top]);
  const span = horizontal ? (box.bottom - box.top) / categories.length
                          : (box.right - box.left) / categories.length;
  const thickness = (span * 0.8) / spec.series.length;
  if (horizontal) {
    xAxis(svg, box, value, niceTicks(0, high, 4));
    el("line", {x1: box.left, x2: box.left, y1: box.top, y2: box.bottom, class: "axis"}, svg);
    categories.forEach((name, i) => {
      el("text", {x: box.left - 4, y: box.top + span * (i + 0.5) + 3, class: "tick",
                  "text-anchor": "end"}, svg, short(name, 22));
    });
  } else {
    yAxis(svg, box, value, spec.percent ? percent : fmt);
    el("line", {x1: box.left, x2: box.right, y1: box.bottom, y2: box.bottom, class: "axis"}, svg);
    categories.forEach((name, i) => {
      const cx = box.left + span * (i + 0.5);
      const attrs = {x: cx, y: box.bottom + 12, class: "tick",
                     "text-anchor": rotate ? "end" : "middle"};
      if (rotate) attrs.transform = `rotate(-40 ${cx} ${box.bottom + 12})`;
      el("title", {}, el("text", attrs, svg, short(name, rotate ? 13 : 10)), name);
    });
  }
  let marks = 0;
  spec.series.forEach((series, s) => {
    series.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      const offset = span * (i + 0.1) + thickness * s;
      const crossed = series.crossed && series.crossed[i];
      const attrs = {fill: crossed ? COLORS.crossed : COLORS[series.style] || "#444",
                     class: "mark", "fill-opacity": series.style === "reference" ? 0.6 : 0.85};
      if (horizontal) {
        Object.assign(attrs, {x: box.left, y: box.top + offset, height: thickness * 0.9,
                              width: Math.max(1, value(v) - box.left)});
      } else {
        Object.assign(attrs, {x: box.left + offset, y: value(v), width: thickness * 0.9,
                              height: Math.max(1, box.bottom - value(v))});
      }
      const bar = el("rect", attrs, svg);
      const tip = spec.tips && spec.tips[i] ? ` (${spec.tips[i]})` : "";
      el("title", {}, bar, `${categories[i]}: ${series.name} ` +
                           `${spec.percent ? percent(v) : fmt(v)}${tip}`);
      marks += 1;
    });
  });
  (spec.thresholds || []).forEach((t, i) => {
    if (t === null) return;
    const at = value(t);
    const mark = horizontal
      ? el("line", {x1: at, x2: at, y1: box.top + span * i + 1, y2: box.top + span * (i + 1) - 1,
                    stroke: COLORS.threshold, "stroke-width": 2, class: "mark"}, svg)
      : el("line", {x1: box.left + span * i + 1, x2: box.left + span * (i + 1) - 1, y1: at, y2: at,
                    stroke: COLORS.threshold, "stroke-width": 2, class: "mark"}, svg);
    el("title", {}, mark, `${categories[i]}: threshold ${fmt(t)}`);
  });
  return marks;
}

function drawLines(figure, spec) {
  const {svg, box} = frame(figure, spec, spec.height || 240);
  const points = spec.series.flatMap((s) => s.points);
  const x = linear(extent(points.map((p) => p[0]), spec.x), [box.left + 6, box.right - 6]);
  const y = linear(extent(points.map((p) => p[1]), spec.y), [box.bottom, box.top]);
  yAxis(svg, box, y);
  if (spec.x_ticks) {
    const every = Math.ceil(spec.x_ticks.length / 12);
    const ticks = spec.x_ticks.filter((_, i) => i % every === 0);
    xAxis(svg, box, x, ticks.map((t) => t[0]), (v) => ticks.find((t) => t[0] === v)[1]);
  } else {
    xAxis(svg, box, x, niceTicks(x.domain[0], x.domain[1], 5));
  }
  let marks = 0;
  for (const series of spec.series) {
    const color = COLORS[series.style] || "#444";
    const path = series.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
    if (path.length > 1) {
      const line = el("path", {d: path.join(""), fill: "none", stroke: color, "stroke-width": 2,
                               class: "mark"}, svg);
      if (series.style === "ideal") line.setAttribute("stroke-dasharray", "5 4");
      marks += 1;
    }
    if (series.style === "ideal") continue;
    series.points.forEach((p, i) => {
      const flagged = series.flags && series.flags[i];
      const dot = el("circle", {cx: x(p[0]), cy: y(p[1]), r: flagged ? 5 : 3.5, class: "mark",
                                fill: flagged ? COLORS.crossed : color}, svg);
      const label = series.labels ? series.labels[i] : fmt(p[0]);
      el("title", {}, dot, `${series.name}: ${fmt(p[1])} at ${label}`);
      marks += 1;
    });
  }
  return marks;
}

const KINDS = {histogram: drawHistogram, bars: drawBars, lines: drawLines};

function drawAll() {
  const specs = JSON.parse(document.getElementById("plot-specs").textContent);
  for (const figure of document.querySelectorAll("figure.plot")) {
    try {
      const spec = specs[figure.id];
      if (!spec) throw new Error("no spec");
      const draw = KINDS[spec.kind];
      if (!draw) throw new Error(`unknown kind ${spec.kind}`);
      const marks = draw(figure, spec);
      if (!marks) throw new Error("nothing to draw");
      figure.dataset.drawn = String(marks);
    } catch (error) {
      figure.dataset.error = error.message;
      console.error(`plot ${figure.id}: ${error.message}`);
    }
  }
  document.body.dataset.plots = "done";
}

drawAll();
