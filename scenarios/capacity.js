// Capacity step: one open-model arrival rate, a short warm-up, then the measured window.
// `perfci sweep capacity` runs this once per (service, query mix, rate) and reads the
// `{scenario:measure}` sub-metrics of the summary export: capacity is the highest rate
// whose measured p99 stays within CAPACITY_P99_MS with no error and ~no dropped iteration.
import http from 'k6/http';
import exec from 'k6/execution';
import {
  CAPACITY_MAX_VUS,
  CAPACITY_MEASURE_S,
  CAPACITY_MIX,
  CAPACITY_P99_MS,
  CAPACITY_PREALLOCATED_VUS,
  CAPACITY_RATE,
  CAPACITY_WARMUP_S,
} from './lib/config.js';
import { QUERIES, pickQuery, searchUrl } from './lib/query.js';
import { TREND_STATS, summaryOutputs } from './lib/summary.js';

// Iterations the warm-up starts (constant-arrival-rate starts rate x duration of them):
// the measured window's sequential queries come after these in QUERY_LOG.
const WARMUP_ITERATIONS = Math.ceil(CAPACITY_RATE * CAPACITY_WARMUP_S);

const step = {
  executor: 'constant-arrival-rate',
  rate: CAPACITY_RATE, // iterations per second, whatever the latency: an open model
  timeUnit: '1s',
  preAllocatedVUs: CAPACITY_PREALLOCATED_VUS, // ready up front: allocating later can drop
  maxVUs: CAPACITY_MAX_VUS, // beyond it k6 drops iterations (counted, and the step fails)
};

const scenarios = {
  measure: Object.assign({}, step, {
    exec: 'measured',
    startTime: `${CAPACITY_WARMUP_S}s`,
    duration: `${CAPACITY_MEASURE_S}s`, // long enough for a p99 at the lowest rate
    gracefulStop: '3s', // in-flight searches may finish
  }),
};
if (CAPACITY_WARMUP_S > 0) {
  scenarios.warmup = Object.assign({}, step, {
    exec: 'warm',
    duration: `${CAPACITY_WARMUP_S}s`, // connections opened, pools grown, not measured
    gracefulStop: '2s', // its stragglers finish beside the measured window's first requests
  });
}

export const options = {
  discardResponseBodies: true, // the status is what counts; reading bodies costs k6 CPU
  summaryTrendStats: TREND_STATS, // p99 in the summary
  scenarios: scenarios,
  thresholds: {
    // the capacity rule, judged by the runner from these sub-metrics; a step whose p99
    // passes twice the limit is stopped early (it has failed; waiting tells nothing more)
    'http_req_duration{scenario:measure}': [
      { threshold: `p(99)<=${CAPACITY_P99_MS * 2}`, abortOnFail: true, delayAbortEval: '3s' },
      `p(99)<=${CAPACITY_P99_MS}`,
    ],
    'http_req_failed{scenario:measure}': ['rate<=0'], // no error at all
    'dropped_iterations{scenario:measure}': ['count>=0'], // reported, judged by the runner
    'http_reqs{scenario:measure}': ['count>=0'], // reported: requests in the window
  },
};

// The query of this iteration: drawn by weight (the Zipf log), or the next one of the
// file (all-unique: the runner writes a file with one fresh query per planned iteration).
function entryFor(offset) {
  if (CAPACITY_MIX === 'sequential') {
    const i = offset + exec.scenario.iterationInTest;
    return QUERIES[i % QUERIES.length];
  }
  return pickQuery();
}

function get(entry) {
  http.get(searchUrl(entry), { tags: { name: 'search' }, timeout: '10s' });
}

export function warm() {
  get(entryFor(0));
}

export function measured() {
  get(entryFor(WARMUP_ITERATIONS));
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
