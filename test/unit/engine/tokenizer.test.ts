import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ModelError } from '../../../src/engine/errors';
import { R1Tokenizer } from '../../../src/engine/tokenizer';
import {
  BOS_TOKEN,
  EOS_TOKEN,
  R1_ADDED_TOKENS,
  R1_CHAT_TEMPLATE,
  buildTokenizerFixture,
  renderTokenizerFixture,
} from '../../fixtures/tokenizer';

const FIXTURE = resolve(__dirname, '../../../.cache/fixtures/tokenizer');

const TS_SAMPLE = `export function greet(name: string): string {
  // Grüße, 世界 — "quotes" and 'apostrophes' don't change
  const parts = [\`Hello, \${name}!\`, '🎉'];
  return parts.join(' ') + " .";  // a space before a dot stays
}
\tindented with a tab\r\nCRLF line
`;
const PY_SAMPLE = `def mean(xs: list[float]) -> float:
    """Arithmetic mean — μ = Σx / n."""
    if not xs:
        raise ValueError("empty list: can't average")
    return sum(xs) / len(xs)  # naïve ✓


print(f"{mean([1, 2, 3]):.2f}")
`;
const RUST_SAMPLE = `fn main() {
    let s = String::from("héllo, мир, 你好, 🦀");
    for (i, c) in s.char_indices() {
        println!("{i}: {c:?}");
    }
    let v: Vec<u8> = vec![0xF0, 0x9F, 0xA6, 0x80]; // the crab's bytes
}
`;
const UNICODE_SAMPLES = [
  '你好，世界！这是一个测试。',
  '日本語のテキストと絵文字 🍣🍜',
  'family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 skin 👍🏽 keycap 1️⃣',
  'combining: e\u0301 a\u0308 — math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚',
  '한국어 텍스트와 ελληνικά και العربية',
];

let tok: R1Tokenizer;

before(async () => {
  await buildTokenizerFixture(FIXTURE);
  tok = await R1Tokenizer.fromFolder(FIXTURE);
});

describe('tokenizer fixture', () => {
  it('has R1-Distill-Qwen added tokens and config', async () => {
    const json = JSON.parse(await readFile(join(FIXTURE, 'tokenizer.json'), 'utf8'));
    const config = JSON.parse(await readFile(join(FIXTURE, 'tokenizer_config.json'), 'utf8'));
    assert.equal(Object.keys(json.model.vocab).length, 151643);
    assert.equal(json.model.merges.length, 151387);
    const added = json.added_tokens as Array<{ id: number; content: string; special: boolean }>;
    assert.equal(added.length, 22);
    assert.deepEqual(
      added.map((t) => [t.id, t.content, t.special]),
      R1_ADDED_TOKENS.map((t) => [...t]),
    );
    // The bars are U+FF5C and the ▁ is U+2581.
    assert.equal(added[0]!.content, '<\uFF5Cend\u2581of\u2581sentence\uFF5C>');
    assert.equal(added[1]!.content, '<\uFF5CUser\uFF5C>');
    assert.equal(added[3]!.content, '<\uFF5Cbegin\u2581of\u2581sentence\uFF5C>');
    assert.equal(added[4]!.content, '<|EOT|>');
    assert.equal(config.add_bos_token, true);
    assert.equal(config.model_max_length, 16384);
    assert.equal(config.bos_token, BOS_TOKEN);
    assert.equal(config.eos_token, EOS_TOKEN);
    assert.equal(config.pad_token, EOS_TOKEN);
    assert.equal(config.tokenizer_class, 'LlamaTokenizerFast');
    assert.equal(config.chat_template, R1_CHAT_TEMPLATE);
    for (const t of added) {
      assert.equal(config.added_tokens_decoder[String(t.id)].content, t.content);
      assert.equal(config.added_tokens_decoder[String(t.id)].special, t.special);
    }
  });

  it('is deterministic and repairs a damaged folder', async () => {
    const a = await renderTokenizerFixture();
    const b = await renderTokenizerFixture();
    assert.equal(a.tokenizerJson, b.tokenizerJson);
    assert.equal(a.tokenizerConfigJson, b.tokenizerConfigJson);
    assert.equal(a.tokenizerConfigJson, await readFile(join(FIXTURE, 'tokenizer_config.json'), 'utf8'));

    const dir = await mkdtemp(join(tmpdir(), 'r1-tokfix-'));
    try {
      await buildTokenizerFixture(dir);
      const hash = async () => createHash('sha256').update(await readFile(join(dir, 'tokenizer_config.json'))).digest('hex');
      const good = await hash();
      await writeFile(join(dir, 'tokenizer_config.json'), '{"truncated": ');
      await buildTokenizerFixture(dir);
      assert.equal(await hash(), good);
      const cached = createHash('sha256').update(await readFile(join(FIXTURE, 'tokenizer.json'))).digest('hex');
      const fresh = createHash('sha256').update(await readFile(join(dir, 'tokenizer.json'))).digest('hex');
      assert.equal(fresh, cached);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('R1Tokenizer', () => {
  it('reads the ids of the special tokens', () => {
    assert.equal(tok.vocabSize, 151665);
    assert.deepEqual(tok.eosTokenIds, [151643]);
    assert.equal(tok.bosTokenId, 151646);
    assert.equal(tok.thinkStartId, 151648);
    assert.equal(tok.thinkEndId, 151649);
    assert.equal(tok.bosToken, BOS_TOKEN);
    assert.equal(tok.eosToken, EOS_TOKEN);
    assert.equal(tok.addBosToken, true);
    assert.equal(tok.modelMaxLength, 16384);
    assert.ok(tok.chatTemplate?.includes('ns.is_first'));
  });

  it('round-trips code in several languages', () => {
    for (const sample of [TS_SAMPLE, PY_SAMPLE, RUST_SAMPLE, ...UNICODE_SAMPLES]) {
      const ids = tok.encode(sample);
      assert.ok(ids.length > 0);
      assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 151643), 'plain text uses BPE ids only');
      // The Qwen normalizer is NFC: text round-trips as its NFC form (the same text for all but
      // the decomposed "e\u0301").
      assert.equal(tok.decode(ids), sample.normalize('NFC'));
    }
    assert.equal(tok.decode(tok.encode('e\u0301')), '\u00e9');
  });

  it('adds no special tokens but maps added tokens written in the text', () => {
    const ids = tok.encode('hi');
    assert.notEqual(ids[0], tok.bosTokenId);
    assert.deepEqual(tok.encode('<think>'), [151648]);
    assert.deepEqual(tok.encode('</think>'), [151649]);
    const conv = tok.encode(`${BOS_TOKEN}<\uFF5CUser\uFF5C>Hi<\uFF5CAssistant\uFF5C><think>\n`);
    assert.equal(conv[0], 151646);
    assert.equal(conv[1], 151644);
    assert.ok(conv.includes(151645));
    assert.equal(conv.at(-2), 151648);
    assert.equal(tok.decode(conv), `${BOS_TOKEN}<\uFF5CUser\uFF5C>Hi<\uFF5CAssistant\uFF5C><think>\n`);
    assert.deepEqual(tok.encode(''), []);
    assert.equal(tok.decode([]), '');
  });

  it('skips special tokens on request, never the think tags', () => {
    const ids = [151646, ...tok.encode('<think>a</think>b'), 151643];
    assert.equal(tok.decode(ids), `${BOS_TOKEN}<think>a</think>b${EOS_TOKEN}`);
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), '<think>a</think>b');
  });
});

/** Streams ids one at a time and checks every piece is whole text. */
function stream(ids: number[], opts?: { skipSpecialTokens?: boolean }): { pieces: string[]; text: string } {
  const d = tok.createStreamDecoder(opts);
  const pieces = ids.map((id) => d.push(id));
  pieces.push(d.flush());
  return { pieces, text: pieces.join('') };
}

describe('StreamDecoder', () => {
  it('streams emoji and CJK split across tokens without broken characters', () => {
    let heldBack = 0;
    for (const sample of [...UNICODE_SAMPLES, RUST_SAMPLE, TS_SAMPLE]) {
      const ids = tok.encode(sample);
      const { pieces, text } = stream(ids);
      assert.equal(text, tok.decode(ids));
      assert.equal(text, sample.normalize('NFC'));
      for (const p of pieces) assert.ok(!p.includes('\uFFFD'), `piece ${JSON.stringify(p)} has a broken character`);
      // The samples really have characters whose bytes span tokens: some ids alone decode to U+FFFD.
      heldBack += ids.filter((id) => tok.decode([id]).includes('\uFFFD')).length;
    }
    assert.ok(heldBack > 5, 'the samples split multibyte characters across tokens');
  });

  it('emits each character as soon as it is complete', () => {
    const sample = '🦀x';
    const ids = tok.encode(sample);
    const { pieces } = stream(ids);
    const crabEnd = pieces.findIndex((p) => p.includes('🦀'));
    assert.ok(crabEnd >= 0);
    assert.ok(pieces.slice(0, crabEnd).every((p) => p === ''));
    assert.equal(pieces.join(''), sample);
  });

  it('decodes the think tags and drops eos', () => {
    const ids = [...tok.encode('plan</think>\n\nanswer'), 151643];
    assert.equal(stream(ids).text, 'plan</think>\n\nanswer');
    assert.equal(stream(ids, { skipSpecialTokens: false }).text, `plan</think>\n\nanswer${EOS_TOKEN}`);
  });

  it('lets invalid UTF-8 through instead of stalling', () => {
    // A lone continuation byte (0x80) as a byte-level token, then plain text.
    const byte80 = tok.tokenToId('\u0122'); // GPT-2 byte map: 0x80 -> U+0122
    assert.ok(byte80 !== undefined);
    const ids = [byte80, ...tok.encode(' then some more text that keeps going on')];
    const { pieces, text } = stream(ids);
    assert.equal(text, tok.decode(ids));
    assert.ok(pieces.slice(0, -1).some((p) => p.length > 0), 'text came before the end of the stream');
  });

  it('decodes a bounded window per token', () => {
    const text = `${RUST_SAMPLE}${UNICODE_SAMPLES.join('\n')}\n`.repeat(20);
    const ids = tok.encode(text);
    let decodedIds = 0;
    const counting = Object.create(tok) as R1Tokenizer;
    counting.decode = (x, o) => {
      decodedIds += x.length;
      return tok.decode(x, o);
    };
    const d = R1Tokenizer.prototype.createStreamDecoder.call(counting);
    let out = '';
    for (const id of ids) out += d.push(id);
    out += d.flush();
    assert.equal(out, text.normalize('NFC'));
    // Two decodes per push over a window of a few ids: linear in the length, not quadratic.
    assert.ok(decodedIds < ids.length * 12, `${decodedIds} ids decoded for ${ids.length} pushed`);
  });
});

describe('R1Tokenizer errors', () => {
  let dir: string;
  const tinyTokenizer = {
    version: '1.0',
    added_tokens: [{ id: 3, content: '<eos>', special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'] },
  };
  const tinyConfig = { eos_token: '<eos>', chat_template: '{{ messages[0].content }}' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'r1-tok-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function folder(name: string, files: Record<string, string | object>): Promise<string> {
    const d = join(dir, name);
    await import('node:fs/promises').then((fs) => fs.mkdir(d, { recursive: true }));
    for (const [file, content] of Object.entries(files)) {
      await writeFile(join(d, file), typeof content === 'string' ? content : JSON.stringify(content));
    }
    return d;
  }

  async function rejects(d: string, code: string, file: string, match?: RegExp): Promise<void> {
    await assert.rejects(R1Tokenizer.fromFolder(d), (e: unknown) => {
      assert.ok(e instanceof ModelError, `expected a ModelError, got ${String(e)}`);
      assert.equal(e.code, code);
      assert.equal(e.file, join(d, file));
      assert.ok(e.message.includes(file));
      assert.ok(e.hint.length > 0);
      if (match) assert.match(e.message, match);
      return true;
    });
  }

  it('loads a minimal valid folder', async () => {
    const d = await folder('ok', { 'tokenizer.json': tinyTokenizer, 'tokenizer_config.json': tinyConfig });
    const t = await R1Tokenizer.fromFolder(d);
    assert.deepEqual(t.eosTokenIds, [3]);
    assert.equal(t.vocabSize, 4);
    assert.equal(t.bosTokenId, undefined);
    assert.equal(t.thinkEndId, undefined);
    assert.deepEqual(t.encode('ab'), [2]);
  });

  it('names a missing tokenizer.json', async () => {
    await rejects(await folder('no-tok', { 'tokenizer_config.json': tinyConfig }), 'missing-file', 'tokenizer.json');
  });

  it('names a missing tokenizer_config.json', async () => {
    await rejects(await folder('no-cfg', { 'tokenizer.json': tinyTokenizer }), 'missing-file', 'tokenizer_config.json');
  });

  it('names a truncated tokenizer.json', async () => {
    const d = await folder('bad-json', {
      'tokenizer.json': JSON.stringify(tinyTokenizer).slice(0, 40),
      'tokenizer_config.json': tinyConfig,
    });
    await rejects(d, 'invalid-json', 'tokenizer.json', /not valid JSON/);
  });

  it('names invalid JSON in tokenizer_config.json', async () => {
    const d = await folder('bad-cfg', { 'tokenizer.json': tinyTokenizer, 'tokenizer_config.json': '{eos_token: x}' });
    await rejects(d, 'invalid-json', 'tokenizer_config.json');
  });

  it('names a tokenizer.json without a model', async () => {
    const { model: _model, ...noModel } = tinyTokenizer;
    const d = await folder('no-model', { 'tokenizer.json': noModel, 'tokenizer_config.json': tinyConfig });
    await rejects(d, 'invalid-field', 'tokenizer.json', /"model"/);
  });

  it('names a tokenizer.json the library cannot build', async () => {
    const d = await folder('odd-normalizer', {
      'tokenizer.json': { ...tinyTokenizer, normalizer: { type: 'Mystery' } },
      'tokenizer_config.json': tinyConfig,
    });
    await rejects(d, 'invalid-field', 'tokenizer.json', /cannot be loaded/);
  });

  it('names a config without eos_token, or one the vocabulary lacks', async () => {
    const d1 = await folder('no-eos', { 'tokenizer.json': tinyTokenizer, 'tokenizer_config.json': { chat_template: 'x' } });
    await rejects(d1, 'invalid-field', 'tokenizer_config.json', /eos_token/);
    const d2 = await folder('bad-eos', {
      'tokenizer.json': tinyTokenizer,
      'tokenizer_config.json': { eos_token: '<nope>' },
    });
    await rejects(d2, 'invalid-field', 'tokenizer_config.json', /<nope>/);
  });

  it('names a tokenizer_config.json that is a directory', async () => {
    const d = await folder('dir-cfg', { 'tokenizer.json': tinyTokenizer });
    await import('node:fs/promises').then((fs) => fs.mkdir(join(d, 'tokenizer_config.json')));
    await rejects(d, 'unreadable-file', 'tokenizer_config.json');
  });

  it('accepts AddedToken objects and a separate chat_template.jinja', async () => {
    const d = await folder('obj-tokens', {
      'tokenizer.json': tinyTokenizer,
      'tokenizer_config.json': { eos_token: { __type: 'AddedToken', content: '<eos>', special: true } },
      'chat_template.jinja': '{{ bos_token }}x',
    });
    const t = await R1Tokenizer.fromFolder(d);
    assert.deepEqual(t.eosTokenIds, [3]);
    assert.equal(t.chatTemplate, '{{ bos_token }}x');
  });
});
