// Duet: both revisions under the same open-model load at once, one measurement window.
// Every iteration sends the same query to slot a and slot b together; the runner decides
// which revision each slot serves (swapped between windows in shuffled ABBA blocks).
import {
  BURST_AT_S,
  BURST_GAP_S,
  BURST_ITERATIONS,
  BURST_VUS,
  DUET_S,
  RATE,
  SLA_ERROR_RATE,
  SLA_P95_MS,
} from './lib/config.js';
import { burstOne, burstPair, duet } from './lib/duet.js';
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

// The burst: BURST_VUS VUs start together BURST_AT_S into the window (the runner starts it
// as the arrivals end, so its queueing stays out of their latency) and each sends
// BURST_ITERATIONS searches, so a side holds ~BURST_VUS requests in flight (pools, locks and
// queues matter); a closed loop, measured apart from the open arrivals.
function burstScenario(execName, atS, maxS, stopS) {
  return {
    executor: 'per-vu-iterations',
    exec: execName,
    vus: BURST_VUS,
    iterations: BURST_ITERATIONS,
    startTime: `${Math.max(0, atS)}s`,
    maxDuration: `${maxS}s`, // no iteration starts after it...
    gracefulStop: `${stopS}s`, // ...and the ones in flight may finish within this
  };
}

const SCENARIOS = { duet: arrivals('pair', RATE) };
const BURST_START_S = Math.min(BURST_AT_S, DUET_S);
if (BURST_VUS > 0 && BURST_GAP_S > 0) {
  // One side after the other, each alone on the machine: slot a first (the runner deals the
  // slots in ABBA blocks, so which revision bursts first alternates). Each burst has 3/4 of
  // the gap and a quarter to finish: it is over before the next one starts.
  const ms = (s) => Math.round(s * 1000) / 1000;
  const [run, finish] = [ms(BURST_GAP_S * 0.75), ms(BURST_GAP_S * 0.25)];
  SCENARIOS.burst_a = burstScenario('burstA', BURST_START_S, run, finish);
  SCENARIOS.burst_b = burstScenario('burstB', ms(BURST_START_S + BURST_GAP_S), run, finish);
} else if (BURST_VUS > 0) {
  // both slots at once (http.batch): the scheduler decides which side is served first
  SCENARIOS.burst = burstScenario('burst', BURST_START_S, Math.max(2, DUET_S), 3);
}

export const options = {
  // count: samples per slot, so the runner knows which percentiles have enough of them
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'],
  // One arrival process for both slots, the same query to each. Measured A/A on 2 vCPU (SD
  // of the per-window log ratio): CPU per request 0.5-0.7 % paired vs 6.3 % with two
  // independent scenarios, p50 4.6-5.4 % vs 11 % (README, "How the gate decides").
  scenarios: SCENARIOS,
  thresholds: {
    search_duet_a_latency: [`p(95)<${SLA_P95_MS}`], // the SLA, per slot (judged elsewhere)
    search_duet_b_latency: [`p(95)<${SLA_P95_MS}`],
    search_duet_a_failed: [`rate<${SLA_ERROR_RATE}`],
    search_duet_b_failed: [`rate<${SLA_ERROR_RATE}`],
  },
};

// custom metrics: search_duet_<slot>_{latency,searches,failed,requests,slow,ttfe,stream,
// burst} (lib/duet.js)

export function pair() {
  duet(ORDER);
}

export function burst() {
  burstPair(ORDER);
}

export function burstA() {
  burstOne(ORDER[0]);
}

export function burstB() {
  burstOne(ORDER[1]);
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
