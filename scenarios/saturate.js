// Saturate: a closed loop with no think time, so throughput is what the service can serve.
// `perfci sweep pool|workers` reads throughput and p95 from it: the throughput at the SLA.
import { SATURATE_VUS, SLA_ERROR_RATE, SLA_P95_MS, SLA_P99_MS } from './lib/config.js';
import { search } from './lib/flows.js';
import { dur, vus } from './lib/shapes.js';
import { TREND_STATS, summaryOutputs } from './lib/summary.js';

export const options = {
  summaryTrendStats: TREND_STATS, // p99 and p99.9 in the summary too
  scenarios: {
    saturate: {
      executor: 'constant-vus',
      exec: 'saturate',
      vus: vus(SATURATE_VUS), // enough requests in flight to keep every worker busy
      duration: dur(600, 5), // 60 s at the pr profile's TIME_SCALE 0.1
      gracefulStop: '2s', // let in-flight requests finish
    },
  },
  thresholds: {
    http_req_duration: [
      `p(95)<${SLA_P95_MS}`, // SLA: the throughput counts only while p95 stays under the limit
      `p(99)<${SLA_P99_MS}`, // SLA: p99 under the limit
    ],
    http_req_failed: [`rate<${SLA_ERROR_RATE}`], // SLA: failed requests under the error rate
  },
};

// custom metrics: shared ones in lib/metrics.js (search_ prefix)

export function saturate() {
  search(); // no sleep: the next request leaves as soon as the last one is answered
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
