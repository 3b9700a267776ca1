/**
 * What the HTTP server needs of a model: the conversation as prompt token ids, and a streamed,
 * cancellable generation from them. `engineBackend` adapts R1Engine; tests may pass a stand-in
 * (a model that fails mid-answer, for instance).
 */
import { type ChatTurn, type GenerateOptions, type GenerationResult, type R1Engine, renderChat } from '../engine';

export interface ChatBackend {
  /** Positions the model can hold (config.json's max_position_embeddings). */
  readonly maxPositions: number;
  /** The conversation rendered with the model's chat template and encoded, ending in the generation prompt (`<think>\n`). */
  promptIds(turns: ChatTurn[]): number[];
  /** The engine's generation: never throws for cancellation or a runtime failure (status says). */
  generate(ids: number[], opts: GenerateOptions): Promise<GenerationResult>;
  dispose(): Promise<void>;
}

/** The engine as the server's backend; `defaults` apply to every request (the command line's choices). */
export function engineBackend(engine: R1Engine, defaults: Pick<GenerateOptions, 'promptLookup'> = {}): ChatBackend {
  return {
    maxPositions: engine.info.config.maxPositionEmbeddings,
    promptIds: (turns) => engine.tokenizer.encode(renderChat(engine.tokenizer, turns)),
    generate: (ids, opts) => engine.generateFromIds(ids, { ...defaults, ...opts }),
    dispose: () => engine.dispose(),
  };
}
