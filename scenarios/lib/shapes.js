// Load shapes: stages and durations scaled by TIME_SCALE (and VU counts by VU_SCALE).
import { TIME_SCALE, VU_SCALE } from './config.js';

// Duration string for `seconds` of full-length time, never below `minSeconds`.
export function dur(seconds, minSeconds = 0.5) {
  const ms = Math.max(minSeconds * 1000, Math.round(seconds * 1000 * TIME_SCALE));
  return `${Math.round(ms)}ms`;
}

// Scaled duration in seconds (for startTime offsets and phase boundaries).
export function secs(seconds, minSeconds = 0.5) {
  return Math.max(minSeconds, seconds * TIME_SCALE);
}

// A VU count or rate scaled by VU_SCALE, at least `floor`.
export function vus(n, floor = 1) {
  return Math.max(floor, Math.round(n * VU_SCALE));
}

// Total scaled length of a list of [seconds, target] stages.
export function stagesLength(stages) {
  return stages.reduce((acc, [s]) => acc + secs(s), 0);
}

export function toStages(stages) {
  return stages.map(([s, target]) => ({ duration: dur(s), target: vus(target, 0) }));
}

// The user's ramp: 2m to 10, 5m to 50, 2m to 100, 10m at 100, 2m to 0.
export const RAMP = [
  [120, 10], // warm up gently
  [300, 50], // climb to moderate load
  [120, 100], // climb to peak
  [600, 100], // hold the peak
  [120, 0], // ramp down
];

// Spike: baseline 10 VUs, jump to 300 in 10 s, hold, drop, then watch recovery.
export const SPIKE = [
  [30, 10], // baseline
  [10, 300], // the jump: 10 -> 300 VUs in 10 s
  [60, 300], // hold the spike
  [10, 10], // drop back
  [60, 10], // recovery: latency must settle
];
export const SPIKE_PHASES = ['baseline', 'jump', 'spike', 'drop', 'recovery'];

// Phase name for `elapsedSeconds` into a staged scenario.
export function phaseAt(stages, names, elapsedSeconds) {
  let end = 0;
  for (let i = 0; i < stages.length; i++) {
    end += secs(stages[i][0]);
    if (elapsedSeconds < end) {
      return names[i];
    }
  }
  return names[names.length - 1];
}

// Ramping arrival rate: up to twice the rate, hold, down.
export function rateStages(rate) {
  return [
    { duration: dur(30), target: vus(rate) }, // ramp to the nominal rate
    { duration: dur(60), target: vus(rate * 2) }, // push to twice the rate
    { duration: dur(30), target: vus(rate * 2) }, // hold
    { duration: dur(30), target: 0 }, // down
  ];
}

function ms(text) {
  return text ? Number(String(text).replace(/ms$/, '')) : 0;
}

// Length in seconds of a scenario built from these shapes (stages or duration, plus startTime).
export function scenarioEnd(scenario) {
  let total = ms(scenario.startTime);
  if (scenario.stages) {
    total += scenario.stages.reduce((acc, st) => acc + ms(st.duration), 0);
  } else {
    total += ms(scenario.duration);
  }
  return total / 1000;
}

// Place named scenarios one after another, `gapSeconds` apart (gives graceful stops room).
// Each scenario's own startTime (relative to its own script) is replaced.
export function sequence(scenarios, gapSeconds = 1) {
  const out = {};
  let offset = 0;
  for (const [name, sc] of Object.entries(scenarios)) {
    const start = offset; // a scenario's own startTime is relative to its script
    const placed = Object.assign({}, sc, { startTime: `${Math.round(start * 1000)}ms` });
    out[name] = placed;
    offset = Math.max(offset, scenarioEnd(placed) + gapSeconds);
  }
  return out;
}

// Thresholds of a single-scenario script re-keyed to one scenario of a combined script.
export function scopeThresholds(thresholds, scenarioName) {
  const out = {};
  for (const [metric, rules] of Object.entries(thresholds)) {
    if (metric.includes('scenario:')) {
      out[metric] = rules; // already scoped by its script
      continue;
    }
    if (metric === 'dropped_iterations' || metric === 'checks') {
      out[`${metric}{scenario:${scenarioName}}`] = rules;
      continue;
    }
    const brace = metric.indexOf('{');
    const scoped =
      brace < 0
        ? `${metric}{scenario:${scenarioName}}`
        : `${metric.slice(0, -1)},scenario:${scenarioName}}`;
    out[scoped] = rules;
  }
  return out;
}
