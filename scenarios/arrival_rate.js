// Arrival rate: open model (constant, then ramping), so a stalled server cannot slow the
// load down (no coordinated omission); iterations k6 could not start are dropped_iterations.
import { RATE, SLA_ERROR_RATE, SLA_P95_MS, SLA_P99_MS } from './lib/config.js';
import { search } from './lib/flows.js';
import { dur, rateStages, secs, vus } from './lib/shapes.js';
import { TREND_STATS, summaryOutputs } from './lib/summary.js';

const CONSTANT_S = 120;
const RAMPING = rateStages(RATE);
// Iterations planned over both scenarios (the ramp averages to about 1.4 times RATE).
const PLANNED = vus(RATE) * secs(CONSTANT_S, 2) + vus(RATE) * 1.4 * secs(150);

export const options = {
  summaryTrendStats: TREND_STATS, // p99 and p99.9 in the summary too
  scenarios: {
    constant_rate: {
      executor: 'constant-arrival-rate',
      exec: 'arrive',
      rate: vus(RATE), // iterations per second, whatever the latency
      timeUnit: '1s',
      duration: dur(CONSTANT_S, 2), // two minutes at TIME_SCALE=1
      preAllocatedVUs: vus(RATE / 2, 5), // VUs ready up front (allocating later can drop)
      maxVUs: vus(RATE * 2, 10), // more only if the server slows down
      gracefulStop: '5s', // in-flight searches may finish
    },
    ramping_rate: {
      executor: 'ramping-arrival-rate',
      exec: 'arrive',
      startTime: dur(CONSTANT_S + 1, 3), // after the constant phase
      startRate: vus(RATE / 10), // from a trickle
      timeUnit: '1s',
      stages: RAMPING, // to RATE, up to 2x RATE, hold, down
      preAllocatedVUs: vus(RATE / 2, 5), // VUs ready up front
      maxVUs: vus(RATE * 4, 20), // headroom when latency grows with the rate
      gracefulStop: '5s', // in-flight searches may finish
    },
  },
  thresholds: {
    dropped_iterations: [`count<${Math.max(1, Math.ceil(PLANNED * 0.01))}`], // under 1 % dropped
    http_req_duration: [`p(95)<${SLA_P95_MS}`, `p(99)<${SLA_P99_MS}`], // SLA at the offered rate
    http_req_failed: [`rate<${SLA_ERROR_RATE}`], // SLA: failed requests under the error rate
  },
};

// custom metrics: shared ones in lib/metrics.js (search_ prefix)

export function arrive() {
  search(); // no sleep: the executor paces arrivals
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
