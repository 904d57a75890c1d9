// Sustained: constant load for an hour (by default), for drift, leaks and cache steady state.
import { sleep } from 'k6';
import { SLA_ERROR_RATE, SLA_P95_MS, SLA_P99_MS, SSE_K, SUSTAINED_VUS, THINK_S } from './lib/config.js';
import { search, stream } from './lib/flows.js';
import { dur, vus } from './lib/shapes.js';
import { TREND_STATS, summaryOutputs } from './lib/summary.js';

export const options = {
  summaryTrendStats: TREND_STATS, // p99 and p99.9 in the summary too
  scenarios: {
    sustained: {
      executor: 'constant-vus',
      exec: 'sustained',
      vus: vus(SUSTAINED_VUS), // steady concurrency
      duration: dur(3600, 2), // one hour at TIME_SCALE=1
      gracefulStop: '2s', // let in-flight requests finish
    },
  },
  thresholds: {
    http_req_duration: [
      `p(95)<${SLA_P95_MS}`, // SLA: p95 under the limit all hour
      `p(99)<${SLA_P99_MS}`, // SLA: p99 under the limit
    ],
    http_req_failed: [`rate<${SLA_ERROR_RATE}`], // SLA: failed requests under the error rate
  },
};

// custom metrics: shared ones in lib/metrics.js (search_ prefix)

export function sustained() {
  if (Math.random() < 0.05) {
    stream(Math.min(SSE_K, 100)); // a few streams in the mix
  } else {
    search();
  }
  sleep(THINK_S * Math.random() * 2); // think time, mean THINK_S
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
