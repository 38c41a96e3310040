// Agents: counts and last activity, with links into each agent's memories, graph and sessions.

import { get, seg } from "../api.js";
import { h, replace, table, when } from "../dom.js";
import { can } from "../session.js";
import { empty } from "../ui.js";

const PAGE = 50;
const PARALLEL = 4;

/** Fill each agent's "last activity" cell from its stats, a few requests at a time. */
async function fillActivity(agents, cells, signal) {
  let next = 0;
  async function worker() {
    while (next < agents.length && !signal.aborted) {
      const index = next++;
      const agent = agents[index];
      try {
        const stats = await get(`/v1/agents/${seg(agent.agent_id)}/stats`, null, signal);
        replace(cells[index], stats.newest_memory_at ? when(stats.newest_memory_at) : "—");
      } catch {
        if (signal.aborted) return;
        replace(cells[index], "?");
      }
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}

export async function render({ container, query, signal }) {
  const agents = await get("/v1/agents", null, signal);
  agents.sort((a, b) => a.agent_id.localeCompare(b.agent_id));
  const filter = h("input", { id: "agent-filter", type: "search", placeholder: "Filter by id", dataset: { search: "" } });
  const open = h("input", { id: "agent-open", placeholder: "agent id", autocomplete: "off" });
  const body = h("div");
  let page = Number(query.get("page") || 0);

  function draw() {
    const needle = filter.value.trim().toLowerCase();
    const shown = agents.filter((a) => a.agent_id.toLowerCase().includes(needle));
    const start = page * PAGE;
    const slice = shown.slice(start, start + PAGE);
    if (!shown.length) {
      replace(body, empty(agents.length ? "No agent matches the filter." : "No agents yet: store a memory to create one."));
      return;
    }
    const cells = slice.map(() => h("td", null, "…"));
    const rows = slice.map((agent, i) =>
      h(
        "tr",
        null,
        h("td", null, h("a", { href: `#/agents/${seg(agent.agent_id)}` }, agent.agent_id)),
        h("td", { class: "num" }, agent.memory_count),
        h("td", { class: "num" }, agent.session_count),
        h("td", { class: "num" }, agent.active_sessions),
        cells[i],
        h(
          "td",
          null,
          h("a", { href: `#/graph/${seg(agent.agent_id)}` }, "graph"),
          " · ",
          h("a", { href: `#/sessions/${seg(agent.agent_id)}` }, "sessions"),
        ),
      ),
    );
    const pages = Math.ceil(shown.length / PAGE);
    replace(
      body,
      table(["Agent", "Memories", "Sessions", "Active", "Last memory", "Views"], rows, { id: "agents-table" }),
      pages > 1
        ? h(
            "div",
            { class: "pager" },
            h("button", { class: "btn small", type: "button", disabled: page === 0, on: { click: () => { page -= 1; draw(); } } }, "Previous"),
            h("span", { class: "muted" }, `Page ${page + 1} of ${pages}`),
            h("button", { class: "btn small", type: "button", disabled: page + 1 >= pages, on: { click: () => { page += 1; draw(); } } }, "Next"),
          )
        : null,
    );
    fillActivity(slice, cells, signal);
  }

  filter.addEventListener("input", () => {
    page = 0;
    draw();
  });
  const total = agents.reduce((sum, a) => sum + (a.memory_count || 0), 0);
  replace(
    container,
    h("h1", { tabindex: "-1" }, "Agents"),
    h(
      "div",
      { class: "cards" },
      h("div", { class: "card" }, h("div", { class: "muted" }, "Agents"), h("div", { class: "stat", id: "agent-count" }, agents.length)),
      h("div", { class: "card" }, h("div", { class: "muted" }, "Memories"), h("div", { class: "stat" }, total)),
      h(
        "div",
        { class: "card" },
        h("div", { class: "muted" }, "Active sessions"),
        h("div", { class: "stat" }, agents.reduce((sum, a) => sum + (a.active_sessions || 0), 0)),
      ),
    ),
    h(
      "div",
      { class: "spread" },
      h("div", { class: "field inline" }, h("label", { for: "agent-filter" }, "Filter"), filter),
      h(
        "form",
        {
          class: "row",
          on: {
            submit: (event) => {
              event.preventDefault();
              if (open.value.trim()) location.hash = `#/agents/${seg(open.value.trim())}`;
            },
          },
        },
        h("div", { class: "field inline" }, h("label", { for: "agent-open" }, can("POST", "/v1/memory/store") ? "Open or start" : "Open"), open),
        h("button", { type: "submit", class: "btn" }, "Go"),
      ),
    ),
    h("p", { class: "muted" }, "Last memory: when the agent's newest memory was stored."),
    body,
  );
  draw();
}
