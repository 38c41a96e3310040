// API keys (super_admin): list, create (the secret is shown once), rotate, revoke, delete, usage.

import { call, get, post, seg } from "../api.js";
import { bytes, field, h, num, replace, splitList, table, when } from "../dom.js";
import { can } from "../session.js";
import { act, confirmAction, empty, errorBox, notify, promptValue, showSecret, writes } from "../ui.js";

const SCOPES = ["read", "write", "admin", "super_admin"];

async function usage(key, target, signal) {
  replace(target, h("p", { class: "muted" }, "Loading…"));
  try {
    const u = await get(`/admin/keys/${seg(key.key_id)}/usage`, null, signal);
    const endpoints = (u.by_endpoint || []).slice(0, 15);
    replace(
      target,
      h("h2", null, `Usage of ${key.name}`),
      h(
        "div",
        { class: "cards" },
        [
          ["Requests", u.total_requests],
          ["Succeeded", u.successful_requests],
          ["Failed", u.failed_requests],
          ["Rate limited", u.rate_limited_requests],
          ["Transferred", bytes(u.bytes_transferred)],
          ["Mean latency", `${num(u.avg_latency_ms, 1)} ms`],
        ].map(([label, value]) => h("div", { class: "card" }, h("div", { class: "muted" }, label), h("div", { class: "stat" }, String(value)))),
      ),
      endpoints.length
        ? table(
            ["Endpoint", "Requests"],
            endpoints.map((e) => h("tr", null, h("td", null, h("code", null, e.endpoint)), h("td", { class: "num" }, e.requests))),
            { id: "usage-table" },
          )
        : empty("No requests counted yet."),
      (u.by_namespace || []).length
        ? table(
            ["Namespace", "Requests"],
            u.by_namespace.slice(0, 15).map((e) => h("tr", null, h("td", null, e.namespace), h("td", { class: "num" }, e.requests))),
          )
        : null,
    );
    target.scrollIntoView({ block: "nearest" });
  } catch (error) {
    if (!signal.aborted) replace(target, errorBox(error));
  }
}

function createForm(reload) {
  const name = h("input", { id: "key-name", required: true, maxlength: "128", placeholder: "query-service" });
  const scope = h("select", { id: "key-scope" }, SCOPES.map((s) => h("option", { value: s }, s)));
  const namespaces = h("input", { id: "key-namespaces", placeholder: "tenant-a, _dakera_agent_tenant-a-*" });
  const expires = h("input", { id: "key-expires", type: "number", min: "1", placeholder: "never" });
  const button = h("button", { type: "submit", class: "btn primary", id: "key-create" }, "Create key");
  return writes(
    h(
      "form",
      {
        class: "card",
        id: "key-form",
        on: {
          submit: (event) => {
            event.preventDefault();
            act(button, async () => {
              const body = { name: name.value.trim(), scope: scope.value };
              if (namespaces.value.trim()) body.namespaces = splitList(namespaces.value);
              if (expires.value) body.expires_in_days = Number(expires.value);
              const created = await post("/admin/keys", body);
              name.value = "";
              await showSecret(`Key ${created.name} created`, created.key, "Copy the key now: the server keeps only a hash and will never show it again.");
              notify(`Created ${created.key_id}.`);
              reload();
            });
          },
        },
      },
      h("h2", null, "Create a key"),
      h(
        "div",
        { class: "row" },
        h("div", { class: "grow" }, field("Name", name)),
        field("Scope", scope),
        h("div", { class: "grow" }, field("Namespaces (empty: all; prefix* allowed)", namespaces)),
        field("Expires in days", expires),
      ),
      button,
    ),
  );
}

function rowActions(key, reload, usageBox, signal) {
  const buttons = [h("button", { type: "button", class: "btn small", on: { click: () => usage(key, usageBox, signal) } }, "Usage")];
  if (key.active && can("POST", "/admin/keys/{key_id}/rotate")) {
    const rotate = writes(h("button", { type: "button", class: "btn small" }, "Rotate"));
    rotate.addEventListener("click", async () => {
      const grace = await promptValue(`Rotate ${key.name}`, "Seconds the old key keeps working (0 = revoke now)", h("input", { id: "rotate-grace", type: "number", min: "0", max: "604800", value: "0" }));
      if (grace === null) return;
      await act(rotate, async () => {
        const answer = await post(`/admin/keys/${seg(key.key_id)}/rotate`, Number(grace) > 0 ? { grace_secs: Number(grace) } : {});
        await showSecret(`New key for ${key.name}`, answer.new_key, `Replaces ${answer.old_key_id}. Copy it now: it will not be shown again.`);
        reload();
      });
    });
    buttons.push(rotate);
  }
  if (key.active && can("POST", "/admin/keys/{key_id}/deactivate")) {
    const revoke = writes(h("button", { type: "button", class: "btn small danger" }, "Revoke"));
    revoke.addEventListener("click", async () => {
      if (!(await confirmAction(`Revoke ${key.name}?`, "Requests with this key are refused from now on. The key stays listed as inactive.", "Revoke"))) return;
      await act(revoke, async () => {
        await post(`/admin/keys/${seg(key.key_id)}/deactivate`);
        notify(`Revoked ${key.key_id}.`);
        reload();
      });
    });
    buttons.push(revoke);
  }
  if (can("DELETE", "/admin/keys/{key_id}")) {
    const remove = writes(h("button", { type: "button", class: "btn small danger" }, "Delete"));
    remove.addEventListener("click", async () => {
      if (!(await confirmAction(`Delete ${key.name}?`, "The key and its record are removed.", "Delete"))) return;
      await act(remove, async () => {
        await call("DELETE", `/admin/keys/${seg(key.key_id)}`);
        notify(`Deleted ${key.key_id}.`);
        reload();
      });
    });
    buttons.push(remove);
  }
  return h("td", null, h("div", { class: "row" }, buttons));
}

export async function render({ container, signal }) {
  const reload = () => render({ container, signal });
  const answer = await get("/admin/keys", null, signal);
  const usageBox = h("div", { id: "key-usage" });
  const rows = answer.keys.map((key) =>
    h(
      "tr",
      { dataset: { keyId: key.key_id } },
      h("td", null, key.name, h("br"), h("code", { class: "muted" }, key.key_id)),
      h("td", null, key.scope),
      h("td", null, key.namespaces ? key.namespaces.join(", ") : "all"),
      h("td", null, when(key.created_at)),
      h("td", null, key.expires_at ? when(key.expires_at) : "never"),
      h("td", null, h("span", { class: ["badge", key.active ? "ok" : "bad"] }, key.active ? "active" : "revoked")),
      rowActions(key, reload, usageBox, signal),
    ),
  );
  replace(
    container,
    h("h1", { tabindex: "-1" }, "API keys"),
    h("p", { class: "muted" }, "Only hashes of keys are stored: a key's secret is shown once, when it is created or rotated."),
    can("POST", "/admin/keys") ? createForm(reload) : null,
    rows.length
      ? table(["Key", "Scope", "Namespaces", "Created", "Expires", "State", "Actions"], rows, { id: "keys-table" })
      : empty("No stored keys yet (the root key from DAKERA_ROOT_API_KEY is never listed)."),
    usageBox,
  );
}

