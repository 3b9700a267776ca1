/** The engine's public surface: the server and the CLI import from here. */
export { R1Engine } from './engine';
export type { EngineInternals } from './engine';
export { ModelError, isModelError, describeError } from './errors';
export type { ModelErrorCode } from './errors';
export * from './types';
