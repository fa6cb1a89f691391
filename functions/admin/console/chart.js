// Two small SVG charts (bars stacked per hour; lines per hour), drawn without a library.
// Colours come from classes in app.css, so the CSP needs no inline style.

const NS = "http://www.w3.org/2000/svg";
const W = 640, H = 220, L = 44, R = 10, T = 10, B = 26;

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v);
}

// The frame: y ticks at 0, ½ and the top, and an hour label every few bars.
function frame(root, labels, top, unit) {
  const plotH = H - T - B;
  for (const f of [0, 0.5, 1]) {
    const y = T + plotH * (1 - f);
    root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: y, y2: y }));
    root.append(svg("text", { class: "tick", x: L - 6, y: y + 3, "text-anchor": "end" }, `${+(top * f).toFixed(1)}${unit}`));
  }
  const step = Math.max(1, Math.ceil(labels.length / 8));
  const slot = (W - L - R) / labels.length;
  labels.forEach((lab, i) => {
    if (i % step === 0) {
      root.append(svg("text", { class: "tick", x: L + slot * (i + 0.5), y: H - 8, "text-anchor": "middle" }, lab));
    }
  });
  return { plotH, slot };
}

function figure(caption, summary, root, series) {
  const fig = document.createElement("figure");
  fig.className = "chart";
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  root.setAttribute("role", "img");
  root.setAttribute("aria-label", summary);
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const s of series) {
    const item = document.createElement("span");
    const sw = document.createElement("span");
    sw.className = `swatch ${s.cls}`;
    item.append(sw, document.createTextNode(s.name));
    legend.append(item);
  }
  fig.append(cap, root, legend);
  return fig;
}

// series: [{name, cls, values}] stacked bottom-up, one bar per label.
export function bars(caption, labels, series) {
  const totals = labels.map((_, i) => series.reduce((a, s) => a + (s.values[i] || 0), 0));
  const top = niceMax(Math.max(...totals, 0));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}` });
  const { plotH, slot } = frame(root, labels, top, "");
  labels.forEach((lab, i) => {
    let base = 0;
    for (const s of series) {
      const v = s.values[i] || 0;
      if (!v) continue;
      const y0 = T + plotH * (1 - base / top), y1 = T + plotH * (1 - (base + v) / top);
      const bar = svg("rect", { class: s.cls, x: L + slot * i + slot * 0.15, width: slot * 0.7, y: y1, height: y0 - y1 });
      bar.append(svg("title", {}, `${lab}: ${v} ${s.name}`));
      root.append(bar);
      base += v;
    }
  });
  const sums = series.map((s) => `${s.values.reduce((a, b) => a + (b || 0), 0)} ${s.name}`).join(", ");
  return figure(caption, `${caption}: ${sums}`, root, series);
}

// series: [{name, cls, values}] where a value may be null (no attempts that hour).
export function lines(caption, labels, series, unit) {
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const top = niceMax(Math.max(...all, 0));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}` });
  const { plotH, slot } = frame(root, labels, top, unit);
  for (const s of series) {
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const x = L + slot * (i + 0.5), y = T + plotH * (1 - v / top);
      d += `${d ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
      const dot = svg("circle", { class: s.cls, cx: x, cy: y, r: 2.5 });
      dot.append(svg("title", {}, `${labels[i]}: ${s.name} ${v}${unit}`));
      root.append(dot);
    });
    if (d) root.append(svg("path", { class: `line ${s.cls}`, d }));
  }
  return figure(caption, `${caption}: ${all.length ? `up to ${Math.max(...all)}${unit}` : "no attempts"}`, root, series);
}
