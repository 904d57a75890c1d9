// Every scenario in one file, one after another: `k6 run scenarios/load_test_comprehensive.js`
// (BASE_URL defaults to http://127.0.0.1:8000; TIME_SCALE=0.01 runs it in about 90 s).
// The executors and thresholds come from the single-scenario scripts, so both stay in step.
import { arrive, options as arrivalOptions } from './arrival_rate.js';
import { burst, hold, options as connectionOptions } from './connections.js';
import { ramp, options as rampOptions } from './ramp.js';
import { spike, options as spikeOptions } from './spike.js';
import { sse, options as sseOptions } from './sse.js';
import { sustained, options as sustainedOptions } from './sustained.js';
import { scopeThresholds, sequence } from './lib/shapes.js';
import { TREND_STATS, summaryOutputs } from './lib/summary.js';

const PARTS = [
  rampOptions,
  spikeOptions,
  sseOptions,
  connectionOptions,
  arrivalOptions,
  sustainedOptions,
];

function combinedScenarios() {
  const all = {};
  for (const part of PARTS) {
    Object.assign(all, part.scenarios);
  }
  // connections' two scenarios overlap on purpose: keep the burst inside the hold
  const placed = sequence(
    Object.fromEntries(Object.entries(all).filter(([name]) => name !== 'streams')),
  );
  const holdStart = Number(placed.hold.startTime.replace(/ms$/, ''));
  const burstOffset = Number(all.streams.startTime.replace(/ms$/, ''));
  placed.streams = Object.assign({}, all.streams, {
    startTime: `${holdStart + burstOffset}ms`,
  });
  return placed;
}

function combinedThresholds() {
  const out = {};
  for (const part of PARTS) {
    for (const name of Object.keys(part.scenarios)) {
      Object.assign(out, scopeThresholds(part.thresholds, name));
    }
  }
  return out;
}

export const options = {
  summaryTrendStats: TREND_STATS, // p99 and p99.9 in the summary too
  scenarios: combinedScenarios(), // ramp, spike, sse, hold+streams, constant/ramping rate, sustained
  thresholds: combinedThresholds(), // each script's thresholds, scoped to its scenario
};

// custom metrics: shared ones in lib/metrics.js (search_ prefix)

export { arrive, burst, hold, ramp, spike, sse, sustained };

export function handleSummary(data) {
  return summaryOutputs(data);
}
