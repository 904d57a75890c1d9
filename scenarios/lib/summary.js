// handleSummary helper: a short plain-text digest on stdout, the full data on request.
import { SUMMARY_JSON } from './config.js';

function fmt(values, key) {
  const v = values[key];
  return v === undefined ? '-' : Number(v).toFixed(2);
}

export function summaryOutputs(data) {
  const lines = [];
  const m = data.metrics;
  const reqs = m.http_reqs ? m.http_reqs.values : { count: 0, rate: 0 };
  lines.push(`requests ${reqs.count} (${Number(reqs.rate).toFixed(1)}/s)`);
  if (m.http_req_failed) {
    lines.push(`failed   ${(m.http_req_failed.values.rate * 100).toFixed(3)} %`);
  }
  for (const name of ['http_req_duration', 'search_sse_ttfe', 'search_sse_duration']) {
    if (m[name]) {
      const v = m[name].values;
      lines.push(
        `${name}: p50 ${fmt(v, 'med')} p95 ${fmt(v, 'p(95)')} p99 ${fmt(v, 'p(99)')} ` +
          `max ${fmt(v, 'max')} ms`,
      );
    }
  }
  if (m.dropped_iterations) {
    lines.push(`dropped iterations ${m.dropped_iterations.values.count}`);
  }
  for (const [name, metric] of Object.entries(m)) {
    for (const [expr, outcome] of Object.entries(metric.thresholds || {})) {
      lines.push(`threshold ${name} ${expr}: ${outcome.ok ? 'ok' : 'FAILED'}`);
    }
  }
  const out = { stdout: lines.join('\n') + '\n' };
  if (SUMMARY_JSON) {
    out[SUMMARY_JSON] = JSON.stringify(data);
  }
  return out;
}

// Trend statistics in the end-of-test summary (p(99.9) is not there by default).
export const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'p(99.9)'];
