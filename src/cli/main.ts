/**
 * `r1`: the engine on the command line.
 *   r1 ask  --model DIR [options] "question"   streams reasoning (dimmed on a TTY), then the answer
 *   r1 info --model DIR [--json]               loads the model and reports what was chosen and why
 *   r1 install-cuda [--feed URL] [--check]     CUDA 12 / cuDNN 9 support for onnxruntime-node (Linux x64)
 *   r1 models [--json] [--models-dir DIR]      the model catalogue, what is downloaded, what this machine should use
 *   r1 serve --model DIR [--host H] [--port N]  an OpenAI-compatible server on the engine (src/serve)
 * Exit codes: 0 done, 1 model error or failed generation, 2 usage error, 130 cancelled (Ctrl-C).
 */
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { R1Engine } from '../engine/engine';
import { isDownloadError } from '../install/errors';
import type { CheckCudaOptions } from '../platform/cuda';
import { describeError, isModelError } from '../engine/errors';
import type { GenerationResult, LoadOptions, PromptRequest, StreamEvent } from '../engine/types';
import { type AskArgs, type CommonArgs, type InfoArgs, USAGE, UsageError, parseCli } from './args';
import { formatInfo, formatStats } from './format';
import { CliInstallError, isCancelled, runInstallCuda } from './installCuda';
import { runModels } from './models';
import { runServe } from './serve';

export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** install-cuda: options of the CUDA runtime check (a seam for tests; default: this machine's). */
  cudaCheck?: CheckCudaOptions;
}

const defaultIO: CliIO = { stdout: process.stdout, stderr: process.stderr, env: process.env };

function colors(io: CliIO, stream: 'stdout' | 'stderr'): boolean {
  return io[stream].isTTY === true && !io.env.NO_COLOR && io.env.TERM !== 'dumb';
}

function loadOptions(a: CommonArgs, io: CliIO, quiet: boolean): LoadOptions {
  const showProgress = !quiet && io.stderr.isTTY === true;
  return {
    modelDir: a.model,
    provider: a.provider,
    variant: a.variant,
    cpuThreads: a.threads,
    graphOptimizationLevel: a.graphOptimizationLevel,
    onProgress: showProgress
      ? (p) => {
          io.stderr.write(`\x1b[2m${p.message}\x1b[22m\n`);
        }
      : undefined,
  };
}

function readSource(a: AskArgs): PromptRequest['context'] {
  if (!a.file) return {};
  let text: string;
  try {
    text = readFileSync(a.file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read --file ${a.file}: ${(e as NodeJS.ErrnoException).code ?? describeError(e)}`);
  }
  const lines = text.split(/\r?\n/).length;
  if (a.selection && a.selection.startLine > lines) {
    throw new UsageError(`--selection starts at line ${a.selection.startLine} but ${a.file} has ${lines} lines`);
  }
  const rel = relative(process.cwd(), resolve(a.file));
  return {
    filePath: rel.startsWith('..') ? resolve(a.file) : rel,
    fileText: text,
    selection: a.selection ? { startLine: a.selection.startLine, endLine: Math.min(a.selection.endLine, lines) } : undefined,
  };
}

async function runAsk(a: AskArgs, io: CliIO): Promise<number> {
  const context = readSource(a);
  const engine = await R1Engine.load(loadOptions(a, io, a.json));
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const dim = colors(io, 'stdout');
  let lastKind: StreamEvent['kind'] | undefined;
  let wroteAny = false;
  let endsWithNewline = true;
  const write = (s: string) => {
    if (!s) return;
    io.stdout.write(s);
    wroteAny = true;
    endsWithNewline = s.endsWith('\n');
  };
  let result: GenerationResult;
  try {
    result = await engine.generate(
      { kind: 'ask', question: a.question, context },
      {
        maxNewTokens: a.maxNewTokens,
        thinkingBudget: a.thinkingBudget,
        temperature: a.temperature,
        topP: a.topP,
        topK: a.topK,
        seed: a.seed,
        contextWindow: a.contextWindow,
        signal: controller.signal,
        onEvent: a.json
          ? undefined
          : (ev) => {
              if (ev.kind !== lastKind) {
                if (lastKind === 'reasoning') write(endsWithNewline ? '\n' : '\n\n');
                lastKind = ev.kind;
              }
              write(ev.kind === 'reasoning' && dim ? `\x1b[2m${ev.text}\x1b[22m` : ev.text);
            },
      },
    );
  } finally {
    process.off('SIGINT', onSigint);
    await engine.dispose();
  }
  if (a.json) {
    const out: Record<string, unknown> = {
      status: result.status,
      reasoning: result.reasoning,
      answer: result.answer,
      codeBlocks: result.codeBlocks,
      stats: result.stats,
      truncation: result.truncation,
    };
    if (result.error !== undefined) out.error = result.error;
    io.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    if (wroteAny && !endsWithNewline) io.stdout.write('\n');
    for (const t of result.truncation) io.stderr.write(`note: ${t.detail} (${t.droppedTokens} tokens)\n`);
    io.stderr.write(`${formatStats(result, colors(io, 'stderr'))}\n`);
    if (result.status === 'error') io.stderr.write(`r1: generation failed: ${result.error ?? 'unknown error'}\n`);
  }
  if (result.status === 'cancelled') return 130;
  if (result.status === 'error') return 1;
  return 0;
}

async function runInfo(a: InfoArgs, io: CliIO): Promise<number> {
  const engine = await R1Engine.load(loadOptions(a, io, a.json));
  try {
    if (a.json) io.stdout.write(`${JSON.stringify(engine.info)}\n`);
    else io.stdout.write(formatInfo(engine.info));
  } finally {
    await engine.dispose();
  }
  return 0;
}

/** Runs the CLI; returns the exit code. Never throws. */
export async function main(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  try {
    if (argv[0] === 'models') return await runModels(argv.slice(1), io);
    const args = parseCli(argv);
    if (args.command === 'help') {
      io.stdout.write(USAGE);
      return 0;
    }
    if (args.command === 'info') return await runInfo(args, io);
    if (args.command === 'serve') return await runServe(args, io);
    if (args.command === 'install-cuda') {
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.on('SIGINT', onSigint);
      try {
        return await runInstallCuda(args, { ...io, signal: controller.signal });
      } finally {
        process.off('SIGINT', onSigint);
      }
    }
    return await runAsk(args, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`r1: ${e.message} (r1 --help for usage)\n`);
      return 2;
    }
    if (isCancelled(e)) {
      io.stderr.write('r1: cancelled; nothing was changed (the download resumes next time).\n');
      return 130;
    }
    const msg = isModelError(e) || isDownloadError(e) || e instanceof CliInstallError ? e.message : `unexpected error: ${describeError(e)}`;
    io.stderr.write(`r1: ${msg.replace(/\s*\n\s*/g, ' ')}\n`);
    return 1;
  }
}

if (require.main === module) {
  // `r1 ask ... | head`: a closed pipe ends the run quietly instead of crashing on EPIPE.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
