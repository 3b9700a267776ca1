import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import { ModelError } from '../../../src/engine/errors';
import { buildPrompt, renderChat } from '../../../src/engine/prompt';
import { R1Tokenizer } from '../../../src/engine/tokenizer';
import type { ChatTurn, PromptRequest } from '../../../src/engine/types';
import { answerOnly } from '../../../src/text/thinking';
import { R1_CHAT_TEMPLATE, buildTokenizerFixture } from '../../fixtures/tokenizer';

const FIXTURE = resolve(__dirname, '../../../.cache/fixtures/tokenizer');

const BOS = '<\uFF5Cbegin\u2581of\u2581sentence\uFF5C>';
const EOS = '<\uFF5Cend\u2581of\u2581sentence\uFF5C>';
const USER = '<\uFF5CUser\uFF5C>';
const ASSISTANT = '<\uFF5CAssistant\uFF5C>';

/**
 * The first published revision of R1-Distill-Qwen's template: the generation prompt is a bare
 * "<｜Assistant｜>", without "<think>\n". Everything else is the same as the newer one.
 */
const OLDER_TEMPLATE = R1_CHAT_TEMPLATE.replace(
  "{{'<｜Assistant｜><think>\\n'}}{% endif %}",
  "{{'<｜Assistant｜>'}}{% endif %}",
);

let tok: R1Tokenizer;
let tokenizerJson: unknown;
let config: Record<string, unknown>;

/** A tokenizer with the fixture's vocabulary and another chat template. */
function withTemplate(template: string | undefined): R1Tokenizer {
  const { chat_template: _drop, ...rest } = config;
  return R1Tokenizer.fromJson(tokenizerJson, template === undefined ? rest : { ...rest, chat_template: template });
}

before(async () => {
  await buildTokenizerFixture(FIXTURE);
  tok = await R1Tokenizer.fromFolder(FIXTURE);
  tokenizerJson = JSON.parse(await readFile(join(FIXTURE, 'tokenizer.json'), 'utf8'));
  config = JSON.parse(await readFile(join(FIXTURE, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
});

const TWO_TURNS: ChatTurn[] = [
  { role: 'user', content: 'What does `sum` return?' },
  { role: 'assistant', content: '<think>\nThe user asks about sum. It adds.\n</think>\n\nThe total of the list.' },
  { role: 'user', content: 'And for an empty list?' },
];
const TWO_TURNS_EXPECTED =
  `${BOS}${USER}What does \`sum\` return?${ASSISTANT}The total of the list.${EOS}` +
  `${USER}And for an empty list?${ASSISTANT}<think>\n`;

describe('renderChat', () => {
  it('renders a conversation with the model template: answers only, ends in <think>\\n', () => {
    assert.equal(renderChat(tok, TWO_TURNS), TWO_TURNS_EXPECTED);
    const ids = tok.encode(TWO_TURNS_EXPECTED);
    assert.equal(ids[0], tok.bosTokenId);
    assert.equal(ids.filter((id) => id === tok.bosTokenId).length, 1);
    assert.deepEqual(ids.slice(-3), [tok.tokenToId(ASSISTANT), tok.thinkStartId, tok.encode('\n')[0]]);
    assert.ok(!ids.includes(tok.thinkEndId!), 'no earlier reasoning is resent');
  });

  it('adds <think>\\n when the template does not', () => {
    assert.notEqual(OLDER_TEMPLATE, R1_CHAT_TEMPLATE, 'the older variant differs in its generation prompt');
    const older = withTemplate(OLDER_TEMPLATE);
    assert.equal(renderChat(older, TWO_TURNS), TWO_TURNS_EXPECTED);
    // The older template alone ends at the bare assistant tag.
    const bare = withTemplate(`{{ bos_token }}{% for m in messages %}${USER}{{ m.content }}{% endfor %}${ASSISTANT}<think>`);
    assert.equal(renderChat(bare, [{ role: 'user', content: 'x' }]), `${BOS}${USER}x${ASSISTANT}<think>\n`);
  });

  it('strips reasoning from assistant turns even when the template does not', () => {
    const plain = withTemplate(
      `{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}${USER}{{ m.content }}{% else %}${ASSISTANT}{{ m.content }}{{ eos_token }}{% endif %}{% endfor %}${ASSISTANT}<think>\n`,
    );
    assert.equal(renderChat(plain, TWO_TURNS), TWO_TURNS_EXPECTED);
    assert.equal(answerOnly('a</think>b</think>\n\nfinal'), 'final');
    assert.equal(answerOnly('<think>\ncut off while thinking'), '');
    assert.equal(answerOnly('plain answer'), 'plain answer');
  });

  it('never sends a system prompt', () => {
    const text = renderChat(tok, [{ role: 'user', content: 'hi' }]);
    assert.equal(text, `${BOS}${USER}hi${ASSISTANT}<think>\n`);
  });

  it('names tokenizer_config.json when there is no usable template', () => {
    const none = withTemplate(undefined);
    assert.throws(
      () => renderChat(none, [{ role: 'user', content: 'x' }]),
      (e: unknown) => e instanceof ModelError && e.code === 'invalid-field' && /chat_template/.test(e.message),
    );
    const broken = withTemplate('{% for m in messages %}{{ m.content }');
    assert.throws(
      () => renderChat(broken, [{ role: 'user', content: 'x' }]),
      (e: unknown) => e instanceof ModelError && e.code === 'invalid-field',
    );
  });
});

const MATH_TS = [
  'import { log } from "./log";',
  '',
  'export function mean(xs: number[]): number {',
  '  return xs.reduce((a, b) => a + b, 0) / xs.lenght;',
  '}',
  '',
  'export const answer = mean([1, 2, 3]);',
].join('\n');

const BIG = { contextWindow: 100_000, maxNewTokens: 1000 };

describe('buildPrompt kinds', () => {
  it('fix: the range, the code fenced with its language, the diagnostics, one-block instructions', () => {
    const req: PromptRequest = {
      kind: 'fix',
      context: {
        filePath: 'src/math.ts',
        language: 'typescript',
        fileText: MATH_TS,
        selection: { startLine: 3, endLine: 5 },
        diagnostics: [
          {
            message: "Property 'lenght' does not exist on type 'number[]'.",
            severity: 'error',
            startLine: 4,
            endLine: 4,
            source: 'ts',
            code: '2551',
          },
        ],
      },
    };
    const { text, ids, truncation } = buildPrompt(tok, req, BIG);
    assert.deepEqual(truncation, []);
    assert.deepEqual(ids, tok.encode(text));
    assert.equal(ids.filter((id) => id === tok.bosTokenId).length, 1);
    assert.ok(text.startsWith(`${BOS}${USER}Fix the code at lines 3-5 of \`src/math.ts\` (typescript).`));
    assert.ok(text.endsWith(`${ASSISTANT}<think>\n`));
    const selected = MATH_TS.split('\n').slice(2, 5).join('\n');
    assert.ok(text.includes(`Code to fix (lines 3-5):\n\`\`\`typescript\n${selected}\n\`\`\``));
    assert.ok(text.includes("- line 4, error (ts 2551): Property 'lenght' does not exist on type 'number[]'."));
    assert.ok(text.includes('import { log } from "./log";'), 'the surrounding file is context');
    assert.ok(text.includes('// … lines 3-5: the selected code, shown below …'));
    assert.equal(text.split('xs.lenght').length - 1, 1, 'the selection is shown once');
    assert.ok(text.includes('Reply with the corrected code for lines 3-5 only, in a single ```typescript code block'));
    assert.ok(text.includes('Do not include any code from outside lines 3-5.'));
  });

  it('explain: a concise explanation of the fenced code', () => {
    const { text } = buildPrompt(
      tok,
      { kind: 'explain', question: 'why divide?', context: { code: 'def f(x):\n    return x / 2\n', language: 'python' } },
      BIG,
    );
    assert.ok(text.startsWith(`${BOS}${USER}Explain the python code below.`));
    assert.ok(text.includes('Code to explain:\n```python\ndef f(x):\n    return x / 2\n```'));
    assert.ok(text.includes('Focus on: why divide?'));
    assert.ok(text.includes('Explain concisely'));
    assert.ok(text.endsWith(`${ASSISTANT}<think>\n`));
  });

  it('ask: the question with the code and extra context, earlier answers without reasoning', () => {
    const { text } = buildPrompt(
      tok,
      {
        kind: 'ask',
        question: 'Is mean safe for empty arrays?',
        context: { filePath: 'src/math.ts', code: 'mean([])', extraContext: 'The project targets Node 20.' },
        history: [
          { role: 'user', content: 'What is mean?' },
          { role: 'assistant', content: '<think>\nsecret reasoning\n</think>\n\nThe average.' },
        ],
      },
      BIG,
    );
    assert.ok(text.startsWith(`${BOS}${USER}What is mean?${ASSISTANT}The average.${EOS}${USER}`));
    assert.ok(!text.includes('secret reasoning'));
    assert.ok(text.includes('Selected code:\n```typescript\nmean([])\n```'), 'language from the file extension');
    assert.ok(text.includes('Additional context:\nThe project targets Node 20.'));
    assert.ok(text.includes('Question: Is mean safe for empty arrays?'));
    assert.ok(text.includes('using the code above as context'));
    assert.ok(text.endsWith(`${ASSISTANT}<think>\n`));
  });

  it('an unclosed <think> is reasoning to the end of the turn: it never goes back to the model', () => {
    const { text } = buildPrompt(
      tok,
      {
        kind: 'ask',
        question: 'And now?',
        context: {},
        history: [
          { role: 'user', content: 'First?' },
          { role: 'assistant', content: '<think>\ncancelled while thinking' },
          { role: 'user', content: 'Second?' },
          { role: 'assistant', content: '<think>\nr\n</think>\n\nThe answer.\n<think>\nthinking again, cut off' },
        ],
      },
      BIG,
    );
    assert.ok(!text.includes('cancelled while thinking'), 'a turn cancelled while thinking has no answer');
    assert.ok(!text.includes('thinking again'), 'reasoning opened in an answer stays out');
    assert.ok(text.includes(`${USER}Second?${ASSISTANT}The answer.${EOS}`));
    assert.equal(text.split('<think>').length - 1, 1, 'the only <think> is the one the reply starts with');
  });

  it('takes the selected lines from the file text when no code is given', () => {
    const { text } = buildPrompt(
      tok,
      { kind: 'explain', context: { language: 'typescript', fileText: MATH_TS, selection: { startLine: 7, endLine: 7 } } },
      BIG,
    );
    assert.ok(text.includes('Code to explain (line 7):\n```typescript\nexport const answer = mean([1, 2, 3]);\n```'));
  });

  it('uses a longer fence when the code holds backtick fences', () => {
    const code = 'const md = `\n```js\nx\n```\n`;';
    const { text } = buildPrompt(tok, { kind: 'explain', context: { code, language: 'javascript' } }, BIG);
    assert.ok(text.includes(`\`\`\`\`javascript\n${code}\n\`\`\`\``));
  });

  it('rejects requests with nothing to work on', () => {
    assert.throws(
      () => buildPrompt(tok, { kind: 'ask', question: '  ', context: {} }, BIG),
      (e: unknown) => e instanceof ModelError && /question/.test(e.message),
    );
    assert.throws(
      () => buildPrompt(tok, { kind: 'fix', context: { fileText: 'x' } }, BIG),
      (e: unknown) => e instanceof ModelError && /no code to fix/.test(e.message),
    );
  });
});

describe('buildPrompt context fitting', () => {
  const fileLines = Array.from({ length: 300 }, (_, i) => `const value${i + 1} = compute(${i + 1}, "line ${i + 1}");`);
  const fileText = fileLines.join('\n');
  const history: ChatTurn[] = [1, 2, 3].flatMap((n) => [
    { role: 'user' as const, content: `Question number ${n}: ${'please look at this code carefully. '.repeat(20)}` },
    { role: 'assistant' as const, content: `<think>\nthinking ${n}\n</think>\n\nAnswer number ${n}: ${'it is fine. '.repeat(20)}` },
  ]);
  const base: PromptRequest = {
    kind: 'fix',
    question: 'value151 should double its input',
    context: { filePath: 'src/values.ts', language: 'typescript', fileText, selection: { startLine: 150, endLine: 152 } },
  };
  const maxNewTokens = 512;
  const len = (req: PromptRequest) => buildPrompt(tok, req, BIG).ids.length;

  it('drops the oldest turns first', () => {
    const full = len({ ...base, history });
    const withoutFirst = len({ ...base, history: history.slice(2) });
    const r = buildPrompt(tok, { ...base, history }, { contextWindow: withoutFirst + maxNewTokens, maxNewTokens });
    assert.equal(r.ids.length, withoutFirst);
    assert.equal(r.truncation.length, 1);
    assert.equal(r.truncation[0]!.part, 'turn');
    assert.equal(r.truncation[0]!.droppedTokens, full - withoutFirst);
    assert.match(r.truncation[0]!.detail, /Question number 1/);
    assert.ok(!r.text.includes('Question number 1') && !r.text.includes('Answer number 1'));
    assert.ok(r.text.includes('Question number 2') && r.text.includes('Answer number 3'));
    assert.ok(!r.text.includes('lines omitted'), 'the file is untouched');
  });

  it('then drops the file lines farthest from the selection, and says so', () => {
    const noHistory = len(base);
    const budget = Math.floor(noHistory * 0.5);
    const r = buildPrompt(tok, { ...base, history }, { contextWindow: budget + maxNewTokens, maxNewTokens });
    assert.ok(r.ids.length <= budget);
    assert.deepEqual(r.ids, tok.encode(r.text));
    assert.deepEqual(
      r.truncation.map((n) => n.part),
      ['turn', 'turn', 'turn', 'file-context'],
    );
    assert.match(r.truncation[0]!.detail, /Question number 1/);
    assert.match(r.truncation[2]!.detail, /Question number 3/);
    const fileNote = r.truncation[3]!;
    assert.ok(fileNote.droppedTokens > 0);
    assert.match(fileNote.detail, /Left out \d+ of 297 lines of src\/values\.ts far from the selection \(lines 1-\d+, \d+-300\)/);
    // The nearest lines stay, the far ones go, and the cut is marked.
    assert.ok(r.text.includes(fileLines[148]!) && r.text.includes(fileLines[152]!));
    assert.ok(!r.text.includes(`${fileLines[0]!}\n`) && !r.text.includes(fileLines[299]!));
    const markers = [...r.text.matchAll(/^\/\/ … (\d+) lines omitted …$/gm)].map((m) => Number(m[1]));
    assert.equal(markers.length, 2);
    assert.match(fileNote.detail, new RegExp(`Left out ${markers[0]! + markers[1]!} of`));
    // Never the selection or the question.
    assert.ok(r.text.includes(`Code to fix (lines 150-152):\n\`\`\`typescript\n${fileLines.slice(149, 152).join('\n')}\n\`\`\``));
    assert.ok(r.text.includes('What to fix: value151 should double its input'));
    // As many lines as fit: one more line would not.
    assert.ok(r.ids.length > budget - 40, `${r.ids.length} tokens used of ${budget}`);
  });

  it('a window of a larger file (fileStartLine): the selection is found in document lines, and every line number shown is the document\'s', () => {
    // The client sends lines 101-300 of the file; the selection is document lines 150-152.
    const window = fileLines.slice(100).join('\n');
    const req: PromptRequest = { ...base, context: { ...base.context, fileText: window, fileStartLine: 101, code: undefined } };
    const r = buildPrompt(tok, req, BIG);
    assert.ok(r.text.includes(`Code to fix (lines 150-152):\n\`\`\`typescript\n${fileLines.slice(149, 152).join('\n')}\n\`\`\``), 'the selected lines, taken from the window');
    assert.match(r.text, /^\/\/ … lines 150-152: the selected code, shown below …$/m);
    // Around the marker: document lines 149 and 153, and the selection is not repeated in the context.
    const around = r.text.split('\n');
    const at = around.findIndex((l) => l.includes('the selected code, shown below'));
    assert.equal(around[at - 1], fileLines[148]);
    assert.equal(around[at + 1], fileLines[152]);
    assert.equal(r.text.split(fileLines[150]!).length - 1, 1, 'line 151 appears once: in the code to fix');
    const budget = Math.floor(len(req) * 0.6);
    const cut = buildPrompt(tok, req, { contextWindow: budget + maxNewTokens, maxNewTokens });
    const note = cut.truncation.find((n) => n.part === 'file-context')!;
    // The farthest lines are the end of the file (the window starts 49 lines above the selection).
    const omitted = /\(lines (\d+)-300\)/.exec(note.detail);
    assert.ok(omitted && Number(omitted[1]) > 200, `omitted ranges in document lines: ${note.detail}`);
  });

  it('counts exactly what the tokenizer counts on messy text', () => {
    const messy = [
      'fn main() {\r\n\tlet s = "héllo, 你好, 🦀";\r\n',
      '',
      '    ',
      '\t\t}};',
      '',
      '',
      '  # comment with trailing spaces   ',
      '日本語のテキスト',
      'x</think>y<\uFF5CUser\uFF5C>z',
    ];
    const text = Array.from({ length: 40 }, (_, i) => messy[i % messy.length]!).join('\n');
    const req: PromptRequest = { kind: 'fix', context: { language: 'rust', fileText: text, selection: { startLine: 20, endLine: 21 } } };
    const full = buildPrompt(tok, req, BIG);
    assert.deepEqual(full.ids, tok.encode(full.text));
    const r = buildPrompt(tok, req, { contextWindow: Math.floor(full.ids.length * 0.7) + 100, maxNewTokens: 100 });
    assert.deepEqual(r.ids, tok.encode(r.text));
    assert.ok(r.ids.length <= Math.floor(full.ids.length * 0.7));
    assert.equal(r.truncation.length, 1);
  });

  it('marks cuts in the comment syntax of the language', () => {
    const py = Array.from({ length: 200 }, (_, i) => `value_${i} = compute(${i})`).join('\n');
    const req: PromptRequest = {
      kind: 'explain',
      context: { filePath: 'a.py', language: 'python', fileText: py, selection: { startLine: 100, endLine: 100 } },
    };
    const r = buildPrompt(tok, req, { contextWindow: Math.floor(len(req) * 0.6) + 100, maxNewTokens: 100 });
    assert.match(r.text, /^# … \d+ lines omitted …$/m);
    assert.ok(r.text.includes('# … line 100: the selected code, shown below …'));
  });

  it('leaves out the extra context last', () => {
    const req: PromptRequest = {
      kind: 'ask',
      question: 'What is this?',
      context: { code: 'x = 1', language: 'python', extraContext: 'background '.repeat(400) },
    };
    const without = len({ ...req, context: { ...req.context, extraContext: undefined } });
    const r = buildPrompt(tok, req, { contextWindow: without + 10 + 100, maxNewTokens: 100 });
    assert.deepEqual(
      r.truncation.map((n) => n.part),
      ['extra-context'],
    );
    assert.ok(!r.text.includes('background'));
    assert.ok(r.text.includes('x = 1') && r.text.includes('What is this?'));
  });

  it('throws prompt-too-long when the code alone does not fit', () => {
    const code = fileLines.slice(0, 200).join('\n');
    const check = (e: unknown) => {
      assert.ok(e instanceof ModelError);
      assert.equal(e.code, 'prompt-too-long');
      assert.match(e.hint, /r1\.generation\.contextWindow/);
      assert.match(e.hint, /Select less code/);
      return true;
    };
    assert.throws(
      () => buildPrompt(tok, { kind: 'fix', context: { code, language: 'typescript', fileText } }, { contextWindow: 2048, maxNewTokens: 1024 }),
      check,
    );
    assert.throws(() => buildPrompt(tok, { kind: 'explain', context: { code: 'x' } }, { contextWindow: 1000, maxNewTokens: 1000 }), check);
  });
});
