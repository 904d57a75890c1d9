// Custom metrics shared by every scenario; one prefix: `search_`.
import { Counter, Rate, Trend } from 'k6/metrics';

// SSE time to first event (headers are sent with the first event), ms.
export const sseTtfe = new Trend('search_sse_ttfe', true);
// Whole SSE stream, request start to the last byte, ms.
export const sseDuration = new Trend('search_sse_duration', true);
// Events (results + done) received per stream.
export const sseEvents = new Trend('search_sse_events');
// Share of streams that ended with `done` and delivered the announced count.
export const sseComplete = new Rate('search_sse_complete');
// Documents ingested and deleted again (cache invalidation traffic).
export const writes = new Counter('search_writes');
// Requests that got no HTTP response at all (refused, reset, timed out).
export const transportErrors = new Counter('search_transport_errors');
// Search latency tagged by spike phase (http_req_duration carries the same tag).
export const phaseLatency = new Trend('search_phase_latency', true);
