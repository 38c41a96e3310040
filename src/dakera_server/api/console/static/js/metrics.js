// Prometheus text from /metrics: parsing, and rates and percentiles between two scrapes
// (the way Prometheus' rate() and histogram_quantile() read counters and buckets).

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/;

/** {name: [{labels: {...}, value}]} from exposition text. */
export function parse(text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = LINE.exec(line);
    if (!match) continue;
    const labels = {};
    for (const part of (match[3] || "").match(/[a-zA-Z_]+="[^"]*"/g) || []) {
      const at = part.indexOf("=");
      labels[part.slice(0, at)] = part.slice(at + 2, -1);
    }
    (out[match[1]] ||= []).push({ labels, value: Number(match[4]) });
  }
  return out;
}

export function gauge(parsed, name) {
  const samples = parsed[name];
  return samples && samples.length ? samples[0].value : null;
}

export function total(parsed, name) {
  return (parsed[name] || []).reduce((sum, sample) => sum + sample.value, 0);
}

/**
 * Cumulative bucket counts as [[upper bound, count]], bounds ascending (+Inf last), summed over
 * every label set of the histogram (the server keeps one per method and route).
 */
export function buckets(parsed, name) {
  const byBound = new Map();
  for (const sample of parsed[`${name}_bucket`] || []) {
    const bound = sample.labels.le === "+Inf" ? Infinity : Number(sample.labels.le);
    byBound.set(bound, (byBound.get(bound) || 0) + sample.value);
  }
  return [...byBound.entries()].sort((a, b) => a[0] - b[0]);
}

/**
 * The q-quantile of the requests counted between two scrapes' buckets, interpolated linearly
 * inside the bucket it falls in. null when no request was counted in between.
 */
export function quantile(q, before, after) {
  const delta = after.map(([bound, count], i) => [bound, count - (before[i] ? before[i][1] : 0)]);
  const count = delta.length ? delta[delta.length - 1][1] : 0;
  if (count <= 0) return null;
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (const [bound, cumulative] of delta) {
    if (cumulative >= rank) {
      if (bound === Infinity) return lower; // past the last finite bound: report that bound
      const inBucket = cumulative - below;
      return lower + (bound - lower) * (inBucket > 0 ? (rank - below) / inBucket : 1);
    }
    lower = bound;
    below = cumulative;
  }
  return lower;
}
