/**
 * R1 Coder as a client of a server: any OpenAI-compatible one (vLLM, SGLang, llama.cpp's
 * llama-server, LM Studio, r1 serve) or Ollama. No editor code: the language server and the CLI
 * both use it. It takes the engine only through its public index (the prompt's user turn, the
 * reasoning splitter, code blocks, the result types).
 *
 *   backend.ts  RemoteBackend: generate() with the engine's contract
 *   probe.ts    the model listing: API, server kind, model
 *   kinds.ts    what each kind of server takes (the thinking budget's field, top_k)
 *   chunks.ts   every reasoning wire shape, read into one delta
 *   split.ts    the reasoning/answer split of those deltas, on the engine's ReasoningSplitter
 *   stream.ts   SSE and NDJSON bodies, with an idle limit
 *   http.ts     one request, and its failures as errors that say what to do
 *   url.ts      the server's address (with or without /v1)
 *   errors.ts   RemoteError and its codes
 */
export { RemoteBackend, type RemoteConfig } from './backend';
export { RemoteError, isRemoteError, type RemoteErrorCode } from './errors';
export { KIND_LABELS, thinkingBudgetField } from './kinds';
export { describeTarget, type RemoteApi, type RemoteTarget } from './probe';
export { WireSplitter } from './split';
export { isLoopbackHostname, parseServerUrl, type ServerUrl } from './url';
