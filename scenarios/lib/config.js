// Every __ENV read of the scenarios lives here; scripts import plain values.
// The runner (ci/k6.py) passes these through the environment only.

function num(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name}=${raw} is invalid: expected a non-negative number`);
  }
  return value;
}

// Service under test; any server implementing the same endpoints will do.
export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
// One time scale for every shape: 0.01 turns a 21-minute ramp into ~13 s.
export const TIME_SCALE = num('TIME_SCALE', 1);
// Scales every VU count and arrival rate (small machines, tests).
export const VU_SCALE = num('VU_SCALE', 1);
// Zipf query log written by `perfci seed`; empty = the built-in list in query.js.
export const QUERY_LOG = __ENV.QUERY_LOG || '';
// Fraction of iterations that also ingest a document and delete it again.
export const WRITE_FRACTION = num('WRITE_FRACTION', 0.02);
// Think time between a VU's requests in closed-model scenarios, seconds.
export const THINK_S = num('THINK_S', 0.5);
// k of the SSE scenarios: large, so streams carry many batches.
export const SSE_K = Math.max(1, Math.round(num('SSE_K', 500)));
// Concurrent SSE streams (VUs) at the SSE scenario's peak.
export const SSE_STREAMS = Math.max(1, Math.round(num('SSE_STREAMS', 200)));
// Connections the connection scenario holds open at once.
export const CONNECTIONS = Math.max(1, Math.round(num('CONNECTIONS', 1000)));
// How long each held connection idles between requests (below the server's keep-alive).
export const HOLD_S = num('HOLD_S', 5);
// Open-model arrival rate, iterations per second (before VU_SCALE).
export const RATE = num('RATE', 100);
// VUs of the sustained scenario.
export const SUSTAINED_VUS = Math.max(1, Math.round(num('SUSTAINED_VUS', 20)));
// VUs of the saturate scenario (closed loop, no think time).
export const SATURATE_VUS = Math.max(1, Math.round(num('SATURATE_VUS', 64)));
// Vegeta JSON targets (one object per line) for the constant-rate fallback.
export const TARGETS = __ENV.TARGETS || '';
// Duration of the constant-rate (vegeta fallback) attack, seconds (not time-scaled).
export const ATTACK_S = num('ATTACK_S', 30);
// Optional path: handleSummary also writes k6's full summary data there as JSON.
export const SUMMARY_JSON = __ENV.SUMMARY_JSON || '';
// Capacity steps (`perfci sweep capacity`, scenarios/capacity.js): one offered rate.
// Arrival rate of the step, iterations per second (not VU_SCALE'd: the runner picks it).
export const CAPACITY_RATE = Math.max(1, Math.round(num('CAPACITY_RATE', 50)));
// Unmeasured warm-up at that rate, then the measured window, seconds.
export const CAPACITY_WARMUP_S = num('CAPACITY_WARMUP_S', 3);
export const CAPACITY_MEASURE_S = Math.max(1, num('CAPACITY_MEASURE_S', 10));
// weighted: draw from QUERY_LOG by weight (Zipf); sequential: each query once, in order.
export const CAPACITY_MIX = __ENV.CAPACITY_MIX || 'weighted';
if (CAPACITY_MIX !== 'weighted' && CAPACITY_MIX !== 'sequential') {
  throw new Error(`CAPACITY_MIX=${CAPACITY_MIX} is invalid: expected weighted or sequential`);
}
// The step's p99 limit (ms): twice it stops the step early.
export const CAPACITY_P99_MS = num('CAPACITY_P99_MS', 100);
// VUs up front and at most (beyond: dropped iterations).
export const CAPACITY_PREALLOCATED_VUS = Math.max(
  1,
  Math.round(num('CAPACITY_PREALLOCATED_VUS', 20)),
);
export const CAPACITY_MAX_VUS = Math.max(
  CAPACITY_PREALLOCATED_VUS,
  Math.round(num('CAPACITY_MAX_VUS', 100)),
);
// Duet (perfci gate): the services behind k6's slot a and slot b (the runner swaps them).
export const DUET_URL_A = (__ENV.DUET_URL_A || 'http://127.0.0.1:8000').replace(/\/+$/, '');
export const DUET_URL_B = (__ENV.DUET_URL_B || 'http://127.0.0.1:8001').replace(/\/+$/, '');
// Length of one duet window, seconds (not time-scaled).
export const DUET_S = num('DUET_S', 10);
// Makes the duet's unique queries unique across the windows of one gate run.
export const DUET_NONCE = __ENV.DUET_NONCE || '0';
// Share of duet queries made unique (no cache has them): embedding and search on every one.
export const UNIQUE_FRACTION = num('UNIQUE_FRACTION', 0.3);
// Share of duet iterations that also open one search stream on each side, and its k.
export const STREAM_FRACTION = num('STREAM_FRACTION', 0);
export const STREAM_K = Math.max(1, Math.round(num('STREAM_K', 200)));
// The duet's burst: BURST_VUS VUs, each sending BURST_ITERATIONS searches to both sides at
// once, starting BURST_AT_S into the window (0 VUs: no burst).
export const BURST_VUS = Math.max(0, Math.round(num('BURST_VUS', 0)));
export const BURST_ITERATIONS = Math.max(1, Math.round(num('BURST_ITERATIONS', 4)));
export const BURST_AT_S = num('BURST_AT_S', 10);
// > 0: the sides burst one after the other (slot a at BURST_AT_S, slot b BURST_GAP_S later),
// so neither burst competes with the other side's for the CPU.
export const BURST_GAP_S = Math.max(0, num('BURST_GAP_S', 0));
// The first of this window's burst searches in the run's sequence of them (each one a known
// text with a k it has never been asked with: see lib/duet.js).
export const BURST_SEQ = Math.max(0, Math.round(num('BURST_SEQ', 0)));
// A duet search answered this many ms after the other slot's answer to it counts as slow.
export const TAIL_MARGIN_MS = num('TAIL_MARGIN_MS', 25);

// The SLA, declared once in perf.toml [sla]. `perfci run` passes it as PERFCI_SLA_<KEY>
// (ci.settings.SlaConfig.k6_env(), from its --config); a script run by hand
// (`k6 run scenarios/load_test_comprehensive.js`) reads the repository's perf.toml itself.
// A variable that is set wins; a key neither gives stops the script at once, naming it.
const SLA_VARS = [
  'PERFCI_SLA_P95_MS',
  'PERFCI_SLA_P99_MS',
  'PERFCI_SLA_ERROR_RATE',
  'PERFCI_SLA_TTFE_P95_MS',
  'PERFCI_SLA_SPIKE_ERROR_RATE',
];

// The numbers of perf.toml's [sla] table: `key = number  # comment` lines (all it holds).
function slaTable(text) {
  const out = {};
  let inSla = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line.startsWith('[')) {
      inSla = line === '[sla]';
      continue;
    }
    const match = inSla ? /^([a-z0-9_]+)\s*=\s*([0-9.eE+-]+)$/.exec(line) : null;
    if (match) {
      out[`PERFCI_SLA_${match[1].toUpperCase()}`] = match[2];
    }
  }
  return out;
}

const missingEnv = SLA_VARS.filter((name) => __ENV[name] === undefined || __ENV[name] === '');
function repoSla() {
  try {
    return slaTable(open(import.meta.resolve('../../perf.toml')));
  } catch (_e) {
    return {}; // no perf.toml beside scenarios/: the variables must come from the runner
  }
}
const PERF_TOML = missingEnv.length > 0 ? repoSla() : {};
const missingSla = missingEnv.filter((name) => PERF_TOML[name] === undefined);
if (missingSla.length > 0) {
  throw new Error(
    `${missingSla.join(', ')} not set and not in perf.toml [sla]: the SLA comes from ` +
      'perf.toml; run the scenario through `perfci run`, or export every PERFCI_SLA_* ' +
      'variable that `python -c "from ci.settings import repo_sla; print(repo_sla().k6_env())"` prints',
  );
}

function sla(name) {
  const raw = __ENV[name] !== undefined && __ENV[name] !== '' ? __ENV[name] : PERF_TOML[name];
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name}=${raw} is invalid: expected a non-negative number`);
  }
  return value;
}
// Latency p95 and p99 limits (ms), as k6 threshold numbers (e.g. 'p(95)<' + SLA_P95_MS).
export const SLA_P95_MS = sla('PERFCI_SLA_P95_MS');
export const SLA_P99_MS = sla('PERFCI_SLA_P99_MS');
// Fraction of failed requests allowed.
export const SLA_ERROR_RATE = sla('PERFCI_SLA_ERROR_RATE');
// SSE: p95 time to first event (ms).
export const SLA_TTFE_P95_MS = sla('PERFCI_SLA_TTFE_P95_MS');
// Spike: a sudden surge may shed up to this fraction.
export const SLA_SPIKE_ERROR_RATE = sla('PERFCI_SLA_SPIKE_ERROR_RATE');
