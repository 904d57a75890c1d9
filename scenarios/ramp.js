// Ramp: the user's stages (2m to 10, 5m to 50, 2m to 100, 10m at 100, 2m to 0), closed model.
import { sleep } from 'k6';
import { SLA_ERROR_RATE, SLA_P95_MS, SLA_P99_MS, THINK_S } from './lib/config.js';
import { search } from './lib/flows.js';
import { RAMP, toStages } from './lib/shapes.js';
import { TREND_STATS, summaryOutputs } from './lib/summary.js';

export const options = {
  summaryTrendStats: TREND_STATS, // p99 and p99.9 in the summary too
  scenarios: {
    ramp: {
      executor: 'ramping-vus',
      exec: 'ramp',
      startVUs: 0,
      stages: toStages(RAMP), // 2m->10, 5m->50, 2m->100, 10m at 100, 2m->0 (times TIME_SCALE)
      gracefulRampDown: '2s', // let in-flight searches finish when VUs are removed
    },
  },
  thresholds: {
    http_req_duration: [
      `p(95)<${SLA_P95_MS}`, // SLA: 95 % of requests under the p95 limit
      `p(99)<${SLA_P99_MS}`, // SLA: 99 % under the p99 limit
    ],
    http_req_failed: [`rate<${SLA_ERROR_RATE}`], // SLA: failed requests under the error rate
  },
};

// custom metrics: shared ones in lib/metrics.js (search_ prefix)

export function ramp() {
  search();
  sleep(THINK_S * Math.random() * 2); // think time, mean THINK_S
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
