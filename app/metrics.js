// Reading the server's `/metrics` (Prometheus text exposition) for the operations page: the
// few live numbers it shows, computed from two scrapes. Pure functions, no DOM.
//
// Names (see src/metrics/setup.rs): `websocket_active_connections`,
// `websocket_messages_sent_total`, `websocket_messages_received_total`,
// `projection_lag_events`, `eventstore_append_duration_seconds_bucket`.

/** Parses the exposition text into samples `{ name, labels, value }`. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    if (match[3]) {
      for (const pair of match[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    }
    const value = match[4] === '+Inf' ? Infinity : Number(match[4]);
    samples.push({ name: match[1], labels, value });
  }
  return samples;
}

const sum = (samples, name) => samples.filter((s) => s.name === name).reduce((n, s) => n + s.value, 0);

/** The cumulative buckets of a histogram, `[[le, count], …]` sorted by `le`. */
function buckets(samples, name) {
  return samples
    .filter((s) => s.name === `${name}_bucket`)
    .map((s) => [s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value])
    .sort((a, b) => a[0] - b[0]);
}

/** Like PromQL's `histogram_quantile`: linear interpolation inside the bucket. */
export function quantile(q, cumulative) {
  if (!cumulative.length) return null;
  const total = cumulative[cumulative.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of cumulative) {
    if (count >= rank) {
      if (le === Infinity) return lower; // beyond the last bound: the best we can say
      const inBucket = count - below;
      return inBucket > 0 ? lower + (le - lower) * ((rank - below) / inBucket) : le;
    }
    lower = le;
    below = count;
  }
  return lower;
}

/** One scrape's raw figures. */
export function figures(text, at = Date.now()) {
  const samples = parseMetrics(text);
  return {
    at,
    sessions: sum(samples, 'websocket_active_connections'),
    messages: sum(samples, 'websocket_messages_sent_total') + sum(samples, 'websocket_messages_received_total'),
    lag: sum(samples, 'projection_lag_events'),
    appendBuckets: buckets(samples, 'eventstore_append_duration_seconds'),
  };
}

/**
 * The live numbers from the previous scrape and this one: messages per second between them,
 * and the append p99 over the appends between them (or, when there were none, since start).
 */
export function liveNumbers(previous, now) {
  let rate = null;
  let window = now.appendBuckets;
  let p99Scope = 'since start';
  if (previous) {
    const seconds = (now.at - previous.at) / 1000;
    if (seconds > 0) rate = Math.max(0, now.messages - previous.messages) / seconds;
    const delta = now.appendBuckets.map(([le, count], i) => [le, count - ((previous.appendBuckets[i] || [le, 0])[1] || 0)]);
    if (delta.length && delta[delta.length - 1][1] > 0) {
      window = delta;
      p99Scope = 'last interval';
    }
  }
  return {
    sessions: now.sessions,
    messagesPerSecond: rate,
    projectionLag: now.lag,
    appendP99Seconds: quantile(0.99, window),
    p99Scope,
  };
}
