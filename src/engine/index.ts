/** The engine's public surface: the server and the CLI import from here. */
export { R1Engine } from './engine';
export type { EngineInternals } from './engine';
export { ModelError, isModelError, describeError } from './errors';
/** The model's own chat template over user/assistant turns (answers only), ending in `<think>\n`: `r1 serve` encodes a client's conversation with it. */
export { renderChat } from './prompt';
export type { ModelErrorCode } from './errors';
export * from './types';
