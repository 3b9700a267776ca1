/** `r1` argument parsing: typed commands and one-line usage errors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError, parseCli, parseSelection } from '../../../src/cli/args';

const usage = (argv: string[], re: RegExp) =>
  assert.throws(
    () => parseCli(argv),
    (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes('\n'),
  );

describe('parseCli', () => {
  it('parses ask with every option', () => {
    const a = parseCli([
      'ask', '--model', 'm', '--file', 'src/a.ts', '--selection', '3:9', '--max-new-tokens', '100', '--thinking-budget', '50',
      '--temperature', '0', '--top-p', '0.9', '--top-k', '20', '--seed', '7', '--provider', 'cpu', '--variant', 'q4', '--threads', '2',
      '--context-window', '4096', '--graph-opt', 'extended', '--json', 'why', 'is', 'this', 'slow?',
    ]);
    assert.deepEqual(a, {
      command: 'ask',
      model: 'm',
      provider: 'cpu',
      variant: 'q4',
      threads: 2,
      graphOptimizationLevel: 'extended',
      json: true,
      question: 'why is this slow?',
      file: 'src/a.ts',
      selection: { startLine: 3, endLine: 9 },
      maxNewTokens: 100,
      thinkingBudget: 50,
      temperature: 0,
      topP: 0.9,
      topK: 20,
      seed: 7,
      contextWindow: 4096,
    });
  });

  it('defaults: auto provider and variant, text output', () => {
    const a = parseCli(['ask', '--model', 'm', 'q']);
    assert.equal(a.command, 'ask');
    if (a.command !== 'ask') return;
    assert.equal(a.provider, 'auto');
    assert.equal(a.variant, 'auto');
    assert.equal(a.json, false);
    assert.equal(a.temperature, undefined);
  });

  it('--no-prompt-lookup turns prompt lookup off for ask and serve, and is refused where it means nothing', () => {
    const a = parseCli(['ask', '--model', 'm', '--no-prompt-lookup', 'q']);
    assert.equal(a.command === 'ask' && a.promptLookup, 'off');
    const d = parseCli(['ask', '--model', 'm', 'q']);
    assert.equal(d.command === 'ask' && d.promptLookup, undefined, 'left to the engine (auto)');
    const s = parseCli(['serve', '--model', 'm', '--no-prompt-lookup']);
    assert.equal(s.command === 'serve' && s.promptLookup, 'off');
    usage(['info', '--model', 'm', '--no-prompt-lookup'], /--no-prompt-lookup applies to ask, not info/);
    usage(['ask', '--server', 'http://h:1', '--no-prompt-lookup', 'q'], /--no-prompt-lookup applies to a local model/);
  });

  it('parses info', () => {
    assert.deepEqual(parseCli(['info', '--model', 'm', '--provider', 'webgpu', '--json']), {
      command: 'info',
      model: 'm',
      provider: 'webgpu',
      variant: 'auto',
      threads: undefined,
      graphOptimizationLevel: undefined,
      json: true,
    });
  });

  it('help', () => {
    assert.deepEqual(parseCli([]), { command: 'help' });
    assert.deepEqual(parseCli(['--help']), { command: 'help' });
    assert.deepEqual(parseCli(['ask', '--help']), { command: 'help' });
  });

  it('usage errors', () => {
    usage(['run'], /unknown command "run"/);
    usage(['ask', 'q'], /--model DIR is required/);
    usage(['ask', '--model', 'm'], /ask needs a question/);
    usage(['ask', '--model', 'm', '--temperature', 'hot', 'q'], /--temperature must be a number/);
    usage(['ask', '--model', 'm', '--temperature=-1', 'q'], /--temperature must be at least 0/);
    usage(['ask', '--model', 'm', '--top-p', '0', 'q'], /--top-p must be more than 0/);
    usage(['ask', '--model', 'm', '--top-p', '1.5', 'q'], /--top-p must be at most 1/);
    usage(['ask', '--model', 'm', '--max-new-tokens', '2.5', 'q'], /--max-new-tokens must be an integer/);
    usage(['ask', '--model', 'm', '--max-new-tokens', '0', 'q'], /at least 1/);
    usage(['ask', '--model', 'm', '--provider', 'tpu', 'q'], /--provider must be one of auto, cuda, dml, coreml, webgpu, cpu/);
    usage(['ask', '--model', 'm', '--variant', 'q2', 'q'], /--variant must be one of/);
    usage(['ask', '--model', 'm', '--selection', '3:4', 'q'], /--selection needs --file/);
    usage(['ask', '--model', 'm', '--bogus', 'q'], /bogus/);
    usage(['info', '--model', 'm', 'question'], /info takes no question/);
    usage(['info', '--model', 'm', '--temperature', '1'], /--temperature applies to ask/);
  });

  it('selections', () => {
    assert.deepEqual(parseSelection('5'), { startLine: 5, endLine: 5 });
    assert.deepEqual(parseSelection('5-8'), { startLine: 5, endLine: 8 });
    assert.throws(() => parseSelection('8:5'), UsageError);
    assert.throws(() => parseSelection('0:5'), UsageError);
    assert.throws(() => parseSelection('a:b'), UsageError);
  });
});
