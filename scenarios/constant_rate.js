// Constant rate: the vegeta attack replayed by k6's constant-arrival-rate executor, used when
// the vegeta binary is missing. Same targets file (vegeta JSON lines), same rate, round robin.
// Writes as vegeta sends them: ingest targets, and delete targets naming scratch documents the
// runner made for them (ci/measure/vegeta_targets.py); the documents ingested here stay.
import encoding from 'k6/encoding';
import exec from 'k6/execution';
import http from 'k6/http';
import { check } from 'k6';
import { SharedArray } from 'k6/data';
import { ATTACK_S, BASE_URL, RATE, SLA_ERROR_RATE, SLA_P95_MS, SLA_P99_MS, TARGETS } from './lib/config.js';
import { transportErrors } from './lib/metrics.js';
import { vus } from './lib/shapes.js';
import { TREND_STATS, summaryOutputs } from './lib/summary.js';

export const options = {
  summaryTrendStats: TREND_STATS, // p99 and p99.9 in the summary too
  scenarios: {
    vegeta: {
      executor: 'constant-arrival-rate',
      exec: 'attack',
      rate: vus(RATE), // requests per second, as `vegeta attack -rate`
      timeUnit: '1s',
      duration: `${Math.max(1, ATTACK_S)}s`, // as `vegeta attack -duration`
      preAllocatedVUs: vus(RATE / 4, 5), // VUs ready up front
      maxVUs: vus(RATE * 2, 10), // vegeta's workers grow too when latency grows
      gracefulStop: '5s', // in-flight requests may finish
    },
  },
  thresholds: {
    http_req_duration: [`p(95)<${SLA_P95_MS}`, `p(99)<${SLA_P99_MS}`], // SLA at the offered rate
    http_req_failed: [`rate<${SLA_ERROR_RATE}`], // SLA: failed requests under the error rate
    dropped_iterations: ['count<1'], // vegeta never skips a request; neither should we
  },
};

// custom metrics: search_transport_errors (lib/metrics.js)

// Vegeta JSON targets: {"method","url","header":{name:[values]},"body": base64}.
const targets = new SharedArray('targets', function () {
  if (!TARGETS) {
    return [{ method: 'GET', url: `${BASE_URL}/v1/search?q=copyright&k=10`, header: {} }];
  }
  return open(TARGETS)
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
});

export function attack() {
  const t = targets[exec.scenario.iterationInTest % targets.length];
  const headers = {};
  for (const [name, values] of Object.entries(t.header || {})) {
    headers[name] = Array.isArray(values) ? values.join(', ') : String(values);
  }
  const body = t.body ? encoding.b64decode(t.body, 'std', 's') : null;
  const res = http.request(t.method, t.url, body, { headers, tags: { name: 'attack' } });
  if (res.status === 0) {
    transportErrors.add(1);
  }
  check(res, { 'attack 2xx': (r) => r.status >= 200 && r.status < 300 });
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
