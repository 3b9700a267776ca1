/** The engine's public surface: the server and the CLI import from here. */
export { R1Engine } from './engine';
export type { EngineInternals } from './engine';
export { ModelError, isModelError, describeError } from './errors';
/** The model's own chat template over user/assistant turns (answers only), ending where the template says the reply starts (`<think>\n` for the distills): `r1 serve` encodes a client's conversation with it. */
export { renderChat } from './prompt';
/** For clients of a server (src/remote): the same user turns as chat messages, and the same reasoning/answer split and code blocks. */
export { buildMessages, estimateTokens, type FittedMessages } from './prompt';
export { ReasoningSplitter } from './reasoning';
export { noGeneration } from './generate';
export { extractCodeBlocks } from './codeBlocks';
export type { ModelErrorCode } from './errors';
export * from './types';
