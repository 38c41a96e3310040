// The console's shell: sign-in, navigation, hash routing and keyboard shortcuts.
// Routes live in the URL fragment (#/agents/x), which browsers never send to the server.

import { storedKey } from "./api.js";
import { h, replace } from "./dom.js";
import { can, session, signIn, signOut } from "./session.js";
import { explain, notify } from "./ui.js";
import * as agents from "./pages/agents.js";
import * as audit from "./pages/audit.js";
import * as graph from "./pages/graph.js";
import * as health from "./pages/health.js";
import * as keys from "./pages/keys.js";
import * as memory from "./pages/memory.js";
import * as memories from "./pages/memories.js";
import * as namespaces from "./pages/namespaces.js";
import * as sessions from "./pages/sessions.js";

const AUTH_ON = document.documentElement.dataset.auth !== "off";

// [pattern, page, nav key]; the first match wins.
const ROUTES = [
  [/^\/agents$/, agents, "agents"],
  [/^\/agents\/([^/]+)$/, memories, "agents"],
  [/^\/agents\/([^/]+)\/memories\/([^/]+)$/, memory, "agents"],
  [/^\/graph(?:\/([^/]+))?$/, graph, "graph"],
  [/^\/sessions(?:\/([^/]+))?$/, sessions, "sessions"],
  [/^\/namespaces$/, namespaces, "namespaces"],
  [/^\/namespaces\/([^/]+)$/, namespaces, "namespaces"],
  [/^\/keys$/, keys, "keys"],
  [/^\/audit$/, audit, "audit"],
  [/^\/health$/, health, "health"],
];

// [nav key, label, shortcut letter after "g", visible when]
const NAV = [
  ["agents", "Agents", "a", () => can("GET", "/v1/agents")],
  ["graph", "Graph", "g", () => can("GET", "/v1/agents/{agent_id}/graph/export")],
  ["sessions", "Sessions", "s", () => can("GET", "/v1/agents/{agent_id}/sessions")],
  ["namespaces", "Namespaces", "n", () => can("GET", "/v1/namespaces")],
  ["keys", "Keys", "k", () => can("GET", "/admin/keys")],
  ["audit", "Audit log", "l", () => can("GET", "/v1/audit")],
  ["health", "Health", "h", () => true],
];

let current = null; // AbortController of the page on screen

function main() {
  return document.getElementById("main");
}

function signInView(message) {
  const input = h("input", {
    id: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: false,
    required: true,
    placeholder: "dk_…",
  });
  const error = h("p", { id: "login-error", class: "error", role: "alert" }, message || "");
  const button = h("button", { type: "submit", class: "btn primary" }, "Sign in");
  const form = h(
    "form",
    {
      class: "login card",
      on: {
        submit: async (event) => {
          event.preventDefault();
          button.disabled = true;
          error.textContent = "";
          try {
            await signIn(input.value.trim());
            start();
          } catch (failure) {
            error.textContent =
              failure.status === 401
                ? `This key was not accepted: ${failure.message} (${failure.code}). Check it and try again.`
                : explain(failure);
            input.focus();
            input.select();
          } finally {
            button.disabled = false;
          }
        },
      },
    },
    h("h1", null, "Sign in"),
    h("p", null, "Use an API key of this server. It stays in this browser tab only and is sent as a header with each request."),
    h("div", { class: "field" }, h("label", { for: "api-key" }, "API key"), input),
    button,
    error,
  );
  replace(document.getElementById("nav"));
  replace(document.getElementById("who"));
  replace(main(), form);
  input.focus();
  performance.mark("console:sign-in-ready"); // read by bench/console_load.py
}

function drawShell() {
  const who = session.who;
  const label = who.auth_enabled === false ? "authentication off" : `${who.name || who.key_id} · ${who.scope}`;
  const grants = who.namespaces ? ` · ${who.namespaces.length} namespace grant(s)` : "";
  replace(
    document.getElementById("who"),
    h("span", { class: "badge", id: "who-badge", title: who.key_id || "" }, label + grants),
    AUTH_ON
      ? h("button", { type: "button", class: "btn small", id: "sign-out", on: { click: () => { signOut(); signInView(); } } }, "Sign out")
      : null,
  );
  replace(
    document.getElementById("nav"),
    h(
      "ul",
      null,
      NAV.filter(([, , , visible]) => visible()).map(([key, label, letter]) =>
        h("li", null, h("a", { href: `#/${key}`, dataset: { nav: key }, title: `g then ${letter}` }, label)),
      ),
    ),
  );
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/agents";
  const [path, search] = raw.split("?");
  return { path, query: new URLSearchParams(search || "") };
}

async function route() {
  if (!session.who) return;
  const { path, query } = parseHash();
  if (current) current.abort();
  current = new AbortController();
  const signal = current.signal;
  for (const [pattern, page, navKey] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.dataset.nav === navKey) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const params = match.slice(1).map((part) => (part === undefined ? undefined : decodeURIComponent(part)));
    const container = replace(main(), h("p", { class: "muted" }, "Loading…"));
    try {
      await page.render({ container, params, query, signal, path });
    } catch (error) {
      if (signal.aborted) return;
      if (error && error.status === 401) {
        signOut();
        signInView(explain(error));
        return;
      }
      replace(container, h("h1", { tabindex: "-1" }, "Could not load this page"), h("p", { class: "error", role: "alert" }, explain(error)));
    }
    if (!signal.aborted) {
      const heading = container.querySelector("h1");
      if (heading && !container.contains(document.activeElement)) heading.focus({ preventScroll: true });
      performance.mark("console:page-ready"); // read by bench/console_load.py
    }
    return;
  }
  replace(main(), h("h1", { tabindex: "-1" }, "Not found"), h("p", null, "No console page has this address."), h("a", { href: "#/agents" }, "Agents"));
}

function start() {
  drawShell();
  if (!location.hash || location.hash === "#" || location.hash === "#/") {
    location.hash = can("GET", "/v1/agents") ? "#/agents" : "#/health";
  } else {
    route();
  }
}

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

let chord = 0;
function onKey(event) {
  if (!session.who || event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
  if (document.querySelector("dialog[open]")) return;
  if (event.key === "/") {
    const search = document.querySelector("[data-search]");
    if (search) {
      event.preventDefault();
      search.focus();
    }
    return;
  }
  if (event.key === "g") {
    chord = Date.now();
    return;
  }
  if (Date.now() - chord < 1500) {
    chord = 0;
    const target = NAV.find(([, , letter, visible]) => letter === event.key && visible());
    if (target) {
      event.preventDefault();
      location.hash = `#/${target[0]}`;
    }
  }
}

async function boot() {
  document.getElementById("skip").addEventListener("click", () => {
    const heading = main().querySelector("h1") || main();
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  });
  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", onKey);
  const key = storedKey();
  if (!AUTH_ON || key) {
    try {
      await signIn(AUTH_ON ? key : null);
      start();
      return;
    } catch (error) {
      signOut();
      signInView(explain(error));
      return;
    }
  }
  signInView();
}

window.addEventListener("unhandledrejection", (event) => {
  if (event.reason && event.reason.name === "AbortError") {
    event.preventDefault();
    return;
  }
  notify(explain(event.reason), "bad");
});

boot();
