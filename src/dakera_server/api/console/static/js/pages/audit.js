// Audit log: business events with filters and paging, and a live tail of the SSE stream.
// The stream is read with fetch(), so the key goes in a header, not in the URL (EventSource
// could only carry it as ?api_key=, which proxies and access logs record).

import { follow, get, seg } from "../api.js";
import { field, h, replace, shorten, when } from "../dom.js";
import { empty, errorBox } from "../ui.js";

const TYPES = [
  "stored", "recalled", "forgotten", "importance_updated", "consolidated", "deduplicated", "restored",
  "session_started", "session_ended", "namespace_created", "namespace_deleted", "key_created",
  "key_rotated", "key_deactivated", "key_revoked", "policy_updated",
];
const MAX_ROWS = 500;
const HEADERS = ["Time", "Event", "Agent", "Memory", "Session", "Importance", "Details"];

function row(event, fresh) {
  const details = event.reason || (event.details ? JSON.stringify(event.details) : "");
  return h(
    "tr",
    { class: fresh ? "new" : null, dataset: { eventId: String(event.id ?? "") } },
    h("td", null, when(event.timestamp, true)),
    h("td", null, event.event_type || event.type),
    h("td", null, event.agent_id ? h("a", { href: `#/agents/${seg(event.agent_id)}` }, event.agent_id) : event.namespace || "—"),
    h(
      "td",
      null,
      event.memory_id && event.agent_id
        ? h("a", { href: `#/agents/${seg(event.agent_id)}/memories/${seg(event.memory_id)}` }, h("code", null, event.memory_id))
        : event.memory_id || "—",
    ),
    h("td", null, event.session_id || "—"),
    h("td", null, event.importance === undefined || event.importance === null ? "—" : Number(event.importance).toFixed(2)),
    h("td", null, details ? shorten(details, 100) : "—"),
  );
}

function toMs(value) {
  if (!value) return undefined;
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? undefined : t;
}

export async function render({ container, query, signal }) {
  const agent = h("input", { id: "audit-agent", placeholder: "any", dataset: { search: "" } });
  agent.value = query.get("agent") || "";
  const type = h("input", { id: "audit-type", placeholder: "any", list: "audit-types" });
  type.value = query.get("type") || "";
  const from = h("input", { id: "audit-from", type: "datetime-local" });
  const to = h("input", { id: "audit-to", type: "datetime-local" });
  const body = h("tbody");
  const grid = h(
    "div",
    { class: "table-wrap" },
    h("table", { id: "audit-table" }, h("thead", null, h("tr", null, HEADERS.map((title) => h("th", { scope: "col" }, title)))), body),
  );
  const rows = h("div", { id: "audit-rows" });
  const more = h("button", { type: "button", class: "btn", id: "audit-more", hidden: true }, "Older events");
  const liveState = h("span", { class: "badge", id: "tail-state" }, "off");
  const tailButton = h("button", { type: "button", class: "btn", id: "tail-toggle", "aria-pressed": "false" }, "Live tail");
  let cursor = null;
  let tail = null;

  function filters() {
    return { agent_id: agent.value.trim() || undefined, event_type: type.value.trim() || undefined };
  }

  async function load(append) {
    const params = { ...filters(), from: toMs(from.value), to: toMs(to.value), limit: 100 };
    if (append && cursor) params.cursor = cursor;
    try {
      const page = await get("/v1/audit", params, signal);
      cursor = page.cursor;
      if (!append) body.replaceChildren();
      for (const event of page.events) body.appendChild(row(event, false));
      more.hidden = !cursor;
      replace(rows, body.childNodes.length ? grid : empty("No events match."));
    } catch (error) {
      if (!signal.aborted) replace(rows, errorBox(error));
    }
  }

  function stopTail() {
    if (tail) tail.abort();
    tail = null;
    tailButton.setAttribute("aria-pressed", "false");
  }

  function startTail() {
    tail = new AbortController();
    const stop = tail;
    signal.addEventListener("abort", () => stop.abort(), { once: true });
    tailButton.setAttribute("aria-pressed", "true");
    follow("/v1/audit/stream", filters(), {
      signal: stop.signal,
      onState: (state, error) => {
        liveState.textContent = error ? `stopped: ${error.message}` : state;
        liveState.className = `badge ${state === "live" ? "ok" : state === "stopped" ? "" : "warn"}`;
      },
      onEvent: (event) => {
        if (event.type === "connected" || event.type === "stream_lagged") return;
        if (!grid.isConnected) replace(rows, grid);
        body.prepend(row(event, true));
        while (body.childNodes.length > MAX_ROWS) body.lastChild.remove();
      },
    });
  }

  tailButton.addEventListener("click", () => {
    if (tail) stopTail();
    else startTail();
  });
  more.addEventListener("click", () => load(true));
  const form = h(
    "form",
    {
      class: "card",
      on: {
        submit: (event) => {
          event.preventDefault();
          cursor = null;
          load(false);
          if (tail) {
            stopTail();
            startTail();
          }
        },
      },
    },
    h(
      "div",
      { class: "row" },
      h("div", { class: "grow" }, field("Agent", agent)),
      h("div", { class: "grow" }, field("Event type", type)),
      field("From", from),
      field("To", to),
    ),
    h("datalist", { id: "audit-types" }, TYPES.map((t) => h("option", { value: t }))),
    h("div", { class: "row" }, h("button", { type: "submit", class: "btn primary" }, "Apply filters"), tailButton, liveState),
  );
  replace(
    container,
    h("h1", { tabindex: "-1" }, "Audit log"),
    h("p", { class: "muted" }, "Business events (stores, forgets, sessions, keys, policies) visible to this key, newest first. The live tail adds events as the server emits them."),
    form,
    rows,
    more,
  );
  await load(false);
  if (query.get("live") === "1") startTail();
}
