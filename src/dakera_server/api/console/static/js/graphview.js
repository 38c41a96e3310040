// A small force-directed graph drawn as SVG (a few hundred nodes; see docs/console.md for why
// this is hand-written rather than a graph library: it is ~3 KB against cytoscape's 436 KB).

import { s, shorten } from "./dom.js";

const MARGIN = 40;
const WIDE = { width: 1000, height: 620 };
const NARROW = { width: 420, height: 560 };

/** The drawing area for a stage this many CSS pixels wide (portrait on phones). */
export function areaFor(pixels) {
  return pixels && pixels < 640 ? NARROW : WIDE;
}

function clamp(value, low, high) {
  return Math.max(low, Math.min(high, value));
}

/**
 * Fruchterman–Reingold layout. Nodes that already have a position keep it as a start (so an
 * expanded graph moves little); new ones start next to `node.near`, or on a spiral.
 */
export function layout(nodes, edges, { iterations = 300, heat, area = WIDE } = {}) {
  const n = nodes.length;
  if (!n) return;
  const { width: WIDTH, height: HEIGHT } = area;
  heat = heat ?? WIDTH / 10;
  const byId = new Map(nodes.map((node) => [node.id, node]));
  // Ideal edge length: fills the area for big graphs, stays compact for small ones.
  const k = Math.min(Math.sqrt((WIDTH * HEIGHT) / n) * 0.9, 170);
  nodes.forEach((node, i) => {
    if (node.x !== undefined) return;
    const anchor = node.near && byId.get(node.near);
    if (anchor && anchor.x !== undefined) {
      const angle = (i * 2.399963) % (2 * Math.PI);
      node.x = anchor.x + Math.cos(angle) * k * 0.6;
      node.y = anchor.y + Math.sin(angle) * k * 0.6;
    } else {
      const r = 12 * Math.sqrt(i + 1);
      const angle = i * 2.399963; // golden angle: an even spiral
      node.x = WIDTH / 2 + Math.cos(angle) * r * 3;
      node.y = HEIGHT / 2 + Math.sin(angle) * r * 2;
    }
  });
  const links = edges.map((e) => [byId.get(e.source), byId.get(e.target)]).filter(([a, b]) => a && b && a !== b);
  const dx = new Float64Array(n);
  const dy = new Float64Array(n);
  const index = new Map(nodes.map((node, i) => [node, i]));
  for (let step = 0; step < iterations; step++) {
    dx.fill(0);
    dy.fill(0);
    for (let i = 0; i < n; i++) {
      const a = nodes[i];
      for (let j = i + 1; j < n; j++) {
        const b = nodes[j];
        let ddx = a.x - b.x;
        let ddy = a.y - b.y;
        let dist2 = ddx * ddx + ddy * ddy;
        if (dist2 < 0.01) {
          ddx = (i - j) * 0.1;
          ddy = 0.1;
          dist2 = ddx * ddx + ddy * ddy;
        }
        const force = (k * k) / dist2;
        dx[i] += ddx * force;
        dy[i] += ddy * force;
        dx[j] -= ddx * force;
        dy[j] -= ddy * force;
      }
    }
    for (const [a, b] of links) {
      const i = index.get(a);
      const j = index.get(b);
      const ddx = a.x - b.x;
      const ddy = a.y - b.y;
      const dist = Math.sqrt(ddx * ddx + ddy * ddy) || 0.1;
      const force = dist / k;
      dx[i] -= ddx * force;
      dy[i] -= ddy * force;
      dx[j] += ddx * force;
      dy[j] += ddy * force;
    }
    const temperature = heat * (1 - step / iterations) + 1;
    for (let i = 0; i < n; i++) {
      const node = nodes[i];
      // gravity keeps disconnected parts on screen
      dx[i] -= (node.x - WIDTH / 2) * 0.015;
      dy[i] -= (node.y - HEIGHT / 2) * 0.015;
      const length = Math.sqrt(dx[i] * dx[i] + dy[i] * dy[i]) || 1;
      const move = Math.min(length, temperature);
      node.x = clamp(node.x + (dx[i] / length) * move, MARGIN, WIDTH - MARGIN);
      node.y = clamp(node.y + (dy[i] / length) * move, MARGIN, HEIGHT - MARGIN);
    }
  }
  // Centre the drawing in the area.
  const xs = nodes.map((node) => node.x);
  const ys = nodes.map((node) => node.y);
  const shiftX = WIDTH / 2 - (Math.min(...xs) + Math.max(...xs)) / 2;
  const shiftY = HEIGHT / 2 - (Math.min(...ys) + Math.max(...ys)) / 2;
  for (const node of nodes) {
    node.x = clamp(node.x + shiftX, MARGIN, WIDTH - MARGIN);
    node.y = clamp(node.y + shiftY, MARGIN, HEIGHT - MARGIN);
  }
}

/**
 * The SVG for laid-out `nodes` ({id, kind: "memory"|"entity", label, importance}) and `edges`
 * ({source, target, type}). Nodes are buttons: click, Enter or Space calls `onActivate(node)`.
 */
export function draw(nodes, edges, { focusId, selectedId, onActivate, title, area = WIDE }) {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const edgeEls = edges
    .filter((e) => byId.has(e.source) && byId.has(e.target))
    .map((e) => {
      const a = byId.get(e.source);
      const b = byId.get(e.target);
      return s("line", { class: `edge ${e.type}`, x1: a.x.toFixed(1), y1: a.y.toFixed(1), x2: b.x.toFixed(1), y2: b.y.toFixed(1) }, s("title", null, e.type));
    });
  const nodeEls = nodes.map((node) => {
    const classes = ["node", node.kind, node.id === focusId && "focus", node.id === selectedId && "selected"];
    const label = shorten(node.label, node.kind === "entity" ? 22 : 26);
    const shape =
      node.kind === "entity"
        ? s("rect", { x: (node.x - 7).toFixed(1), y: (node.y - 7).toFixed(1), width: 14, height: 14, rx: 3 })
        : s("circle", { cx: node.x.toFixed(1), cy: node.y.toFixed(1), r: (6 + 8 * (Number(node.importance) || 0.5)).toFixed(1) });
    const group = s(
      "g",
      {
        class: classes,
        tabindex: "0",
        role: "button",
        "aria-label": `${node.kind === "entity" ? "Entity" : "Memory"}: ${node.label}`,
        dataset: { id: node.id, kind: node.kind },
      },
      shape,
      // Labels of nodes in the right part go to their left, so they stay inside the drawing.
      node.x > area.width * 0.62
        ? s("text", { x: (node.x - 12).toFixed(1), y: (node.y + 4).toFixed(1), "text-anchor": "end" }, label)
        : s("text", { x: (node.x + 12).toFixed(1), y: (node.y + 4).toFixed(1) }, label),
    );
    group.addEventListener("click", () => onActivate(node));
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        onActivate(node);
      }
    });
    return group;
  });
  return s(
    "svg",
    { class: "graph-svg", viewBox: `0 0 ${area.width} ${area.height}`, role: "group", "aria-label": title, id: "graph-svg" },
    s("g", null, edgeEls),
    s("g", null, nodeEls),
  );
}
