/**
 * The product command (`npm start`): builds R1 Coder, installs it into a local VS Code
 * (code-server 4.139.1, installed with Node 24 into .cache/e2e on first use), opens a folder and
 * prints the URL to open in a browser. Serves on 127.0.0.1 only, without a password. Ctrl+C stops
 * code-server and everything it started.
 *
 *   npm start [-- --folder DIR] [--port N] [--model DIR]
 *
 * --folder  the folder to open (default: the current folder)
 * --port    the port on 127.0.0.1 (default 8080; 0 picks a free one)
 * --model   sets r1.model.path in this code-server's user settings (default: leave the settings;
 *           without a model, R1 Coder offers Download Model and Choose Folder)
 * User data and extensions persist in .cache/code-server/, so settings made in the editor stay.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { E2E, ensureVsix } from './harness';
import { CODE_SERVER_VERSION, REPO_ROOT } from './install';

interface Args {
  folder: string;
  port: number;
  model?: string;
}

function usage(message: string): never {
  console.error(`[r1] ${message}\nUsage: npm start [-- --folder DIR] [--port N] [--model DIR]`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  // `npm start` runs in the repository; INIT_CWD is where the user typed it.
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const args: Args = { folder: cwd, port: 8080 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => argv[++i] ?? usage(`${a} needs a value.`);
    if (a === '--folder') args.folder = resolve(cwd, value());
    else if (a === '--port') args.port = Number(value());
    else if (a === '--model') args.model = resolve(cwd, value());
    else usage(`Unknown option ${a}.`);
  }
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) usage(`--port must be a port number, got ${args.port}.`);
  if (!existsSync(args.folder) || !statSync(args.folder).isDirectory()) usage(`--folder ${args.folder} is not a folder.`);
  if (args.model !== undefined && !existsSync(join(args.model, 'config.json'))) {
    usage(`--model ${args.model} has no config.json: give the folder of an R1-Distill ONNX model (onnx-community layout).`);
  }
  return args;
}

function setModelPath(stateDir: string, model: string): void {
  const file = join(stateDir, 'user-data', 'User', 'settings.json');
  let settings: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      settings = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch {
      console.warn(`[r1] ${file} is not plain JSON (comments?); set r1.model.path in the editor instead.`);
      return;
    }
  }
  settings['r1.model.path'] = model;
  writeFileSync(file, JSON.stringify(settings, null, 2));
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const stateDir = join(REPO_ROOT, '.cache', 'code-server');
  console.log('[r1] packaging R1 Coder and preparing code-server (the first run installs code-server, a few minutes)…');
  const vsix = ensureVsix();
  const e2e = await E2E.start({
    name: 'start',
    vsix,
    folder: args.folder,
    stateDir,
    browser: false,
    port: args.port,
    handleSignals: false,
    // The product uses the user's model, not the test fixture.
    settings: { 'r1.model.path': undefined },
  });
  if (args.model) setModelPath(stateDir, args.model);
  console.log(`\n[r1] R1 Coder is running in VS Code (code-server ${CODE_SERVER_VERSION}).`);
  console.log(`[r1] Open: ${e2e.url}`);
  console.log(`[r1] Folder: ${args.folder}`);
  console.log('[r1] Press Ctrl+C to stop.\n');

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.log('\n[r1] stopping…');
    void e2e.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await e2e.exited();
  if (!stopping) {
    console.error('[r1] code-server stopped by itself. Its output:\n' + e2e.serverOutput.split('\n').slice(-30).join('\n'));
    await e2e.stop();
    process.exit(1);
  }
}

main().catch((e: unknown) => {
  console.error(`[r1] ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
