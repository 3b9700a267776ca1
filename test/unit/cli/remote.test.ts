/**
 * `r1 ask --server` end to end: the CLI spawned (node with the tsx loader) against the replay
 * servers of test/unit/remote, every wire shape streamed and not, the errors users meet, and a
 * real `r1 serve` on the scripted model, whose answer must be the local run's.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureFixture } from '../../fixtures/models';
import { ANSWER, REASONING, SHAPES, deadUrl, startReplay, type Replay, type ReplayOptions } from '../remote/replay';

const ROOT = resolve(__dirname, '../../..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function r1(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

const replays: Replay[] = [];
after(async () => {
  await Promise.all(replays.map((r) => r.close()));
});
async function replay(o: ReplayOptions): Promise<Replay> {
  const r = await startReplay(o);
  replays.push(r);
  return r;
}

const QUESTION = 'Why does parsePort return a string?';

describe('r1 ask --server: every wire shape, the same output as a local run', () => {
  for (const shape of SHAPES) {
    for (const noStream of [false, true]) {
      it(`${shape}, ${noStream ? 'answered in one piece' : 'streamed'}: --json`, async () => {
        const r = await replay({ shape, noStream });
        const api = shape === 'ollama-v1' ? ['--server-api', 'openai'] : [];
        const run = await r1(['ask', '--server', `${r.url}/v1`, ...api, '--json', QUESTION]);
        const expectedCode = shape === 'null-content' ? 0 : 0;
        assert.equal(run.code, expectedCode, run.stderr);
        const lines = run.stdout.trim().split('\n');
        assert.equal(lines.length, 1, 'one line of JSON');
        const out = JSON.parse(lines[0]!) as { status: string; reasoning: string; answer: string; codeBlocks: unknown[]; stats: Record<string, unknown>; truncation: unknown[] };
        assert.deepEqual(Object.keys(out).sort(), ['answer', 'codeBlocks', 'reasoning', 'stats', 'status', 'truncation']);
        assert.equal(out.status, shape === 'null-content' ? 'length' : 'complete');
        assert.equal(out.reasoning, REASONING);
        assert.equal(out.answer, shape === 'null-content' ? '' : ANSWER);
        assert.equal(out.codeBlocks.length, shape === 'null-content' ? 0 : 1);
        for (const k of ['promptTokens', 'reasoningTokens', 'answerTokens', 'timeToFirstTokenMs', 'prefillTokensPerSecond', 'decodeTokensPerSecond', 'provider', 'variant', 'thinkingBudgetHit', 'server']) {
          assert.ok(k in out.stats, `stats has ${k}`);
        }
        assert.equal(out.stats.provider, 'server');
      });
    }
  }

  it('without --json: reasoning, then the answer on stdout; the stats line names model and server', async () => {
    const r = await replay({ shape: 'llama.cpp' });
    const run = await r1(['ask', '--server', r.url, '--thinking-budget', '300', QUESTION]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.startsWith(REASONING));
    assert.ok(run.stdout.includes(`\n\n${ANSWER}`));
    assert.match(run.stderr, /complete: 42 prompt tokens \(10 cached by the server\), ~\d+ reasoning \+ \d+ answer tokens; .*deepseek-ai\/DeepSeek-R1-Distill-Qwen-1\.5B on llama\.cpp at 127\.0\.0\.1:\d+/);
    assert.equal(r.requests.find((q) => q.path === '/v1/chat/completions')?.body?.thinking_budget_tokens, 300);
  });

  it('a budget the server cannot enforce is a note on stderr', async () => {
    const r = await replay({ shape: 'ollama' });
    const run = await r1(['ask', '--server', r.url, '--thinking-budget', '300', QUESTION]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /note: The thinking budget \(300 tokens\) is not enforced: Ollama has no thinking budget/);
  });
});

describe('r1 ask --server: errors say what to do, exit 1', () => {
  it('unreachable', async () => {
    const url = await deadUrl();
    const run = await r1(['ask', '--server', url, '--json', QUESTION]);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^r1: R1 Coder cannot reach the server at http:\/\/127\.0\.0\.1:\d+ \(.*connection refused.*\)\. Check that the server runs/);
  });

  it('a key from --api-key-env; 401 without it', async () => {
    const r = await replay({ shape: 'vllm', apiKey: 'sekret-1' });
    const denied = await r1(['ask', '--server', r.url, QUESTION]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /needs an API key \(HTTP 401: Invalid API key\)/);
    const ok = await r1(['ask', '--server', r.url, '--api-key-env', 'MY_KEY', '--json', QUESTION], { MY_KEY: 'sekret-1' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(!ok.stderr.includes('sekret'), 'the key is never printed');
    const unset = await r1(['ask', '--server', r.url, '--api-key-env', 'NOT_SET_ANYWHERE', QUESTION]);
    assert.equal(unset.code, 2);
    assert.match(unset.stderr, /--api-key-env NOT_SET_ANYWHERE: the variable is not set/);
  });

  it('an unknown model', async () => {
    const r = await replay({ shape: 'sglang', models: ['m1'] });
    const run = await r1(['ask', '--server', r.url, '--server-model', 'm2', QUESTION]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /does not serve the model "m2"; it lists "m1"\. Set r1\.server\.model \(or --server-model\)/);
  });

  it('a stream that breaks mid-answer: what arrived is printed, exit 1', async () => {
    const r = await replay({ shape: 'vllm', failure: { kind: 'break', after: 60 } });
    const run = await r1(['ask', '--server', r.url, '--json', QUESTION]);
    assert.equal(run.code, 1);
    const out = JSON.parse(run.stdout) as { status: string; reasoning: string; answer: string; error: string };
    assert.equal(out.status, 'error');
    assert.equal(out.reasoning, REASONING);
    assert.ok(out.answer.length > 0);
    assert.match(out.error, /What arrived is kept/);
  });

  it('usage errors', async () => {
    const both = await r1(['ask', '--server', 'http://x', '--model', 'DIR', QUESTION]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--model and --server exclude each other/);
    const provider = await r1(['ask', '--server', 'http://x', '--provider', 'cpu', QUESTION]);
    assert.match(provider.stderr, /--provider applies to a local model, not to --server/);
    const api = await r1(['ask', '--server', 'http://x', '--server-api', 'grpc', QUESTION]);
    assert.match(api.stderr, /--server-api must be one of auto, openai, ollama/);
    const lone = await r1(['ask', '--model', 'DIR', '--server-model', 'm', QUESTION]);
    assert.match(lone.stderr, /--server-model needs --server URL/);
    const bad = await r1(['ask', '--server', 'gpu-box:8000', QUESTION]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /The server URL "gpu-box:8000" has the scheme gpu-box:|is not a URL/);
  });
});

describe('r1 ask --server on a real r1 serve', () => {
  let model: string;
  let serve: ChildProcess;
  let url: string;
  before(async () => {
    model = await ensureFixture('scripted');
    serve = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--model', model, '--port', '0', '--provider', 'cpu'], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', R1_API_KEY: 'serve-key' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    url = await new Promise<string>((resolvePromise, reject) => {
      let out = '';
      serve.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolvePromise(out.split('\n')[0]!);
      });
      serve.on('exit', (code) => reject(new Error(`r1 serve exited (${code})`)));
    });
  });
  after(async () => {
    const exited = new Promise((r) => serve.once('exit', r));
    serve.kill('SIGTERM');
    await exited;
  });

  it('gives the local run\'s reasoning, answer and code blocks; usage counts are the server\'s', async () => {
    const args = ['--json', '--temperature', '0', '--thinking-budget', '0', QUESTION];
    const local = await r1(['ask', '--model', model, '--provider', 'cpu', ...args]);
    const remote = await r1(['ask', '--server', url, '--api-key-env', 'R1_TEST_KEY', ...args], { R1_TEST_KEY: 'serve-key' });
    assert.equal(local.code, 0, local.stderr);
    assert.equal(remote.code, 0, remote.stderr);
    const l = JSON.parse(local.stdout) as { status: string; reasoning: string; answer: string; codeBlocks: unknown; stats: { reasoningTokens: number; answerTokens: number; promptTokens: number } };
    const r = JSON.parse(remote.stdout) as typeof l & { stats: { server: { kind: string; reasoningTokensFrom: string } } };
    assert.equal(r.status, l.status);
    assert.equal(r.reasoning, l.reasoning);
    assert.equal(r.answer, l.answer);
    assert.deepEqual(r.codeBlocks, l.codeBlocks);
    assert.equal(r.stats.server.kind, 'r1');
    assert.equal(r.stats.server.reasoningTokensFrom, 'server');
    assert.equal(r.stats.reasoningTokens, l.stats.reasoningTokens);
    assert.equal(r.stats.promptTokens, l.stats.promptTokens, 'the same prompt, through the server\'s template');
  });

  it('the thinking budget goes as thinking_token_budget, and r1 serve enforces it', async () => {
    const run = await r1(['ask', '--server', url, '--api-key-env', 'R1_TEST_KEY', '--json', '--temperature', '0', '--thinking-budget', '10', QUESTION], { R1_TEST_KEY: 'serve-key' });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { stats: { reasoningTokens: number; thinkingBudgetHit: boolean; server: { thinkingBudgetField: string } } };
    assert.equal(out.stats.reasoningTokens, 10);
    assert.equal(out.stats.thinkingBudgetHit, true);
    assert.equal(out.stats.server.thinkingBudgetField, 'thinking_token_budget');
  });
});
