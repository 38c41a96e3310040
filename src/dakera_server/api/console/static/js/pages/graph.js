// Knowledge graph of an agent: memories and the entities they mention, from the agent's graph
// export. It opens on one memory's neighbourhood (depth 1–5); clicking a node expands it.

import { get, seg } from "../api.js";
import { h, replace, shorten } from "../dom.js";
import { areaFor, draw, layout } from "../graphview.js";
import { agentPicker, empty } from "../ui.js";

const MAX_NODES = 400;
const EDGE_TYPES = ["related_to", "shares_entity", "linked_by", "mentions"];

/** Nodes, edges and adjacency of the whole agent graph (memories + entities). */
async function loadGraph(agentId, signal) {
  const [exported, memories] = await Promise.all([
    get(`/v1/agents/${seg(agentId)}/graph/export`, null, signal),
    get(`/v1/agents/${seg(agentId)}/memories`, { limit: 1000, content_preview_chars: 80 }, signal),
  ]);
  const nodes = new Map();
  const addMemory = (id, memory) => {
    if (!nodes.has(id)) nodes.set(id, { id, kind: "memory", label: memory ? memory.content : id, importance: memory ? memory.importance : 0.5, created: memory ? memory.created_at : 0 });
  };
  for (const memory of memories) addMemory(memory.id, memory);
  const edges = [];
  for (const edge of exported.edges || []) {
    addMemory(edge.from_id);
    addMemory(edge.to_id);
    edges.push({ source: edge.from_id, target: edge.to_id, type: edge.edge_type, label: edge.label });
  }
  for (const entity of exported.entities || []) {
    nodes.set(entity.id, { id: entity.id, kind: "entity", label: entity.value, entityType: entity.entity_type, memories: entity.memory_ids.length });
    for (const memoryId of entity.memory_ids) {
      addMemory(memoryId);
      edges.push({ source: memoryId, target: entity.id, type: "mentions" });
    }
  }
  const adjacency = new Map([...nodes.keys()].map((id) => [id, new Set()]));
  for (const edge of edges) {
    adjacency.get(edge.source).add(edge.target);
    adjacency.get(edge.target).add(edge.source);
  }
  return { nodes, edges, adjacency, memories };
}

function neighbourhood(graph, focus, depth, withEntities) {
  const seen = new Set([focus]);
  let frontier = [focus];
  for (let level = 0; level < depth; level++) {
    const next = [];
    for (const id of frontier) {
      for (const other of graph.adjacency.get(id) || []) {
        if (seen.has(other)) continue;
        if (!withEntities && graph.nodes.get(other).kind === "entity") continue;
        seen.add(other);
        next.push(other);
      }
    }
    frontier = next;
  }
  return seen;
}

export async function render({ container, params, query, signal }) {
  const agentId = params[0];
  const picker = await agentPicker(agentId, (id) => {
    location.hash = id ? `#/graph/${seg(id)}` : "#/graph";
  }, signal);
  const heading = h("h1", { tabindex: "-1" }, agentId ? `Graph of ${agentId}` : "Knowledge graph");
  if (!agentId) {
    replace(container, heading, picker, empty("Choose an agent to see how its memories connect."));
    return;
  }
  const graph = await loadGraph(agentId, signal);
  if (!graph.nodes.size) {
    replace(container, heading, picker, empty("This agent has no memories yet."));
    return;
  }
  const newest = [...graph.memories].sort((a, b) => b.created_at - a.created_at);
  const state = {
    focus: query.get("focus") && graph.nodes.has(query.get("focus")) ? query.get("focus") : (newest[0] || [...graph.nodes.values()][0]).id,
    depth: Number(query.get("depth") || 2),
    entities: query.get("entities") !== "0",
    visible: new Set(),
    selected: null,
    area: null,
  };
  const focusSelect = h(
    "select",
    { id: "graph-focus" },
    newest.slice(0, 200).map((m) => h("option", { value: m.id }, shorten(m.content, 60))),
  );
  if (!newest.some((m) => m.id === state.focus)) focusSelect.prepend(h("option", { value: state.focus }, state.focus));
  focusSelect.value = state.focus;
  const depthSelect = h("select", { id: "graph-depth" }, [1, 2, 3, 4, 5].map((d) => h("option", { value: String(d) }, String(d))));
  depthSelect.value = String(state.depth);
  const entityBox = h("input", { id: "graph-entities", type: "checkbox", checked: state.entities });
  const stage = h("div", { id: "graph-stage" });
  const panel = h("aside", { class: "card", id: "graph-panel", "aria-live": "polite" });
  const count = h("p", { class: "muted", id: "graph-count" });
  const listing = h("ul", { id: "graph-list" });

  function reset() {
    state.visible = neighbourhood(graph, state.focus, state.depth, state.entities);
    for (const node of graph.nodes.values()) delete node.x;
    redraw(true);
  }

  function expand(node) {
    let added = 0;
    for (const other of graph.adjacency.get(node.id) || []) {
      if (!state.entities && graph.nodes.get(other).kind === "entity") continue;
      if (!state.visible.has(other) && state.visible.size < MAX_NODES) {
        state.visible.add(other);
        graph.nodes.get(other).near = node.id;
        added += 1;
      }
    }
    return added;
  }

  function describe(node) {
    const neighbours = graph.adjacency.get(node.id).size;
    if (node.kind === "entity") {
      return [h("h2", null, node.label), h("p", null, `${node.entityType} · mentioned by ${node.memories} memories`)];
    }
    return [
      h("h2", null, "Memory"),
      h("p", null, node.label),
      h("p", { class: "muted" }, `importance ${Number(node.importance).toFixed(2)} · ${neighbours} connections`),
      h("a", { href: `#/agents/${seg(agentId)}/memories/${seg(node.id)}` }, "Open memory"),
    ];
  }

  function activate(node) {
    const added = expand(node);
    state.selected = node.id;
    replace(panel, describe(node), h("p", { class: "muted" }, added ? `Expanded: ${added} more nodes.` : "All its neighbours are shown."));
    redraw(false, node.id);
  }

  function redraw(full, keepFocusOn) {
    const nodes = [...state.visible].map((id) => graph.nodes.get(id));
    const edges = graph.edges.filter((e) => state.visible.has(e.source) && state.visible.has(e.target));
    const area = areaFor(stage.clientWidth || container.clientWidth);
    if (area !== state.area) {
      for (const node of graph.nodes.values()) delete node.x;
      state.area = area;
      full = true;
    }
    const fresh = nodes.filter((n) => n.x === undefined).length;
    if (full || fresh) layout(nodes, edges, full ? { area } : { iterations: 120, heat: 30, area });
    const svg = draw(nodes, edges, {
      focusId: state.focus,
      selectedId: state.selected,
      onActivate: activate,
      title: `Knowledge graph of ${agentId}: ${nodes.length} nodes`,
      area,
    });
    replace(stage, svg);
    replace(count, `${nodes.length} nodes (${nodes.filter((n) => n.kind === "memory").length} memories, ${nodes.filter((n) => n.kind === "entity").length} entities) and ${edges.length} edges shown, of ${graph.nodes.size} nodes in the agent's graph.`);
    replace(
      listing,
      nodes.map((n) =>
        h("li", null, n.kind === "memory" ? h("a", { href: `#/agents/${seg(agentId)}/memories/${seg(n.id)}` }, shorten(n.label, 90)) : `${n.entityType}: ${n.label}`),
      ),
    );
    if (keepFocusOn) {
      const again = stage.querySelector(`[data-id="${CSS.escape(keepFocusOn)}"]`);
      if (again) again.focus();
    }
  }

  focusSelect.addEventListener("change", () => {
    state.focus = focusSelect.value;
    state.selected = null;
    reset();
  });
  depthSelect.addEventListener("change", () => {
    state.depth = Number(depthSelect.value);
    reset();
  });
  entityBox.addEventListener("change", () => {
    state.entities = entityBox.checked;
    reset();
  });
  const everything = h("button", { type: "button", class: "btn", id: "graph-all" }, "Show whole agent");
  everything.addEventListener("click", () => {
    const ids = [...graph.nodes.keys()].filter((id) => state.entities || graph.nodes.get(id).kind === "memory");
    state.visible = new Set(ids.slice(0, MAX_NODES));
    for (const node of graph.nodes.values()) delete node.x;
    redraw(true);
    if (ids.length > MAX_NODES) replace(panel, h("p", null, `Showing the first ${MAX_NODES} of ${ids.length} nodes.`));
  });

  replace(panel, h("p", { class: "muted" }, "Click a node (or focus it and press Enter) to expand its neighbours."));
  replace(
    container,
    heading,
    h(
      "div",
      { class: "row" },
      picker,
      h("div", { class: "field inline grow" }, h("label", { for: "graph-focus" }, "Around"), focusSelect),
      h("div", { class: "field inline" }, h("label", { for: "graph-depth" }, "Depth"), depthSelect),
      h("div", { class: "field inline" }, entityBox, h("label", { for: "graph-entities" }, "Entities")),
      everything,
    ),
    h(
      "div",
      { class: "legend", "aria-hidden": "true" },
      h("span", null, h("i", { class: "memory" }), "memory"),
      h("span", null, h("i", { class: "entity" }), "entity"),
      EDGE_TYPES.map((type) => h("span", null, h("i", { class: type }), type)),
    ),
    count,
    h("div", { class: "graph-wrap" }, stage, panel),
    h("details", null, h("summary", null, "Shown nodes as a list"), listing),
  );
  reset();
}
