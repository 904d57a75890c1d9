// Duet: both revisions under the same open-model load at once, one measurement window.
// Every iteration sends the same query to slot a and slot b together; the runner decides
// which revision each slot serves (swapped between windows in shuffled ABBA blocks).
import { DUET_S, RATE, SLA_ERROR_RATE, SLA_P95_MS } from './lib/config.js';
import { duet } from './lib/duet.js';
import { vus } from './lib/shapes.js';
import { summaryOutputs } from './lib/summary.js';

const ORDER = ['a', 'b']; // http.batch starts both at once; the runner swaps the services

function arrivals(execName, rate) {
  return {
    executor: 'constant-arrival-rate',
    exec: execName,
    rate: vus(rate), // iterations per second, whatever the latency (open model)
    timeUnit: '1s',
    duration: `${Math.max(1, DUET_S)}s`, // one window; not time-scaled
    preAllocatedVUs: vus(rate / 4, 5), // VUs ready up front (allocating later can drop)
    maxVUs: vus(rate * 2, 10), // more only if a service slows down
    gracefulStop: '3s', // in-flight requests may finish
  };
}

export const options = {
  // count: samples per slot, so the runner knows which percentiles have enough of them
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'],
  // One arrival process for both slots, the same query to each. Measured A/A on 2 vCPU (SD
  // of the per-window log ratio): CPU per request 0.5-0.7 % paired vs 6.3 % with two
  // independent scenarios, p50 4.6-5.4 % vs 11 % (README, "How the gate decides").
  scenarios: { duet: arrivals('pair', RATE) },
  thresholds: {
    search_duet_a_latency: [`p(95)<${SLA_P95_MS}`], // the SLA, per slot (judged elsewhere)
    search_duet_b_latency: [`p(95)<${SLA_P95_MS}`],
    search_duet_a_failed: [`rate<${SLA_ERROR_RATE}`],
    search_duet_b_failed: [`rate<${SLA_ERROR_RATE}`],
  },
};

// custom metrics: search_duet_<slot>_{latency,searches,failed,requests} (lib/duet.js)

export function pair() {
  duet(ORDER);
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
