/**
 * Typed errors of the engine. Each names the file involved, says what is wrong and what to do, so
 * that the server, the CLI and the UI can show it as it is. None of them is fatal to the process.
 */

export type ModelErrorCode =
  | 'missing-file' // a required file is absent
  | 'unreadable-file' // exists but cannot be read or parsed (truncated, corrupt)
  | 'invalid-json' // JSON that does not parse
  | 'invalid-field' // JSON that parses but has a missing/ill-typed field
  | 'signature-mismatch' // the ONNX graph does not match config.json or the expected layout
  | 'no-variant' // no onnx/model_<variant>.onnx usable
  | 'provider-unavailable' // the requested execution provider cannot run here
  | 'prompt-too-long' // even after dropping context, the prompt does not fit
  | 'runtime' // ONNX Runtime failed while running
  | 'busy' // a generation is already running on this engine
  | 'invalid-request'; // generation options or prompt ids that cannot be used

export class ModelError extends Error {
  override readonly name = 'ModelError';
  constructor(
    readonly code: ModelErrorCode,
    /** What is wrong, in one sentence. */
    readonly problem: string,
    /** What the user can do about it. */
    readonly hint: string,
    /** The file involved, when there is one. */
    readonly file?: string,
    options?: { cause?: unknown },
  ) {
    super(`${file ? `${file}: ` : ''}${problem}${hint ? ` ${hint}` : ''}`, options);
  }
}

export function isModelError(e: unknown): e is ModelError {
  return e instanceof ModelError;
}

/** A one-line message for any thrown value. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
