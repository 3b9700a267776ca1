/**
 * The `r1` CLI end to end: spawned like `npx tsx src/cli/main.ts` (node with the tsx loader, so
 * npm's own warnings do not mix into stderr), on the scripted fixture.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureFixture } from '../../fixtures/models';

const ROOT = resolve(__dirname, '../../..');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function r1(args: string[], onSpawn?: (child: ChildProcess) => void): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
    onSpawn?.(child);
  });
}

describe('r1 CLI', () => {
  let model: string;
  let tmp: string;
  before(async () => {
    model = await ensureFixture('scripted');
    tmp = mkdtempSync(join(tmpdir(), 'r1-cli-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('ask --json prints exactly one JSON object with the result and stats', async () => {
    const r = await r1(['ask', '--model', model, '--json', '--temperature', '0', '--provider', 'cpu', 'Why does parsePort return a string?']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, 'one line of JSON');
    const out = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const k of ['status', 'reasoning', 'answer', 'codeBlocks', 'stats']) assert.ok(k in out, `has ${k}`);
    assert.equal(out.status, 'complete');
    assert.match(out.reasoning as string, /^Okay, the user wants me to fix `parsePort`/);
    assert.match(out.answer as string, /```typescript/);
    const blocks = out.codeBlocks as Array<{ language: string; code: string; closed: boolean }>;
    assert.equal(blocks.length, 1);
    assert.equal(blocks[0]!.language, 'typescript');
    const stats = out.stats as Record<string, unknown>;
    for (const k of [
      'promptTokens',
      'reasoningTokens',
      'answerTokens',
      'timeToFirstTokenMs',
      'prefillTokensPerSecond',
      'decodeTokensPerSecond',
      'provider',
      'variant',
      'thinkingBudgetHit',
    ]) {
      assert.ok(k in stats, `stats has ${k}`);
    }
    assert.equal(stats.provider, 'cpu');
    assert.equal(stats.variant, 'q4');
    assert.equal(stats.thinkingBudgetHit, false);
    assert.ok((stats.reasoningTokens as number) > 0 && (stats.answerTokens as number) > 0);
  });

  it('ask streams reasoning then answer as text, stats on stderr; --file and --selection feed the prompt', async () => {
    const file = join(tmp, 'port.ts');
    writeFileSync(file, 'export function parsePort(value: string) {\n  const n = parseInt(value);\n  return isNaN(n) ? value : n;\n}\n');
    const r = await r1(['ask', '--model', model, '--provider', 'cpu', '--temperature', '0', '--file', file, '--selection', '1:3', '--thinking-budget', '10', 'what is wrong?']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes('\x1b['), 'no ANSI codes when stdout is not a TTY');
    const answerAt = r.stdout.indexOf('`parsePort` returned');
    assert.ok(answerAt > 0, 'the answer follows the reasoning');
    assert.ok(r.stdout.startsWith('Okay, the user'), 'reasoning first');
    assert.match(r.stderr, /complete: \d+ prompt tokens, 10 reasoning \+ \d+ answer tokens.*q4 on cpu; thinking budget reached/);
  });

  it('ask says how many tokens a pass prompt lookup gave, and --no-prompt-lookup gives the same text in one token a pass', async () => {
    const file = join(tmp, 'port2.ts');
    writeFileSync(file, 'export function parsePort(value: string): number {\n  const port = Number.parseInt(value, 10);\n  if (!Number.isInteger(port) || port < 1 || port > 65535) {\n    return value as unknown as number;\n  }\n  return port;\n}\n');
    const args = ['ask', '--model', model, '--provider', 'cpu', '--temperature', '0', '--file', file, '--selection', '1:7', 'fix it'];
    const on = await r1(args);
    assert.equal(on.code, 0, on.stderr);
    const m = /prompt lookup: (\d+\.\d+) tokens a pass \((\d+) of (\d+) drafted tokens kept\)/.exec(on.stderr);
    assert.ok(m, on.stderr);
    assert.ok(Number(m[1]) > 1 && Number(m[2]) > 0 && Number(m[2]) <= Number(m[3]));
    const off = await r1([...args.slice(0, -1), '--no-prompt-lookup', 'fix it']);
    assert.equal(off.code, 0, off.stderr);
    assert.ok(!off.stderr.includes('prompt lookup'), off.stderr);
    assert.equal(off.stdout, on.stdout);
  });

  it('info --json reports the session, variant, signature and providers', async () => {
    const r = await r1(['info', '--model', model, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as {
      provider: string;
      variant: string;
      attempts: Array<{ provider: string; ok: boolean; reason?: string }>;
      signature: { numLayers: number; kvDtype: string };
      config: { numHiddenLayers: number };
    };
    assert.equal(info.variant, 'q4');
    assert.equal(info.signature.numLayers, 28);
    assert.equal(info.config.numHiddenLayers, 28);
    // The provider in use is the last attempt, the only successful one; each other one has its reason.
    assert.equal(info.attempts.at(-1)!.provider, info.provider);
    assert.equal(info.attempts.filter((a) => a.ok).length, 1);
    for (const a of info.attempts.filter((x) => !x.ok)) assert.ok(a.reason && a.reason.length > 0);
  });

  it('info prints a readable summary', async () => {
    const r = await r1(['info', '--model', model, '--provider', 'cpu']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /provider\s+cpu/);
    assert.match(r.stdout, /variant\s+q4/);
    assert.match(r.stdout, /past_key_values\.\{0\.\.27\}\.\{key,value\} float32\[batch_size, 2, past_sequence_length, 128\]/);
  });

  it('a missing model folder: one line on stderr, exit 1', async () => {
    const r = await r1(['ask', '--model', join(tmp, 'absent'), 'q']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^r1: .*absent: the model folder does not exist\./);
  });

  it('a usage error: one line on stderr, exit 2', async () => {
    const r = await r1(['ask', '--model', model, '--temperature', 'warm', 'q']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /--temperature must be a number/);
  });

  it('Ctrl-C cancels the generation cleanly: partial output, exit 130', async () => {
    const r = await r1(['ask', '--model', model, '--provider', 'cpu', '--temperature', '0', 'q'], (child) => {
      let sent = false;
      child.stdout!.on('data', () => {
        if (!sent) {
          sent = true;
          child.kill('SIGINT');
        }
      });
    });
    assert.equal(r.code, 130, r.stderr);
    assert.ok(r.stdout.startsWith('Okay'), 'partial reasoning printed');
    assert.ok(!r.stdout.includes('It now always returns'), 'stopped before the end of the script');
    assert.match(r.stderr, /cancelled: /);
  });
});
