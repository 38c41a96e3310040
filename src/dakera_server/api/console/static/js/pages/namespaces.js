// Namespaces: dimension, size and index state of each; one namespace's details and a query
// playground (text, hybrid, BM25 or raw vector queries against the real search routes).

import { call, get, post, seg } from "../api.js";
import { bytes, field, h, num, replace, shorten, table } from "../dom.js";
import { can } from "../session.js";
import { act, confirmAction, empty, errorBox, notify, writes } from "../ui.js";

const PARALLEL = 4;
const MODES = {
  text: ["Text (embedded on the server)", "/v1/namespaces/{namespace}/query-text"],
  hybrid: ["Hybrid (meaning + BM25)", "/v1/namespaces/{namespace}/hybrid"],
  fulltext: ["Full text (BM25)", "/v1/namespaces/{namespace}/fulltext/search"],
  vector: ["Vector (JSON array)", "/v1/namespaces/{namespace}/query"],
};

function indexState(info) {
  if (!info) return "…";
  const backend = info.search_backend || info.index_type || "—";
  return info.index_pending ? `${backend}, ${info.index_pending} pending` : backend;
}

async function list({ container, signal }) {
  const answer = await get("/v1/namespaces", null, signal);
  const names = answer.namespaces.map((n) => (typeof n === "string" ? n : n.name)).sort();
  const kinds = answer.kinds || {};
  const cells = new Map(names.map((name) => [name, [h("td", { class: "num" }, "…"), h("td", { class: "num" }, "…"), h("td", null, "…")]]));
  const rows = names.map((name) =>
    h(
      "tr",
      null,
      h("td", null, kinds[name] === "agent" ? h("a", { href: `#/agents/${seg(name.replace(/^_dakera_agent_/, ""))}` }, name) : h("a", { href: `#/namespaces/${seg(name)}` }, name)),
      h("td", null, kinds[name] || "data"),
      cells.get(name),
    ),
  );
  const form = can("POST", "/v1/namespaces") ? createForm() : null;
  replace(
    container,
    h("h1", { tabindex: "-1" }, "Namespaces"),
    h("p", { class: "muted" }, "Agent namespaces hold memories (open them from Agents); data namespaces hold vectors and documents."),
    names.length ? table(["Namespace", "Kind", "Dimension", "Vectors", "Index"], rows, { id: "namespaces-table" }) : empty("No namespaces yet."),
    form,
  );
  let next = 0;
  async function worker() {
    while (next < names.length && !signal.aborted) {
      const name = names[next++];
      const [dim, count, index] = cells.get(name);
      try {
        const info = await get(`/v1/namespaces/${seg(name)}`, null, signal);
        replace(dim, info.dimension ?? "—");
        replace(count, info.vector_count ?? "—");
        replace(index, indexState(info));
      } catch {
        if (signal.aborted) return;
        replace(index, "?");
      }
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}

function createForm() {
  const name = h("input", { id: "ns-name", required: true, placeholder: "my-namespace" });
  const dimension = h("input", { id: "ns-dim", type: "number", min: "1", value: "384", required: true });
  const distance = h("select", { id: "ns-distance" }, ["cosine", "euclidean", "dot_product"].map((d) => h("option", { value: d }, d)));
  const button = h("button", { type: "submit", class: "btn primary" }, "Create");
  return writes(
    h(
      "form",
      {
        class: "card",
        on: {
          submit: (event) => {
            event.preventDefault();
            act(button, async () => {
              await post("/v1/namespaces", { name: name.value.trim(), dimension: Number(dimension.value), distance: distance.value });
              notify(`Created ${name.value.trim()}.`);
              location.hash = `#/namespaces/${seg(name.value.trim())}`;
            });
          },
        },
      },
      h("h2", null, "Create a namespace"),
      h("div", { class: "row" }, h("div", { class: "grow" }, field("Name", name)), field("Dimension", dimension), field("Distance", distance), button),
    ),
  );
}

function resultRows(results) {
  return results.map((r) =>
    h(
      "tr",
      null,
      h("td", null, h("code", null, r.id)),
      h("td", { class: "num" }, num(r.score, 4)),
      h("td", null, shorten(r.text ?? r.content ?? "", 160)),
      h("td", null, r.metadata && Object.keys(r.metadata).length ? h("code", null, shorten(JSON.stringify(r.metadata), 120)) : "—"),
    ),
  );
}

function playground(name, dimension) {
  const mode = h("select", { id: "pg-mode" }, Object.entries(MODES).filter(([, [, route]]) => can("POST", route, name)).map(([key, [label]]) => h("option", { value: key }, label)));
  const input = h("textarea", { id: "pg-query", placeholder: "What to look for", dataset: { search: "" } });
  const topK = h("input", { id: "pg-k", type: "number", min: "1", max: "1000", value: "10" });
  const filter = h("textarea", { id: "pg-filter", placeholder: '{"lang": {"$eq": "en"}}  (optional)' });
  const out = h("div", { id: "pg-results" });
  const button = h("button", { type: "submit", class: "btn primary", id: "pg-run" }, "Run query");
  mode.addEventListener("change", () => {
    input.placeholder = mode.value === "vector" ? `[${Array.from({ length: Math.min(dimension || 3, 3) }, () => "0.1").join(", ")}, …] (${dimension} numbers)` : "What to look for";
  });
  return h(
    "form",
    {
      class: "card",
      on: {
        submit: (event) => {
          event.preventDefault();
          act(button, async () => {
            const body = { top_k: Number(topK.value), include_metadata: true };
            try {
              if (filter.value.trim()) body.filter = JSON.parse(filter.value);
              if (mode.value === "vector") body.vector = JSON.parse(input.value);
            } catch {
              replace(out, h("p", { class: "error", role: "alert" }, "The filter or vector is not valid JSON."));
              return;
            }
            if (mode.value === "text") body.text = input.value;
            if (mode.value === "hybrid" || mode.value === "fulltext") body.query = input.value;
            const started = performance.now();
            try {
              const answer = await post(MODES[mode.value][1].replace("{namespace}", seg(name)), body);
              const results = answer.results || [];
              replace(
                out,
                h("p", { class: "muted" }, `${results.length} results in ${num(performance.now() - started, 1)} ms (round trip).`),
                results.length ? table(["Id", "Score", "Text", "Metadata"], resultRows(results), { id: "pg-table" }) : empty("No results."),
              );
            } catch (error) {
              replace(out, errorBox(error));
            }
          });
        },
      },
    },
    h("h2", null, "Query playground"),
    h("div", { class: "row" }, field("Kind", mode), field("Results", topK)),
    field("Query", input),
    field("Filter", filter, "JSON, the filter language of the API"),
    button,
    out,
  );
}

function upsertForm(name, reload) {
  const id = h("input", { id: "up-id", required: true, placeholder: "doc-1" });
  const text = h("textarea", { id: "up-text", required: true });
  const metadata = h("input", { id: "up-meta", placeholder: '{"lang": "en"} (optional)' });
  const button = h("button", { type: "submit", class: "btn" }, "Add document");
  return writes(
    h(
      "form",
      {
        class: "card",
        on: {
          submit: (event) => {
            event.preventDefault();
            act(button, async () => {
              const doc = { id: id.value.trim(), text: text.value };
              if (metadata.value.trim()) doc.metadata = JSON.parse(metadata.value);
              await post(`/v1/namespaces/${seg(name)}/upsert-text`, { documents: [doc] });
              notify(`Stored ${doc.id}.`);
              reload();
            });
          },
        },
      },
      h("h2", null, "Add a text document"),
      h("div", { class: "row" }, field("Id", id), h("div", { class: "grow" }, field("Metadata", metadata))),
      field("Text", text),
      button,
    ),
  );
}

async function detail({ container, params, signal }) {
  const name = params[0];
  const info = await get(`/v1/namespaces/${seg(name)}`, null, signal);
  const reload = () => detail({ container, params, signal });
  const facts = [
    ["Kind", info.kind],
    ["Dimension", info.dimension ?? "—"],
    ["Distance", info.distance],
    ["Vectors", info.vector_count],
    ["Documents", info.document_count ?? "—"],
    ["Index", indexState(info)],
    ["Storage (estimate)", bytes(info.estimated_storage_bytes)],
  ];
  let remove = null;
  if (can("DELETE", "/v1/namespaces/{namespace}", name)) {
    remove = writes(h("button", { type: "button", class: "btn danger", id: "ns-delete" }, "Delete namespace"));
    remove.addEventListener("click", async () => {
      if (!(await confirmAction(`Delete ${name}?`, "Every vector and document in it is deleted.", "Delete"))) return;
      await act(remove, async () => {
        await call("DELETE", `/v1/namespaces/${seg(name)}`);
        notify(`Deleted ${name}.`);
        location.hash = "#/namespaces";
      });
    });
  }
  replace(
    container,
    h("p", null, h("a", { href: "#/namespaces" }, "← Namespaces")),
    h("h1", { tabindex: "-1" }, name),
    h("dl", { class: "facts", id: "ns-facts" }, facts.map(([k, v]) => [h("dt", null, k), h("dd", null, String(v))])),
    info.kind === "agent"
      ? h("p", null, "This namespace holds an agent's memories: ", h("a", { href: `#/agents/${seg(name.replace(/^_dakera_agent_/, ""))}` }, "open the agent"), ".")
      : [playground(name, info.dimension), can("POST", "/v1/namespaces/{namespace}/upsert-text", name) ? upsertForm(name, reload) : null],
    remove ? h("p", null, remove) : null,
  );
}

export async function render(context) {
  if (context.params[0]) return detail(context);
  return list(context);
}
