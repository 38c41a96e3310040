// A line chart over time as SVG: a few series, shared y axis from zero, clock times on x.

import { s } from "./dom.js";

const W = 600;
const H = 220;
const PAD = { left: 48, right: 12, top: 12, bottom: 38 };

function clock(ms) {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

function nice(max) {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) if (max <= step * power) return step * power;
  return 10 * power;
}

/** series: [{name, points: [[time ms, value | null]]}]; nulls break the line. */
export function lineChart(series, { unit, label, digits = 1 }) {
  const times = series.flatMap((x) => x.points.map((p) => p[0]));
  const values = series.flatMap((x) => x.points.map((p) => p[1]).filter((v) => v !== null));
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 1);
  const top = nice(Math.max(...values, 0));
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) =>
    s(
      "g",
      null,
      s("line", { class: f ? "grid" : "axis", x1: PAD.left, x2: W - PAD.right, y1: y(top * f), y2: y(top * f) }),
      s("text", { x: PAD.left - 6, y: y(top * f) + 4, "text-anchor": "end" }, (top * f).toFixed(top * f < 10 ? digits : 0)),
    ),
  );
  const xTicks = times.length
    ? [t0, (t0 + t1) / 2, t1].map((t, i) => s("text", { x: x(t), y: H - PAD.bottom + 16, "text-anchor": ["start", "middle", "end"][i] }, clock(t)))
    : [];
  const lines = series.map((serie, i) => {
    const parts = [];
    let current = [];
    for (const [t, v] of serie.points) {
      if (v === null) {
        if (current.length) parts.push(current);
        current = [];
      } else current.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`);
    }
    if (current.length) parts.push(current);
    return parts.map((points) =>
      points.length === 1
        ? s("circle", { class: `k${i}`, cx: points[0].split(",")[0], cy: points[0].split(",")[1], r: 2.5 })
        : s("polyline", { class: `line s${i}`, points: points.join(" ") }),
    );
  });
  const legend = series.map((serie, i) =>
    s("g", null, s("rect", { class: `k${i}`, x: PAD.left + i * 90, y: H - 14, width: 10, height: 10, rx: 2 }), s("text", { x: PAD.left + i * 90 + 14, y: H - 5 }, serie.name)),
  );
  return s(
    "svg",
    { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${label} (${unit})` },
    s("title", null, `${label} (${unit})`),
    grid,
    xTicks,
    lines,
    legend,
  );
}
