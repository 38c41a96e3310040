// Sessions of an agent on a timeline (one lane each, open sessions run to now), with the
// memories of the session chosen.

import { get, post, seg } from "../api.js";
import { h, replace, s, shorten, table, when, duration } from "../dom.js";
import { agentNamespace, can } from "../session.js";
import { act, agentPicker, empty, errorBox, notify, writes } from "../ui.js";
import { memoryCard } from "./memories.js";

const WIDTH = 1000;
const LANE = 22;
const LEFT = 10;
const TOP = 24;

function timeline(sessions, now, onPick) {
  const start = Math.min(...sessions.map((x) => x.started_at));
  const end = Math.max(now, ...sessions.map((x) => x.ended_at || now));
  const span = Math.max(1, end - start);
  const x = (t) => LEFT + ((t - start) / span) * (WIDTH - 2 * LEFT);
  const height = TOP + sessions.length * LANE + 8;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => start + f * span);
  return s(
    "svg",
    { class: "timeline", viewBox: `0 0 ${WIDTH} ${height}`, role: "group", "aria-label": `Timeline of ${sessions.length} sessions`, id: "session-timeline" },
    ticks.map((t, i) =>
      s("g", null, s("line", { class: "axis", x1: x(t), x2: x(t), y1: TOP - 6, y2: height }), s("text", { x: x(t), y: 14, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, when(t))),
    ),
    sessions.map((session, i) => {
      const y = TOP + i * LANE;
      const x1 = x(session.started_at);
      const x2 = Math.max(x1 + 4, x(session.ended_at || now));
      const bar = s(
        "rect",
        {
          class: ["session", session.active && "active"],
          x: x1.toFixed(1), y: y + 3, width: (x2 - x1).toFixed(1), height: LANE - 8, rx: 3,
          tabindex: "0", role: "button",
          "aria-label": `Session ${session.id}, ${when(session.started_at)} to ${session.ended_at ? when(session.ended_at) : "now"}`,
          dataset: { session: session.id },
        },
        s("title", null, `${session.id}: ${session.memory_count} memories`),
      );
      bar.addEventListener("click", () => onPick(session));
      bar.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          onPick(session);
        }
      });
      return [s("rect", { class: "lane", x: 0, y: y + 1, width: WIDTH, height: LANE - 4, opacity: 0.35 }), bar];
    }),
  );
}

export async function render({ container, params, query, signal }) {
  const agentId = params[0];
  const picker = await agentPicker(agentId, (id) => {
    location.hash = id ? `#/sessions/${seg(id)}` : "#/sessions";
  }, signal);
  const heading = h("h1", { tabindex: "-1" }, agentId ? `Sessions of ${agentId}` : "Sessions");
  if (!agentId) {
    replace(container, heading, picker, empty("Choose an agent to see its sessions."));
    return;
  }
  const namespace = agentNamespace(agentId);
  const sessions = await get(`/v1/agents/${seg(agentId)}/sessions`, { limit: 200 }, signal);
  sessions.sort((a, b) => a.started_at - b.started_at);
  const detail = h("div", { id: "session-detail" });
  const reload = () => render({ container, params, query, signal });

  async function pick(session) {
    replace(detail, h("p", { class: "muted" }, "Loading…"));
    try {
      const answer = await get(`/v1/sessions/${seg(session.id)}/memories`, { limit: 100, content_preview_chars: 300 }, signal);
      replace(
        detail,
        h("h2", null, `Session ${session.id}`),
        h(
          "p",
          { class: "muted" },
          `${when(session.started_at)} – ${session.ended_at ? when(session.ended_at) : "open"} · ${answer.total} memories` +
            (session.ended_reason ? ` · ended by ${session.ended_reason}` : ""),
        ),
        session.summary ? h("p", null, h("b", null, "Summary: "), session.summary) : null,
        answer.memories.length ? answer.memories.map((m) => memoryCard(m, agentId)) : empty("No memories in this session."),
      );
    } catch (error) {
      if (!signal.aborted) replace(detail, errorBox(error));
    }
  }

  const now = Math.floor(Date.now() / 1000);
  const rows = sessions
    .slice()
    .reverse()
    .map((session) => {
      const end = can("POST", "/v1/sessions/{session_id}/end", namespace) && session.active
        ? writes(
            h("button", {
              type: "button",
              class: "btn small",
              on: { click: (event) => act(event.currentTarget, async () => {
                await post(`/v1/sessions/${seg(session.id)}/end`, {});
                notify(`Ended ${session.id}.`);
                reload();
              }) },
            }, "End"),
          )
        : null;
      return h(
        "tr",
        null,
        h("td", null, h("button", { type: "button", class: "btn small", on: { click: () => pick(session) } }, shorten(session.id, 28))),
        h("td", null, when(session.started_at)),
        h("td", null, session.active ? "open" : when(session.ended_at)),
        h("td", null, duration((session.ended_at || now) - session.started_at)),
        h("td", { class: "num" }, session.memory_count),
        h("td", null, session.summary ? shorten(session.summary, 60) : "—"),
        h("td", null, end),
      );
    });
  const startButton = can("POST", "/v1/sessions/start", namespace)
    ? writes(
        h("button", {
          type: "button",
          class: "btn",
          id: "start-session",
          on: { click: (event) => act(event.currentTarget, async () => {
            const answer = await post("/v1/sessions/start", { agent_id: agentId });
            notify(`Started ${answer.session.id}.`);
            reload();
          }) },
        }, "Start a session"),
      )
    : null;
  replace(
    container,
    heading,
    h("div", { class: "spread" }, picker, startButton),
    sessions.length
      ? [
          h("p", { class: "muted" }, `${sessions.length} sessions; green ones are open. Choose one to list its memories.`),
          timeline(sessions, now, pick),
          table(["Session", "Started", "Ended", "Length", "Memories", "Summary", ""], rows, { id: "sessions-table" }),
        ]
      : empty("This agent has no sessions."),
    detail,
  );
  const wanted = query.get("session");
  const chosen = wanted && sessions.find((x) => x.id === wanted);
  if (chosen) pick(chosen);
}
