/**
 * `r1 serve`: loads the model, starts the OpenAI-compatible server of src/serve and runs until
 * SIGINT or SIGTERM. The first line on stdout is the URL it listens on (tests and scripts read
 * it); everything else (loading, a line per request) goes to stderr.
 * Exit codes: 0 stopped by a signal, 1 model error or the port cannot be bound, 2 usage error
 * (a non-loopback --host without a key).
 */
import { basename, resolve } from 'node:path';
import { R1Engine } from '../engine';
import { ServeConfigError, checkBindSafety, engineBackend, startServer } from '../serve';
import { UsageError, type ServeArgs } from './args';

export interface ServeIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

/** Resolves when a signal asks the server to stop. */
function untilStopped(): Promise<NodeJS.Signals> {
  return new Promise((resolvePromise) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolvePromise(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export async function runServe(a: ServeArgs, io: ServeIO): Promise<number> {
  const apiKey = a.apiKey ?? (io.env.R1_API_KEY?.trim() || undefined);
  const log = (line: string) => io.stderr.write(`r1 serve: ${line}\n`);
  try {
    // Before the model loads: a refused address fails at once.
    await checkBindSafety(a.host, apiKey, a.insecure);
  } catch (e) {
    if (e instanceof ServeConfigError) throw new UsageError(e.message);
    throw e;
  }
  const engine = await R1Engine.load({
    modelDir: a.model,
    provider: a.provider,
    variant: a.variant,
    cpuThreads: a.threads,
    graphOptimizationLevel: a.graphOptimizationLevel,
    onProgress: io.stderr.isTTY === true ? (p) => log(p.message) : undefined,
  });
  const backend = engineBackend(engine, { promptLookup: a.promptLookup });
  const modelId = a.servedModelName ?? basename(resolve(a.model));
  let server;
  try {
    server = await startServer({
      backend,
      settings: {
        modelId,
        contextWindow: Math.min(a.contextWindow, backend.maxPositions),
        defaultMaxTokens: a.maxTokens,
        defaultThinkingBudget: a.thinkingBudget,
        reasoningField: a.reasoningField,
      },
      host: a.host,
      port: a.port,
      apiKey,
      insecure: a.insecure,
      queueLimit: a.queue,
      log,
    });
  } catch (e) {
    await engine.dispose();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      io.stderr.write(`r1: cannot listen on ${a.host}:${a.port} (${code}).\n`);
      return 1;
    }
    throw e;
  }
  const stopping = untilStopped();
  io.stdout.write(`${server.url}\n`);
  const i = engine.info;
  log(`serving ${modelId} (${i.variant} on ${i.provider}) at ${server.url}/v1; ${apiKey ? 'an API key is required' : 'no API key'}; queue ${a.queue}`);
  if (a.insecure && !apiKey) log(`warning: listening on ${a.host} without an API key (--insecure)`);
  const signal = await stopping;
  log(`${signal}: stopping`);
  await server.close();
  await engine.dispose();
  return 0;
}
