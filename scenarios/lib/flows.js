// Iterations the scenarios are built from: search, stream, write, hold.
import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, WRITE_FRACTION } from './config.js';
import { pickQuery, searchBody, searchUrl, streamUrl } from './query.js';
import { complete, parseEvents, summarize } from './sse.js';
import {
  sseComplete,
  sseDuration,
  sseEvents,
  sseTtfe,
  transportErrors,
  writes,
} from './metrics.js';

const JSON_HEADERS = { 'Content-Type': 'application/json' };

function noteTransport(res) {
  if (res.status === 0) {
    transportErrors.add(1);
  }
}

// One search (GET mostly, POST sometimes), then maybe a write; returns the response.
export function search(tags = {}) {
  const entry = pickQuery();
  const res =
    Math.random() < 0.9
      ? http.get(searchUrl(entry), { tags: Object.assign({ name: 'search' }, tags) })
      : http.post(`${BASE_URL}/v1/search`, searchBody(entry), {
          headers: JSON_HEADERS,
          tags: Object.assign({ name: 'search' }, tags),
        });
  noteTransport(res);
  check(res, { 'search 200': (r) => r.status === 200 });
  maybeWrite(entry);
  return res;
}

// With probability WRITE_FRACTION: ingest a document on the query's topic, delete it again.
export function maybeWrite(entry) {
  if (Math.random() >= WRITE_FRACTION) {
    return;
  }
  const doc = {
    title: `load test note on ${entry.q}`,
    body: `${entry.q} written by the load test and deleted right after`,
    topic: entry.topic || 'misc/load',
  };
  const res = http.post(`${BASE_URL}/v1/documents`, JSON.stringify({ documents: [doc] }), {
    headers: JSON_HEADERS,
    tags: { name: 'ingest' },
  });
  noteTransport(res);
  const ok = check(res, { 'ingest 201': (r) => r.status === 201 });
  if (!ok) {
    return;
  }
  writes.add(1);
  for (const id of res.json('ids') || []) {
    const del = http.del(`${BASE_URL}/v1/documents/${id}`, null, { tags: { name: 'delete' } });
    noteTransport(del);
    check(del, { 'delete 204': (r) => r.status === 204 });
  }
}

function recordStream(res, k) {
  noteTransport(res);
  const ok200 = check(res, { 'stream 200': (r) => r.status === 200 });
  if (!ok200) {
    sseComplete.add(false);
    return;
  }
  sseTtfe.add(res.timings.waiting);
  sseDuration.add(res.timings.duration);
  const summary = summarize(parseEvents(res.body));
  sseEvents.add(summary.events);
  const done = complete(summary, k);
  sseComplete.add(done);
  check(summary, { 'stream complete': () => done });
}

// One SSE stream with a large k, read to the end and counted.
export function stream(k) {
  const entry = pickQuery();
  const res = http.get(streamUrl(entry, k), { tags: { name: 'stream' } });
  recordStream(res, k);
  maybeWrite(entry);
}

// `n` SSE streams at once from this VU (few VUs hold many streams).
export async function streams(n, k) {
  const pending = [];
  for (let i = 0; i < n; i++) {
    const entry = pickQuery();
    pending.push(http.asyncRequest('GET', streamUrl(entry, k), null, { tags: { name: 'stream' } }));
  }
  for (const res of await Promise.all(pending)) {
    recordStream(res, k);
  }
}

// A request on this VU's keep-alive connection; the caller then idles to hold it open.
// Writes ride on the same connection now and then, so invalidation runs under load too.
export function touch() {
  const res = http.get(`${BASE_URL}/healthz`, { tags: { name: 'hold' } });
  noteTransport(res);
  check(res, { 'hold 200': (r) => r.status === 200 });
  maybeWrite(pickQuery());
}
