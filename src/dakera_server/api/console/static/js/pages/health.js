// Health and metrics: the probes, the model, and request rate and latency percentiles over
// time. Those come from the analytics routes when the server has them and the key may read
// them; otherwise from /metrics, scraped every few seconds (the percentiles of each interval
// are read from the histogram's bucket counts, so they are as fine as its buckets).

import { call, get } from "../api.js";
import { lineChart } from "../chart.js";
import { duration, h, num, replace, table } from "../dom.js";
import { buckets, gauge, parse, quantile, total } from "../metrics.js";
import { can, serves } from "../session.js";
import { errorBox } from "../ui.js";

const EVERY_MS = 2000;
const WINDOW = 300; // samples kept: 10 minutes at one every 2 s
const HISTOGRAM = "dakera_http_request_duration_seconds";

function card(label, value, id, small = false) {
  return h("div", { class: "card" }, h("div", { class: "muted" }, label), h("div", { class: ["stat", small && "small"], id }, value));
}

async function probes(box, checksBox, signal) {
  const [healthAnswer, ready, live] = await Promise.all([
    call("GET", "/health", { signal }).catch((error) => ({ status: `unreachable (${error.status || "network"})` })),
    call("GET", "/health/ready", { signal }).catch((error) => ({ ready: false, reason: error.message })),
    call("GET", "/health/live", { signal }).catch(() => null),
  ]);
  const capabilities = can("GET", "/v1/capabilities") ? await get("/v1/capabilities", null, signal).catch(() => null) : null;
  const model = capabilities && capabilities.models ? capabilities.models.find((m) => m.active) : null;
  const status = healthAnswer.status;
  replace(
    box,
    h(
      "div",
      { class: "cards" },
      h(
        "div",
        { class: "card" },
        h("div", { class: "muted" }, "Status"),
        h("div", { class: "stat" }, h("span", { class: ["badge", status === "healthy" ? "ok" : "warn"], id: "health-status" }, status)),
      ),
      card("Version", healthAnswer.version || "—"),
      card("Uptime", live ? duration(live.uptime_seconds) : "—", "uptime"),
      card("Embedding model", model ? `${model.name} (${model.dimension}-d)` : "—", "model", true),
    ),
  );
  replace(
    checksBox,
    ready.checks
      ? table(
          ["Check", "State", "Detail"],
          Object.entries(ready.checks).map(([name, check]) => h("tr", null, h("td", null, name), h("td", null, check.status), h("td", null, check.message ?? "—"))),
          { id: "ready-checks" },
        )
      : h("p", { class: "error" }, `Not ready: ${ready.reason || "starting"}`),
  );
}

/** One sample from /metrics, compared with the previous scrape. */
async function scrape(previous, signal) {
  const text = await call("GET", "/metrics", { signal });
  const parsed = parse(text);
  const now = Date.now();
  const sample = {
    t: now,
    requests: total(parsed, "dakera_http_requests_total"),
    buckets: buckets(parsed, HISTOGRAM),
    memories: gauge(parsed, "dakera_memories"),
    agents: gauge(parsed, "dakera_agents"),
    sum: total(parsed, `${HISTOGRAM}_sum`),
    count: total(parsed, `${HISTOGRAM}_count`),
  };
  if (previous) {
    const seconds = (now - previous.t) / 1000;
    sample.rate = (sample.requests - previous.requests) / seconds;
    for (const [name, q] of [["p50", 0.5], ["p95", 0.95], ["p99", 0.99]]) {
      const value = quantile(q, previous.buckets, sample.buckets);
      sample[name] = value === null ? null : value * 1000;
    }
  }
  return sample;
}

/** One sample from the analytics routes (dakera-api.md §4.11 shapes). */
async function analytics(signal) {
  const [latency, throughput] = await Promise.all([
    get("/v1/analytics/latency", { period: "1h" }, signal),
    get("/v1/analytics/throughput", { period: "1h" }, signal),
  ]);
  return { t: Date.now(), rate: throughput.queries_per_second, p50: latency.p50_ms, p95: latency.p95_ms, p99: latency.p99_ms };
}

export async function render({ container, signal }) {
  const useAnalytics =
    serves("GET", "/v1/analytics/latency") && can("GET", "/v1/analytics/latency") && can("GET", "/v1/analytics/throughput");
  const probeBox = h("div", { id: "probes" }, h("p", { class: "muted" }, "Loading…"));
  const checksBox = h("div", { id: "checks" });
  const live = h("div", { id: "live-metrics" });
  const rateChart = h("div", { id: "rate-chart" });
  const latencyChart = h("div", { id: "latency-chart" });
  replace(
    container,
    h("h1", { tabindex: "-1" }, "Health and metrics"),
    probeBox,
    h("h2", null, "Requests"),
    h(
      "p",
      { class: "muted" },
      useAnalytics
        ? "From the analytics routes (period 1h), sampled every 2 s while this page is open."
        : "From /metrics, scraped every 2 s while this page is open: each point covers the interval since the previous scrape. Latency is time to response headers, server-side.",
    ),
    live,
    h("div", { class: "charts" }, h("div", { class: "card" }, rateChart), h("div", { class: "card" }, latencyChart)),
    h("h2", null, "Readiness checks"),
    checksBox,
  );
  probes(probeBox, checksBox, signal).catch((error) => {
    if (!signal.aborted) replace(probeBox, errorBox(error));
  });
  const samples = [];
  let previous = null;
  let ticks = 0;
  const tick = async () => {
    try {
      const sample = useAnalytics ? await analytics(signal) : await scrape(previous, signal);
      previous = sample;
      if (sample.rate !== undefined) samples.push(sample);
      while (samples.length > WINDOW) samples.shift();
      const last = samples[samples.length - 1];
      replace(
        live,
        h(
          "div",
          { class: "cards" },
          card("Requests / s", last ? num(last.rate, 1) : "…", "metric-rate"),
          card("p50 latency", last && last.p50 !== null ? `${num(last.p50, 1)} ms` : "—", "metric-p50"),
          card("p95 latency", last && last.p95 !== null ? `${num(last.p95, 1)} ms` : "—", "metric-p95"),
          card("p99 latency", last && last.p99 !== null ? `${num(last.p99, 1)} ms` : "—", "metric-p99"),
          sample.memories !== undefined ? card("Memories", sample.memories ?? "—", "metric-memories") : null,
          sample.count ? card("Since start", `${sample.count} requests, mean ${num((sample.sum / sample.count) * 1000, 1)} ms`, "metric-total", true) : null,
        ),
      );
      if (samples.length) {
        replace(rateChart, lineChart([{ name: "requests/s", points: samples.map((x) => [x.t, x.rate]) }], { unit: "req/s", label: "Request rate" }));
        replace(
          latencyChart,
          lineChart(
            ["p50", "p95", "p99"].map((name) => ({ name, points: samples.map((x) => [x.t, x[name]]) })),
            { unit: "ms", label: "Latency percentiles" },
          ),
        );
      } else {
        replace(rateChart, h("p", { class: "muted" }, "Collecting: the first point comes after two scrapes."));
      }
      ticks += 1;
      if (ticks % 5 === 0) probes(probeBox, checksBox, signal).catch(() => {});
    } catch (error) {
      if (signal.aborted) return;
      replace(live, errorBox(error));
    }
    if (!signal.aborted) setTimeout(tick, EVERY_MS);
  };
  await tick();
}
