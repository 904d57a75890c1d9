// Connections: 1000+ keep-alive connections held open at once, plus bursts of async streams.
// "Held" = each VU keeps its own keep-alive connection, idling HOLD_S (below the server's
// keep-alive timeout) between requests; the runner counts ESTABLISHED sockets server-side.
import { sleep } from 'k6';
import { CONNECTIONS, HOLD_S, SSE_K } from './lib/config.js';
import { streams, touch } from './lib/flows.js';
import { dur } from './lib/shapes.js';
import { TREND_STATS, summaryOutputs } from './lib/summary.js';

// Hold long enough for every VU to reuse its connection at least twice.
const HOLD_MIN_S = Math.max(3, HOLD_S * 2.5);
const STREAM_VUS = 4;
const STREAMS_PER_VU = 10; // 40 streams in flight: more exhaust the DB pool (10) and get 503s

export const options = {
  summaryTrendStats: TREND_STATS, // p99 and p99.9 in the summary too
  scenarios: {
    hold: {
      executor: 'ramping-vus',
      exec: 'hold',
      startVUs: 0,
      stages: [
        { duration: dur(30, 3), target: CONNECTIONS }, // open the connections
        { duration: dur(120, HOLD_MIN_S), target: CONNECTIONS }, // hold them all
        { duration: dur(10, 1), target: 0 }, // release
      ],
      gracefulRampDown: '0s', // idle VUs may be stopped mid-sleep
    },
    streams: {
      executor: 'constant-vus',
      exec: 'burst',
      vus: STREAM_VUS, // few VUs, many streams each (http.asyncRequest + Promise.all)
      startTime: dur(30, 3), // once the connections are open
      duration: dur(120, HOLD_MIN_S), // during the hold
      gracefulStop: '5s',
    },
  },
  thresholds: {
    'http_req_failed{scenario:hold}': ['rate==0'], // no held connection refused or failed
    'http_req_failed{scenario:streams}': ['rate==0'], // no burst stream refused or failed
    search_transport_errors: ['count==0'], // no request without an HTTP response
    'search_sse_complete{scenario:streams}': ['rate==1'], // every burst stream in full
  },
};

// custom metrics: search_transport_errors, search_sse_* (lib/metrics.js)

export function hold() {
  touch();
  sleep(HOLD_S); // idle on the open connection
}

export async function burst() {
  await streams(STREAMS_PER_VU, SSE_K);
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
