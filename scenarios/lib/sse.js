// Parsing a complete text/event-stream body (stock k6 cannot read a body while it streams).

// Split a body into events: [{event, data}] with `data` parsed as JSON when it is JSON.
export function parseEvents(body) {
  const events = [];
  if (!body) {
    return events;
  }
  const blocks = String(body).replace(/\r\n/g, '\n').split('\n\n');
  for (const block of blocks) {
    if (block.trim() === '') {
      continue;
    }
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        continue; // comment / heartbeat
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) {
        value = value.slice(1);
      }
      if (field === 'event') {
        name = value;
      } else if (field === 'data') {
        data.push(value);
      }
    }
    const text = data.join('\n');
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch (_e) {
      // keep the raw text
    }
    events.push({ event: name, data: parsed });
  }
  return events;
}

// Count what a search stream delivered: result rows, batches, the done frame, errors.
export function summarize(events) {
  const out = { events: events.length, batches: 0, results: 0, done: null, errors: 0 };
  for (const ev of events) {
    if (ev.event === 'results') {
      out.batches += 1;
      out.results += ev.data && ev.data.results ? ev.data.results.length : 0;
    } else if (ev.event === 'done') {
      out.done = ev.data;
    } else if (ev.event === 'error') {
      out.errors += 1;
    }
  }
  return out;
}

// A stream is complete when it ended with `done` and delivered what `done` announced.
export function complete(summary, k) {
  if (summary.done === null || summary.errors > 0) {
    return false;
  }
  return summary.results === summary.done.count && summary.results <= k;
}
