/**
 * `r1 serve`: the engine as an OpenAI-compatible HTTP server (POST /v1/chat/completions, streamed
 * and not; GET /v1/models; GET /health). The CLI wires it up; it imports the engine only through
 * the engine's public index.
 *
 *   http.ts      routing, the API key, the body limit, /health, the log line of each request
 *   validate.ts  the request body, field by field
 *   chat.ts      one completion: context check, stop sequences, the reply's shapes
 *   sse.ts       the event stream
 *   queue.ts     one generation at a time, a bounded line of waiting ones
 *   security.ts  loopback check of the bind address, constant-time key comparison
 *   backend.ts   what the server needs of a model (R1Engine's adapter)
 */
export { type ChatBackend, engineBackend } from './backend';
export type { CompletionSettings } from './chat';
export { ApiError, type ApiErrorBody } from './errors';
export { DEFAULT_MAX_BODY_BYTES, type Health, type RunningServer, type ServeOptions, startServer } from './http';
export { ServeConfigError, checkBindSafety, isLoopbackHost } from './security';
export { REASONING_FIELDS, type ReasoningField } from './validate';
