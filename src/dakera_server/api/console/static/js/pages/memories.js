// An agent's memories: newest first, filtered listing, or a real recall with its scores.
// The search state lives in the URL fragment, so Back from a memory returns to the results.

import { call, get, post, seg } from "../api.js";
import { h, num, replace, shorten, splitList, when, field } from "../dom.js";
import { agentNamespace, can } from "../session.js";
import { act, confirmAction, empty, errorBox, notify, writes } from "../ui.js";

const TYPES = ["episodic", "semantic", "procedural", "working"];
const PAGE = 50;

function bar(value) {
  const fill = h("span");
  fill.style.width = `${Math.max(0, Math.min(1, Number(value) || 0)) * 100}%`;
  return h("span", { class: "bar", "aria-hidden": "true" }, fill);
}

/** The reasons a recall gave for a result: its score parts, as the API reports them. */
function reasons(result) {
  const parts = [h("span", { class: "score" }, `score ${num(result.rank_score ?? result.score, 3)}`), bar(result.rank_score ?? result.score)];
  parts.push(h("span", null, `relevance ${num(result.score, 3)}`));
  if (result.vector_score !== undefined) parts.push(h("span", null, `meaning ${num(result.vector_score, 3)}`));
  if (result.text_score !== undefined) parts.push(h("span", null, `keywords ${num(result.text_score, 3)}`));
  if (result.score > 0 && result.rank_score !== undefined) {
    parts.push(h("span", { title: "rank = relevance × importance and recency factor" }, `× importance·recency ${num(result.rank_score / result.score, 3)}`));
  }
  if (result.matched_text) parts.push(h("span", null, `matched “${shorten(result.matched_text, 80)}”`));
  if (result.retrieval) parts.push(h("span", null, `via ${result.retrieval}`));
  return h("div", { class: "why", dataset: { testid: "reasons" } }, parts);
}

/** One memory as a card, with the write actions the key allows. */
export function memoryCard(memory, agentId, { result, onForgotten } = {}) {
  const namespace = agentNamespace(agentId);
  const link = `#/agents/${seg(agentId)}/memories/${seg(memory.id)}`;
  const actions = h("div", { class: "actions" });
  const importanceText = h("span", null, `importance ${num(memory.importance)}`);
  if (can("PATCH", "/v1/memories/{memory_id}/importance", namespace)) {
    const input = h("input", {
      type: "number", min: "0", max: "1", step: "0.05", value: num(memory.importance),
      "aria-label": `Importance of ${memory.id}`, class: "importance-input",
    });
    const save = h("button", { type: "button", class: "btn small" }, "Set importance");
    save.addEventListener("click", () =>
      act(save, async () => {
        const updated = await call("PATCH", `/v1/memories/${seg(memory.id)}/importance`, {
          body: { agent_id: agentId, importance: Number(input.value) },
        });
        importanceText.textContent = `importance ${num(updated.importance)}`;
        notify(`Importance of ${memory.id} set to ${num(updated.importance)}.`);
      }),
    );
    actions.append(writes(input), writes(save));
  }
  if (can("POST", "/v1/memory/forget", namespace)) {
    const forget = h("button", { type: "button", class: "btn small danger" }, "Forget");
    forget.addEventListener("click", async () => {
      const sure = await confirmAction("Forget this memory?", `“${shorten(memory.content, 120)}” will be deleted.`, "Forget");
      if (!sure) return;
      await act(forget, async () => {
        await post("/v1/memory/forget", { agent_id: agentId, memory_ids: [memory.id] });
        notify(`Forgot ${memory.id}.`);
        if (onForgotten) onForgotten(memory);
      });
    });
    actions.append(writes(forget));
  }
  return h(
    "article",
    { class: "mem", dataset: { memoryId: memory.id } },
    h("p", { class: "content" }, h("a", { href: link }, shorten(memory.content, 300))),
    h(
      "div",
      { class: "meta" },
      h("span", null, memory.memory_type),
      importanceText,
      h("span", null, when(memory.created_at)),
      memory.session_id ? h("span", null, `session ${shorten(memory.session_id, 24)}`) : null,
      (memory.tags || []).length ? h("span", null, memory.tags.map((tag) => h("span", { class: "tag" }, tag))) : null,
    ),
    result ? reasons(result) : null,
    actions.childNodes.length ? actions : null,
  );
}

function storeForm(agentId, onStored, open) {
  const content = h("textarea", { id: "store-content", required: true, placeholder: "What should the agent remember?" });
  const type = h("select", { id: "store-type" }, TYPES.map((t) => h("option", { value: t }, t)));
  const importance = h("input", { id: "store-importance", type: "number", min: "0", max: "1", step: "0.05", value: "0.5" });
  const tags = h("input", { id: "store-tags", placeholder: "comma, separated" });
  const sessionId = h("input", { id: "store-session", placeholder: "optional" });
  const button = h("button", { type: "submit", class: "btn primary" }, "Store memory");
  const form = h(
    "form",
    {
      id: "store-form",
      on: {
        submit: (event) => {
          event.preventDefault();
          act(button, async () => {
            const body = {
              agent_id: agentId,
              content: content.value,
              memory_type: type.value,
              importance: Number(importance.value),
              tags: splitList(tags.value),
            };
            if (sessionId.value.trim()) body.session_id = sessionId.value.trim();
            const answer = await post("/v1/memory/store", body);
            content.value = "";
            notify(`Stored ${answer.memory.id}.`);
            onStored(answer.memory);
          });
        },
      },
    },
    field("Content", content),
    h(
      "div",
      { class: "row" },
      field("Type", type),
      field("Importance", importance),
      h("div", { class: "grow" }, field("Tags", tags)),
      h("div", { class: "grow" }, field("Session id", sessionId)),
    ),
    button,
  );
  return writes(h("details", { class: "card", id: "store-box", open: open }, h("summary", null, "Store a memory"), form));
}

function searchForm(agentId, query) {
  const q = h("input", { id: "search", type: "search", placeholder: "Recall by meaning and keywords", dataset: { search: "" } });
  q.value = query.get("q") || "";
  const topK = h("input", { id: "search-k", type: "number", min: "1", max: "100", value: query.get("k") || "10" });
  const tags = h("input", { id: "filter-tags", placeholder: "comma, separated" });
  tags.value = query.get("tags") || "";
  const type = h("select", { id: "filter-type" }, h("option", { value: "" }, "any"), TYPES.map((t) => h("option", { value: t }, t)));
  type.value = query.get("type") || "";
  const sessionId = h("input", { id: "filter-session", placeholder: "session id" });
  sessionId.value = query.get("session") || "";
  return h(
    "form",
    {
      class: "card",
      role: "search",
      on: {
        submit: (event) => {
          event.preventDefault();
          const params = new URLSearchParams();
          for (const [name, input] of [["q", q], ["k", topK], ["tags", tags], ["type", type], ["session", sessionId]]) {
            if (input.value.trim()) params.set(name, input.value.trim());
          }
          location.hash = `#/agents/${seg(agentId)}?${params}`;
        },
      },
    },
    h("div", { class: "row" }, h("div", { class: "grow" }, field("Search", q)), field("Results", topK)),
    h(
      "div",
      { class: "row" },
      h("div", { class: "grow" }, field("Tags", tags, "search: any of them; listing: all of them")),
      field("Type", type),
      h("div", { class: "grow" }, field("Session", sessionId)),
    ),
    h(
      "div",
      { class: "row" },
      h("button", { type: "submit", class: "btn primary", id: "search-button" }, "Search"),
      h("a", { class: "btn", href: `#/agents/${seg(agentId)}` }, "Clear"),
    ),
  );
}

async function results(agentId, query, signal, list) {
  const q = query.get("q");
  const tags = splitList(query.get("tags"));
  const type = query.get("type") || undefined;
  const sessionId = query.get("session") || undefined;
  const offset = Number(query.get("offset") || 0);
  const forgotten = (memory) => {
    const card = list.querySelector(`[data-memory-id="${CSS.escape(memory.id)}"]`);
    if (card) card.remove();
  };
  if (q) {
    const body = { agent_id: agentId, query: q, top_k: Number(query.get("k") || 10) };
    if (tags.length) body.tags = tags;
    if (type) body.memory_type = type;
    if (sessionId) body.session_id = sessionId;
    const answer = await post("/v1/memory/recall", body);
    const found = answer.memories || [];
    return [
      h("p", { class: "muted", id: "result-summary" }, `${found.length} recalled for “${q}” in ${num(answer.search_time_ms, 1)} ms (+${num(answer.query_embedding_time_ms, 1)} ms embedding).`),
      found.length ? found.map((r) => memoryCard(r.memory, agentId, { result: r, onForgotten: forgotten })) : empty("Nothing recalled."),
    ];
  }
  if (tags.length || type || sessionId) {
    const filter = {};
    if (tags.length) filter.tags = tags;
    if (type) filter.memory_type = type;
    if (sessionId) filter.session_id = sessionId;
    const answer = await post("/v1/memories/recall/batch", { agent_id: agentId, filter, limit: 200 });
    return [
      h("p", { class: "muted", id: "result-summary" }, `${answer.filtered} of ${answer.total} match the filters${answer.truncated ? " (first 200 shown)" : ""}.`),
      answer.memories.length ? answer.memories.map((m) => memoryCard(m, agentId, { onForgotten: forgotten })) : empty("No memory matches."),
    ];
  }
  const memories = await get(`/v1/agents/${seg(agentId)}/memories`, { limit: PAGE, offset }, signal);
  const pager = h(
    "div",
    { class: "pager" },
    offset > 0 ? h("a", { class: "btn small", href: `#/agents/${seg(agentId)}?offset=${Math.max(0, offset - PAGE)}` }, "Newer") : null,
    h("span", { class: "muted" }, memories.length ? `${offset + 1}–${offset + memories.length}, newest first` : ""),
    memories.length === PAGE ? h("a", { class: "btn small", href: `#/agents/${seg(agentId)}?offset=${offset + PAGE}` }, "Older") : null,
  );
  return [
    memories.length ? memories.map((m) => memoryCard(m, agentId, { onForgotten: forgotten })) : empty("This agent has no memories yet."),
    pager,
  ];
}

export async function render({ container, params, query, signal }) {
  const agentId = params[0];
  const stats = await get(`/v1/agents/${seg(agentId)}/stats`, null, signal).catch((error) => {
    if (error.status === 404) return null;
    throw error;
  });
  const list = h("div", { id: "memory-list", "aria-live": "polite" });
  const refresh = async () => {
    try {
      replace(list, await results(agentId, query, signal, list));
    } catch (error) {
      if (!signal.aborted) replace(list, errorBox(error));
    }
  };
  const byType = stats ? Object.entries(stats.memories_by_type || {}).filter(([, n]) => n).map(([t, n]) => `${n} ${t}`).join(", ") : "";
  replace(
    container,
    h("h1", { tabindex: "-1" }, `Agent ${agentId}`),
    h(
      "div",
      { class: "sub" },
      h("a", { href: `#/graph/${seg(agentId)}` }, "Knowledge graph"),
      h("a", { href: `#/sessions/${seg(agentId)}` }, "Sessions"),
      h("a", { href: `#/audit?agent=${seg(agentId)}` }, "Audit events"),
    ),
    stats
      ? h(
          "p",
          { class: "muted" },
          `${stats.total_memories} memories${byType ? ` (${byType})` : ""} · mean importance ${num(stats.avg_importance)} · ` +
            `${stats.total_sessions} sessions, ${stats.active_sessions} active · newest ${when(stats.newest_memory_at)}`,
        )
      : null,
    searchForm(agentId, query),
    can("POST", "/v1/memory/store", agentNamespace(agentId)) ? storeForm(agentId, () => refresh(), !stats || !stats.total_memories) : null,
    list,
  );
  await refresh();
}
