// SSE: hundreds of concurrent /v1/search/stream requests with a large k, every stream counted.
import { sleep } from 'k6';
import { SLA_ERROR_RATE, SLA_TTFE_P95_MS, SSE_K, SSE_STREAMS, THINK_S } from './lib/config.js';
import { stream } from './lib/flows.js';
import { dur, vus } from './lib/shapes.js';
import { TREND_STATS, summaryOutputs } from './lib/summary.js';

export const options = {
  summaryTrendStats: TREND_STATS, // p99 and p99.9 in the summary too
  scenarios: {
    sse: {
      executor: 'ramping-vus',
      exec: 'sse',
      startVUs: 0,
      stages: [
        { duration: dur(30), target: vus(SSE_STREAMS) }, // open streams up to the peak
        { duration: dur(120, 2), target: vus(SSE_STREAMS) }, // hold hundreds of streams
        { duration: dur(10), target: 0 }, // close
      ],
      gracefulRampDown: '5s', // a stream in flight is read to its end
    },
  },
  thresholds: {
    search_sse_ttfe: [`p(95)<${SLA_TTFE_P95_MS}`], // first event within the SLA for 95 % of streams
    search_sse_complete: ['rate>0.999'], // streams end with `done` and the announced count
    http_req_failed: [`rate<${SLA_ERROR_RATE}`], // SLA: failed requests under the error rate
  },
};

// custom metrics: search_sse_ttfe, search_sse_duration, search_sse_events (lib/metrics.js)

export function sse() {
  stream(SSE_K);
  sleep(THINK_S * Math.random()); // short pause between streams
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
