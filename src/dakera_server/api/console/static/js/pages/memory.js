// One memory: content, fields, metadata, entities, graph links and feedback history.

import { call, get, post, seg } from "../api.js";
import { field, h, num, replace, shorten, table, when } from "../dom.js";
import { agentNamespace, can } from "../session.js";
import { act, confirmAction, empty, errorBox, notify, writes } from "../ui.js";

function facts(memory) {
  const rows = [
    ["Id", h("code", null, memory.id)],
    ["Type", memory.memory_type],
    ["Importance", h("span", { id: "memory-importance" }, num(memory.importance))],
    ["Tags", (memory.tags || []).length ? memory.tags.map((t) => h("span", { class: "tag" }, t)) : "—"],
    ["Session", memory.session_id ? h("a", { href: `#/sessions/${seg(memory.agent_id)}?session=${seg(memory.session_id)}` }, memory.session_id) : "—"],
    ["Created", when(memory.created_at)],
    ["Updated", when(memory.updated_at)],
    ["Last recalled", when(memory.last_accessed_at)],
    ["Recalled", `${memory.access_count ?? 0} times`],
    ["Expires", memory.expires_at ? when(memory.expires_at) : "never"],
  ];
  return h("dl", { class: "facts" }, rows.map(([name, value]) => [h("dt", null, name), h("dd", null, value)]));
}

/** Section that loads on its own, so one failing part never blanks the page. */
function section(title, id, load) {
  const body = h("div", { id }, h("p", { class: "muted" }, "Loading…"));
  load()
    .then((content) => replace(body, content))
    .catch((error) => {
      if (error && error.name === "AbortError") return;
      replace(body, errorBox(error));
    });
  return [h("h2", null, title), body];
}

async function entities(memoryId, signal) {
  const answer = await get(`/v1/memory/entities/${seg(memoryId)}`, null, signal);
  if (!answer.entities.length) return empty("No entities were extracted from this memory.");
  return h(
    "div",
    { class: "chips" },
    answer.entities.map((e) => h("span", { class: "chip" }, h("b", null, e.entity_type), e.value)),
  );
}

async function links(memory, signal) {
  const graph = await get(`/v1/memories/${seg(memory.id)}/graph`, { depth: 1 }, signal);
  const previews = new Map(graph.nodes.map((n) => [n.memory_id, n.content_preview]));
  const edges = graph.nodes.flatMap((n) => n.edges || []);
  const seen = new Set();
  const rows = [];
  for (const edge of edges) {
    const other = edge.from_id === memory.id ? edge.to_id : edge.from_id;
    const key = `${edge.edge_type}|${edge.from_id}|${edge.to_id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push(
      h(
        "tr",
        null,
        h("td", null, edge.edge_type + (edge.label ? ` (${edge.label})` : "")),
        h("td", null, edge.from_id === memory.id ? "→" : "←"),
        h("td", null, h("a", { href: `#/agents/${seg(memory.agent_id)}/memories/${seg(other)}` }, shorten(previews.get(other) || other, 90))),
        h("td", { class: "num" }, num(edge.weight)),
      ),
    );
  }
  return [
    rows.length ? table(["Edge", "", "Memory", "Weight"], rows, { id: "links-table" }) : empty("No links to other memories."),
    h("a", { href: `#/graph/${seg(memory.agent_id)}?focus=${seg(memory.id)}` }, "Open in the graph view"),
  ];
}

async function feedback(memory, signal) {
  const answer = await get(`/v1/memories/${seg(memory.id)}/feedback`, { agent_id: memory.agent_id }, signal);
  if (!answer.entries.length) return empty("No feedback yet.");
  return table(
    ["When", "Signal", "Importance"],
    answer.entries
      .slice()
      .reverse()
      .map((e) => h("tr", null, h("td", null, when(e.timestamp)), h("td", null, e.signal), h("td", null, `${num(e.old_importance)} → ${num(e.new_importance)}`))),
    { id: "feedback-table" },
  );
}

function writeControls(memory, reload) {
  const namespace = agentNamespace(memory.agent_id);
  const parts = [];
  if (can("POST", "/v1/memories/{memory_id}/feedback", namespace)) {
    const buttons = ["upvote", "downvote", "flag"].map((signal) => {
      const button = h("button", { type: "button", class: "btn" }, signal);
      button.addEventListener("click", () =>
        act(button, async () => {
          const answer = await post(`/v1/memories/${seg(memory.id)}/feedback`, { agent_id: memory.agent_id, signal });
          notify(`Feedback “${signal}” recorded; importance is now ${num(answer.new_importance)}.`);
          reload();
        }),
      );
      return writes(button);
    });
    parts.push(h("div", { class: "row center" }, h("span", { class: "muted" }, "Feedback:"), buttons));
  }
  if (can("PATCH", "/v1/memories/{memory_id}/importance", namespace)) {
    const input = h("input", { id: "importance-edit", type: "number", min: "0", max: "1", step: "0.05", value: num(memory.importance) });
    const save = h("button", { type: "button", class: "btn" }, "Set importance");
    save.addEventListener("click", () =>
      act(save, async () => {
        await call("PATCH", `/v1/memories/${seg(memory.id)}/importance`, { body: { agent_id: memory.agent_id, importance: Number(input.value) } });
        notify("Importance saved.");
        reload();
      }),
    );
    parts.push(h("div", { class: "row" }, field("Importance", writes(input)), writes(save)));
  }
  if (can("POST", "/v1/memories/{memory_id}/links", namespace)) {
    const target = h("input", { id: "link-target", placeholder: "mem_…" });
    const label = h("input", { id: "link-label", placeholder: "optional" });
    const button = h("button", { type: "submit", class: "btn" }, "Link");
    const form = h(
      "form",
      {
        class: "row",
        on: {
          submit: (event) => {
            event.preventDefault();
            act(button, async () => {
              const body = { target_id: target.value.trim(), agent_id: memory.agent_id };
              if (label.value.trim()) body.label = label.value.trim();
              await post(`/v1/memories/${seg(memory.id)}/links`, body);
              notify("Link created.");
              reload();
            });
          },
        },
      },
      h("div", { class: "grow" }, field("Link to memory", target)),
      field("Label", label),
      button,
    );
    parts.push(writes(form));
  }
  if (can("POST", "/v1/memory/forget", namespace)) {
    const forget = h("button", { type: "button", class: "btn danger", id: "forget-memory" }, "Forget this memory");
    forget.addEventListener("click", async () => {
      if (!(await confirmAction("Forget this memory?", `“${shorten(memory.content, 120)}” will be deleted.`, "Forget"))) return;
      await act(forget, async () => {
        await post("/v1/memory/forget", { agent_id: memory.agent_id, memory_ids: [memory.id] });
        notify(`Forgot ${memory.id}.`);
        location.hash = `#/agents/${seg(memory.agent_id)}`;
      });
    });
    parts.push(writes(forget));
  }
  return parts.length ? h("div", { class: "card", id: "memory-changes" }, h("h2", null, "Change"), parts) : null;
}

export async function render({ container, params, signal }) {
  const [agentId, memoryId] = params;
  const memory = await get(`/v1/memory/get/${seg(memoryId)}`, { agent_id: agentId }, signal);
  const reload = () => render({ container, params, signal });
  const metadata = memory.metadata && Object.keys(memory.metadata).length ? memory.metadata : null;
  replace(
    container,
    h("p", null, h("a", { href: `#/agents/${seg(agentId)}` }, `← Agent ${agentId}`)),
    h("h1", { tabindex: "-1" }, "Memory"),
    h("div", { class: "card" }, h("p", { class: "content", id: "memory-content" }, memory.content)),
    h("div", { class: "detail-grid" }, facts(memory), writeControls(memory, reload)),
    h("h2", null, "Metadata"),
    metadata ? h("pre", { id: "memory-metadata" }, JSON.stringify(metadata, null, 2)) : empty("No metadata."),
    section("Entities", "memory-entities", () => entities(memory.id, signal)),
    section("Links", "memory-links", () => links(memory, signal)),
    section("Feedback history", "memory-feedback", () => feedback(memory, signal)),
  );
}
