// Spike: 10 VUs jump to 300 in 10 s, hold, drop back; the recovery phase has its own SLA.
import exec from 'k6/execution';
import { sleep } from 'k6';
import { SLA_P95_MS, SLA_P99_MS, SLA_SPIKE_ERROR_RATE, THINK_S } from './lib/config.js';
import { search } from './lib/flows.js';
import { phaseLatency } from './lib/metrics.js';
import { SPIKE, SPIKE_PHASES, phaseAt, toStages, vus } from './lib/shapes.js';
import { TREND_STATS, summaryOutputs } from './lib/summary.js';

export const options = {
  summaryTrendStats: TREND_STATS, // p99 and p99.9 in the summary too
  scenarios: {
    spike: {
      executor: 'ramping-vus',
      exec: 'spike',
      startVUs: vus(10), // the baseline
      stages: toStages(SPIKE), // baseline 10, 10->300 in 10 s, hold, drop, recovery
      gracefulRampDown: '2s', // let in-flight searches finish
    },
  },
  thresholds: {
    'http_req_duration{phase:recovery}': [`p(95)<${SLA_P95_MS}`], // after the spike: back under the p95 limit
    'search_phase_latency{phase:recovery}': [`p(99)<${SLA_P99_MS}`], // and the far tail settles too
    http_req_failed: [`rate<${SLA_SPIKE_ERROR_RATE}`], // a spike may shed a little, never more than spike_error_rate
  },
};

// custom metrics: search_phase_latency (lib/metrics.js) tags latency by phase

export function spike() {
  const elapsed = (Date.now() - exec.scenario.startTime) / 1000;
  const phase = phaseAt(SPIKE, SPIKE_PHASES, elapsed);
  const res = search({ phase });
  phaseLatency.add(res.timings.duration, { phase });
  sleep(THINK_S * Math.random() * 2); // think time, mean THINK_S
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
