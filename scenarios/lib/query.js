// The query mix: the Zipf query log of `perfci seed`, sampled by cumulative weight.
import { SharedArray } from 'k6/data';
import { BASE_URL, QUERY_LOG } from './config.js';

// Used when no QUERY_LOG is given, so `k6 run` works standalone.
const BUILTIN = [
  { q: 'statute for copyright', k: 10, topic: null, weight: 0.3 },
  { q: 'problems with world war dynasty', k: 20, topic: null, weight: 0.2 },
  { q: 'how to train for a marathon', k: 10, topic: null, weight: 0.15 },
  { q: 'yoga for beginners', k: 10, topic: 'sports/yoga', weight: 0.1 },
  { q: 'olympic games history', k: 50, topic: null, weight: 0.1 },
  { q: 'catalysts in chemistry', k: 10, topic: null, weight: 0.08 },
  { q: 'tennis serve technique', k: 100, topic: null, weight: 0.07 },
];

// One copy shared by every VU (open() per VU would copy the log into each VU).
export const QUERIES = new SharedArray('queries', function () {
  const list = QUERY_LOG ? JSON.parse(open(QUERY_LOG)).queries : BUILTIN;
  if (!Array.isArray(list) || list.length === 0) {
    throw new Error(`QUERY_LOG=${QUERY_LOG} holds no queries`);
  }
  const sorted = list.slice().sort((a, b) => b.weight - a.weight);
  let cumulative = 0;
  return sorted.map((e) => {
    cumulative += Number(e.weight);
    return { q: String(e.q), k: Number(e.k), topic: e.topic || null, cum: cumulative };
  });
});

// Weighted draw: binary search of a uniform number in the cumulative weights.
export function pickQuery() {
  const total = QUERIES[QUERIES.length - 1].cum;
  const r = Math.random() * total;
  let lo = 0;
  let hi = QUERIES.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (QUERIES[mid].cum < r) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return QUERIES[lo];
}

// The `n` most popular queries (the warm-up touches these).
export function popular(n) {
  const out = [];
  for (let i = 0; i < Math.min(n, QUERIES.length); i++) {
    out.push(QUERIES[i]);
  }
  return out;
}

export function searchUrl(entry, k) {
  let url = `${BASE_URL}/v1/search?q=${encodeURIComponent(entry.q)}&k=${k || entry.k}`;
  if (entry.topic) {
    url += `&topic=${encodeURIComponent(entry.topic)}`;
  }
  return url;
}

export function streamUrl(entry, k) {
  return `${BASE_URL}/v1/search/stream?q=${encodeURIComponent(entry.q)}&k=${k}`;
}

export function searchBody(entry) {
  const body = { query: entry.q, k: entry.k };
  if (entry.topic) {
    body.filter = { topic: entry.topic };
  }
  return JSON.stringify(body);
}
