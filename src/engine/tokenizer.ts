/**
 * The model's tokenizer: tokenizer.json (byte-level BPE) and tokenizer_config.json (special tokens,
 * chat template) of a model folder, run by @huggingface/tokenizers. Adds incremental decoding for
 * streaming that never splits a UTF-8 character.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { THINK_CLOSE, THINK_OPEN } from '../text/thinking';
import { ModelError } from './errors';

/** Feeds generated ids one at a time and returns text as soon as it is complete. */
export interface StreamDecoder {
  /** Feed one generated id; returns the new complete text (never half a UTF-8 character). */
  push(id: number): string;
  /** Whatever is still pending at the end. */
  flush(): string;
}

export interface StreamDecoderOptions {
  /**
   * Drop special tokens (eos, bos, padding) from the stream. Default true. `<think>` and
   * `</think>` always come through as text, even in a tokenizer that marks them special: the
   * reasoning splitter needs them.
   */
  skipSpecialTokens?: boolean;
}

/** A token string in tokenizer_config.json: either "text" or {"content": "text", ...}. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

async function readJsonFile(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ModelError(
        'missing-file',
        `${what} is missing.`,
        'The model folder must hold the tokenizer files of the model (tokenizer.json and tokenizer_config.json); download the model again or point r1.model.path at a complete folder.',
        file,
        { cause: e },
      );
    }
    throw new ModelError(
      'unreadable-file',
      `${what} cannot be read (${code ?? describe(e)}).`,
      'Check that the file is a regular, readable file.',
      file,
      { cause: e },
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ModelError(
      'invalid-json',
      `${what} is not valid JSON (${describe(e)}).`,
      'The file is probably truncated or corrupt: download the model again.',
      file,
      { cause: e },
    );
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalidField(file: string, problem: string, cause?: unknown): ModelError {
  return new ModelError(
    'invalid-field',
    problem,
    'The tokenizer files do not look like a Hugging Face tokenizer of an R1-Distill model: download the model again.',
    file,
    cause === undefined ? undefined : { cause },
  );
}

/** Picks the default template out of the forms tokenizer_config.json uses. */
function chatTemplateOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.filter(
      (t): t is { name: string; template: string } =>
        isObject(t) && typeof t.name === 'string' && typeof t.template === 'string',
    );
    return (named.find((t) => t.name === 'default') ?? named[0])?.template;
  }
  if (isObject(value)) {
    const d = value.default;
    if (typeof d === 'string') return d;
    const first = Object.values(value).find((v) => typeof v === 'string');
    return first as string | undefined;
  }
  return undefined;
}

/** How many ids may wait for a character to complete: a UTF-8 character has at most 4 bytes. */
const MAX_PENDING_IDS = 6;

export class R1Tokenizer {
  readonly vocabSize: number;
  readonly eosTokenIds: number[];
  readonly bosTokenId: number | undefined;
  /** `<think>` and `</think>` as this tokenizer has them (ids of the folder's tokenizer, or undefined). */
  readonly thinkStartId: number | undefined;
  readonly thinkEndId: number | undefined;
  readonly chatTemplate: string | undefined;
  /** Token strings, as the chat template expects them. */
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly addBosToken: boolean;
  readonly modelMaxLength: number | undefined;
  /** The tokenizer_config.json it came from (for error messages), when read from a folder. */
  readonly configFile: string | undefined;

  private constructor(
    private readonly tok: Tokenizer,
    config: Record<string, unknown>,
    files: { tokenizerFile: string; configFile: string },
    chatTemplateOverride: string | undefined,
    /** Ids of tokenizer.json's added tokens marked special. */
    private readonly specialIds: ReadonlySet<number>,
  ) {
    this.configFile = files.configFile;
    let maxId = -1;
    for (const id of tok.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;

    this.eosToken = tokenContent(config.eos_token);
    if (this.eosToken === undefined) {
      throw invalidField(files.configFile, 'tokenizer_config.json has no eos_token.');
    }
    const eosId = tok.token_to_id(this.eosToken);
    if (eosId === undefined) {
      throw invalidField(
        files.configFile,
        `The eos_token "${this.eosToken}" of tokenizer_config.json is not a token of ${files.tokenizerFile}.`,
      );
    }
    this.eosTokenIds = [eosId];
    this.bosToken = tokenContent(config.bos_token);
    this.bosTokenId = this.bosToken === undefined ? undefined : tok.token_to_id(this.bosToken);
    this.thinkStartId = tok.token_to_id(THINK_OPEN);
    this.thinkEndId = tok.token_to_id(THINK_CLOSE);
    this.chatTemplate = chatTemplateOverride ?? chatTemplateOf(config.chat_template);
    this.addBosToken = config.add_bos_token === true;
    this.modelMaxLength = typeof config.model_max_length === 'number' ? config.model_max_length : undefined;
  }

  /** Reads tokenizer.json and tokenizer_config.json of a model folder; throws ModelError naming the file when missing/invalid. */
  static async fromFolder(dir: string): Promise<R1Tokenizer> {
    const tokenizerFile = join(dir, 'tokenizer.json');
    const configFile = join(dir, 'tokenizer_config.json');
    const tokenizerJson = await readJsonFile(tokenizerFile, 'tokenizer.json');
    const config = await readJsonFile(configFile, 'tokenizer_config.json');
    // Newer exports keep the template in its own file.
    let template: string | undefined;
    if (!isObject(config) || config.chat_template === undefined) {
      template = await readFile(join(dir, 'chat_template.jinja'), 'utf8').catch(() => undefined);
    }
    return R1Tokenizer.fromJson(tokenizerJson, config, { tokenizerFile, configFile }, template);
  }

  /** Builds a tokenizer from the parsed JSON of the two files (file names only label errors). */
  static fromJson(
    tokenizerJson: unknown,
    config: unknown,
    files: { tokenizerFile: string; configFile: string } = {
      tokenizerFile: 'tokenizer.json',
      configFile: 'tokenizer_config.json',
    },
    chatTemplate?: string,
  ): R1Tokenizer {
    const { tokenizerFile, configFile } = files;
    if (!isObject(tokenizerJson)) throw invalidField(tokenizerFile, 'tokenizer.json does not hold a JSON object.');
    const model = tokenizerJson.model;
    if (!isObject(model)) throw invalidField(tokenizerFile, 'tokenizer.json has no "model" object.');
    if (!isObject(model.vocab) && !Array.isArray(model.vocab)) {
      throw invalidField(tokenizerFile, 'tokenizer.json has no "model.vocab".');
    }
    if (model.type === 'BPE' && !Array.isArray(model.merges)) {
      throw invalidField(tokenizerFile, 'tokenizer.json has a BPE model without "model.merges".');
    }
    if (tokenizerJson.added_tokens !== undefined && !Array.isArray(tokenizerJson.added_tokens)) {
      throw invalidField(tokenizerFile, 'tokenizer.json has an "added_tokens" field that is not a list.');
    }
    if (!isObject(config)) throw invalidField(configFile, 'tokenizer_config.json does not hold a JSON object.');
    let tok: Tokenizer;
    try {
      tok = new Tokenizer({ added_tokens: [], ...tokenizerJson }, config);
    } catch (e) {
      throw invalidField(tokenizerFile, `tokenizer.json cannot be loaded (${describe(e)}).`, e);
    }
    const specialIds = new Set<number>();
    for (const t of (tokenizerJson.added_tokens as unknown[] | undefined) ?? []) {
      if (isObject(t) && t.special === true && typeof t.id === 'number') specialIds.add(t.id);
    }
    return new R1Tokenizer(tok, config, { tokenizerFile, configFile }, chatTemplate, specialIds);
  }

  /** Adds no special tokens; added tokens written in the text (e.g. "<think>") map to their ids. */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  /** Number of tokens of a text (as encode). */
  countTokens(text: string): number {
    return this.encode(text).length;
  }

  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string {
    if (ids.length === 0) return '';
    return this.tok.decode(ids as number[], {
      skip_special_tokens: opts?.skipSpecialTokens ?? false,
      // Code must round-trip: never rewrite " ." or " 's".
      clean_up_tokenization_spaces: false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /**
   * Incremental detokenization (the prefix/read offset scheme of text-generation-inference): each
   * push decodes only the few ids since the last complete character, so the cost per token stays
   * constant, and text is held back while it ends in an incomplete UTF-8 sequence.
   */
  createStreamDecoder(opts?: StreamDecoderOptions): StreamDecoder {
    const skipSpecialTokens = opts?.skipSpecialTokens ?? true;
    const keep = (id: number) => !this.specialIds.has(id) || id === this.thinkStartId || id === this.thinkEndId;
    const decode = skipSpecialTokens ? (ids: number[]) => this.decode(ids.filter(keep)) : (ids: number[]) => this.decode(ids);
    let ids: number[] = [];
    let readOffset = 0;
    /** Emits the text after the prefix and moves the window past it. */
    const advance = (prefixText: string, fullText: string): string => {
      const text = fullText.length > prefixText.length ? fullText.slice(prefixText.length) : '';
      // The ids of the piece just emitted become the prefix of the next decode.
      ids = ids.slice(readOffset);
      readOffset = ids.length;
      return text;
    };
    return {
      push(id: number): string {
        ids.push(id);
        const prefixText = decode(ids.slice(0, readOffset));
        const fullText = decode(ids);
        const complete = fullText.length > prefixText.length && !fullText.endsWith('\uFFFD');
        // A character is at most 4 bytes: when more ids than that are pending, the bytes are
        // invalid UTF-8 (or a real U+FFFD): let them out rather than hold the stream forever.
        if (complete || ids.length - readOffset > MAX_PENDING_IDS) return advance(prefixText, fullText);
        return '';
      },
      flush(): string {
        if (ids.length === readOffset) return '';
        return advance(decode(ids.slice(0, readOffset)), decode(ids));
      },
    };
  }
}
