// The duet's iterations: the same query sent to both services (slots a and b) at once.
// Each slot has its own search_duet_<slot>_* metrics; which revision a slot serves is the
// runner's business (it swaps them between windows), so the script never knows.
import http from 'k6/http';
import exec from 'k6/execution';
import { Counter, Rate, Trend } from 'k6/metrics';
import {
  BURST_SEQ,
  DUET_NONCE,
  DUET_URL_A,
  DUET_URL_B,
  STREAM_FRACTION,
  STREAM_K,
  TAIL_MARGIN_MS,
  UNIQUE_FRACTION,
  WRITE_FRACTION,
} from './config.js';
import { QUERIES, pickQuery, popular } from './query.js';

export const SLOTS = ['a', 'b'];
const URLS = { a: DUET_URL_A, b: DUET_URL_B };
const JSON_HEADERS = { 'Content-Type': 'application/json' };

// Per slot: search latency (ms), search requests, failed requests of any kind (searches,
// streams, burst searches and writes; non-2xx or no response), every request sent (the
// CPU-per-request divisor), slow searches (answered TAIL_MARGIN_MS or more after the other
// slot answered the same query, sent at the same moment: a load on the whole machine delays
// both, a stall of one side's code only its own), stream time to first event (headers leave
// with the first event, so timings.waiting) and to the last event (timings.duration), and
// the latency of the burst's searches.
export const latency = {};
export const searches = {};
export const failed = {};
export const sent = {};
export const slow = {};
export const ttfe = {};
export const streamLast = {};
export const burst = {};
for (const slot of SLOTS) {
  latency[slot] = new Trend(`search_duet_${slot}_latency`, true);
  searches[slot] = new Counter(`search_duet_${slot}_searches`);
  failed[slot] = new Rate(`search_duet_${slot}_failed`);
  sent[slot] = new Counter(`search_duet_${slot}_requests`);
  slow[slot] = new Counter(`search_duet_${slot}_slow`);
  ttfe[slot] = new Trend(`search_duet_${slot}_ttfe`, true);
  streamLast[slot] = new Trend(`search_duet_${slot}_stream`, true);
  burst[slot] = new Trend(`search_duet_${slot}_burst`, true);
}

// A query of the Zipf log, or (uniqueFraction of the time, default UNIQUE_FRACTION) one no
// cache has seen: the nonce makes it unique across the windows of one gate run, so every
// side embeds it.
function nextQuery(uniqueFraction = UNIQUE_FRACTION) {
  const entry = pickQuery();
  if (Math.random() >= uniqueFraction) {
    return entry;
  }
  const tag = `${DUET_NONCE}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
  return { q: `${entry.q} ${tag}`, k: entry.k, topic: entry.topic };
}

// The burst's searches: the BURST_TEXTS most popular texts of the log (each side has embedded
// them in the warm-up windows, so a burst search never waits for the model), each with a
// topic filter of the log's and a k the log never asks (its k are 10, 20, 50 and 100): no
// cache holds the result, and a filtered search is never batched with others (each one
// holds a connection of the pool for its own statement), so the pool, its locks and queues
// decide the burst's latency. Search number n of the run (BURST_SEQ + the iteration in its
// scenario; each side's burst is its own scenario, so both sides get the same sequence) gets
// text n mod BURST_TEXTS, then the next topic, then the next k: with T topics in the log
// (none: no filter) 60 x T x 87 searches, unique over a run of up to 34 windows of 150.
const BURST_TEXTS = 60;
const BURST_KS = [];
for (let k = 11; k < 100; k++) {
  if (k !== 20 && k !== 50) {
    BURST_KS.push(k);
  }
}
const burstTexts = [];
for (const entry of popular(BURST_TEXTS * 4)) {
  if (burstTexts.length < BURST_TEXTS && !burstTexts.includes(entry.q)) {
    burstTexts.push(entry.q);
  }
}
const burstTopics = [...new Set(QUERIES.map((e) => e.topic).filter((t) => t))].sort();
if (burstTopics.length === 0) {
  burstTopics.push(null);
}

function burstQuery() {
  const n = BURST_SEQ + exec.scenario.iterationInTest;
  const round = Math.floor(n / burstTexts.length);
  return {
    q: burstTexts[n % burstTexts.length],
    topic: burstTopics[round % burstTopics.length],
    k: BURST_KS[Math.floor(round / burstTopics.length) % BURST_KS.length],
  };
}

function searchRequest(slot, entry, usePost) {
  const params = { tags: { name: 'search', slot } };
  if (usePost) {
    const body = { query: entry.q, k: entry.k };
    if (entry.topic) {
      body.filter = { topic: entry.topic };
    }
    return ['POST', `${URLS[slot]}/v1/search`, JSON.stringify(body), Object.assign({ headers: JSON_HEADERS }, params)];
  }
  let url = `${URLS[slot]}/v1/search?q=${encodeURIComponent(entry.q)}&k=${entry.k}`;
  if (entry.topic) {
    url += `&topic=${encodeURIComponent(entry.topic)}`;
  }
  return ['GET', url, null, params];
}

function record(slot, res, okStatus) {
  sent[slot].add(1);
  failed[slot].add(res.status !== okStatus);
}

// Both slots, in `order`, in parallel (http.batch): one search each, then maybe one write.
export function duet(order) {
  const entry = nextQuery();
  const usePost = Math.random() >= 0.9; // 10 % POST, as lib/flows.js
  const responses = http.batch(order.map((slot) => searchRequest(slot, entry, usePost)));
  const ok = responses.map((res) => res.status === 200);
  order.forEach((slot, i) => {
    const res = responses[i];
    record(slot, res, 200);
    searches[slot].add(1);
    if (ok[i]) {
      latency[slot].add(res.timings.duration);
      // every answer counts (0 too), so the runner sees the counter even in a quiet window;
      // slow only beside the other slot's answer (a failed one is the error rate's)
      const other = responses[1 - i];
      const behind = ok[1 - i] ? res.timings.duration - other.timings.duration : 0;
      slow[slot].add(behind >= TAIL_MARGIN_MS ? 1 : 0);
    }
  });
  if (Math.random() < STREAM_FRACTION) {
    streamBoth(order, entry);
  }
  if (Math.random() < WRITE_FRACTION) {
    writeBoth(order, entry);
  }
}

// One search stream (k = STREAM_K) on each slot at once, read to its last event.
function streamBoth(order, entry) {
  let query = `q=${encodeURIComponent(entry.q)}&k=${STREAM_K}`;
  if (entry.topic) {
    query += `&topic=${encodeURIComponent(entry.topic)}`;
  }
  const responses = http.batch(
    order.map((slot) => ['GET', `${URLS[slot]}/v1/search/stream?${query}`, null, { tags: { name: 'stream', slot } }]),
  );
  order.forEach((slot, i) => {
    const res = responses[i];
    record(slot, res, 200);
    if (res.status === 200) {
      ttfe[slot].add(res.timings.waiting);
      streamLast[slot].add(res.timings.duration);
    }
  });
}

// One search to each slot at once, from one of the burst's VUs (many run together, so each
// side holds as many requests in flight as there are burst VUs).
export function burstPair(order) {
  const entry = nextQuery();
  const responses = http.batch(order.map((slot) => searchRequest(slot, entry, false)));
  order.forEach((slot, i) => {
    const res = responses[i];
    record(slot, res, 200);
    if (res.status === 200) {
      burst[slot].add(res.timings.duration);
    }
  });
}

// One search to one slot, from one of a one-sided burst's VUs (BURST_GAP_S > 0): one whose
// result no cache holds (burstQuery), so every search of the burst reaches the database
// (a burst of cached answers never touches its pool).
export function burstOne(slot) {
  const res = http.request(...searchRequest(slot, burstQuery(), false));
  record(slot, res, 200);
  if (res.status === 200) {
    burst[slot].add(res.timings.duration);
  }
}

// Ingest one document into each slot, then delete it again (cache invalidation traffic).
function writeBoth(order, entry) {
  const doc = {
    title: `load test note on ${entry.q}`,
    body: `${entry.q} written by the load test and deleted right after`,
    topic: entry.topic || 'misc/load',
  };
  const payload = JSON.stringify({ documents: [doc] });
  const ingests = http.batch(
    order.map((slot) => [
      'POST',
      `${URLS[slot]}/v1/documents`,
      payload,
      { headers: JSON_HEADERS, tags: { name: 'ingest', slot } },
    ]),
  );
  const deletes = [];
  const deleteSlots = [];
  order.forEach((slot, i) => {
    const res = ingests[i];
    record(slot, res, 201);
    if (res.status !== 201) {
      return;
    }
    for (const id of res.json('ids') || []) {
      deletes.push(['DELETE', `${URLS[slot]}/v1/documents/${id}`, null, { tags: { name: 'delete', slot } }]);
      deleteSlots.push(slot);
    }
  });
  if (deletes.length > 0) {
    http.batch(deletes).forEach((res, i) => record(deleteSlots[i], res, 204));
  }
}

