// Ramp: the user's stages (2m to 10, 5m to 50, 2m to 100, 10m at 100, 2m to 0), closed model.
import { sleep } from 'k6';
import { THINK_S } from './lib/config.js';
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
      'p(95)<2000', // SLA: 95 % of requests under 2 s
      'p(99)<5000', // SLA: 99 % under 5 s
    ],
    http_req_failed: ['rate<0.001'], // SLA: under 0.1 % failed requests
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
