/**
 * Installs what the end-to-end suite runs on, at pinned versions, into the git-ignored folder
 * `.cache/e2e/`, and reuses it when it is already there:
 *   .cache/e2e/node24/       the npm package `node` (a Node 24 binary in node_modules/.bin/node)
 *   .cache/e2e/code-server/  the npm package `code-server` (VS Code 1.139.1 as a web server)
 *   .cache/e2e/installed.json  written last; its presence with matching versions means "complete"
 * code-server builds native modules at install time: that needs Node 24 first on PATH and the
 * Debian packages in DEBIAN_PACKAGES (installed with apt-get when missing; we run as root).
 * Chromium is Debian's `chromium` package.
 *
 * Usage: `npx tsx test/e2e/install.ts` (prints where things are and how long the install took).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

export const CODE_SERVER_VERSION = '4.139.1';
export const NODE_VERSION = '24.21.0';
export const DEBIAN_PACKAGES = ['libkrb5-dev', 'libx11-dev', 'libxkbfile-dev', 'libsecret-1-dev', 'pkg-config', 'chromium'];
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const REPO_ROOT = resolve(__dirname, '..', '..');
export const E2E_CACHE = join(REPO_ROOT, '.cache', 'e2e');
const MARKER = join(E2E_CACHE, 'installed.json');

export interface Toolchain {
  /** Folder holding the Node 24 `node` binary; put it first on PATH for code-server. */
  nodeBinDir: string;
  node: string;
  /** code-server's entry point, run with `node`. */
  codeServerEntry: string;
  chromium: string;
}

function toolchain(): Toolchain {
  const nodeBinDir = join(E2E_CACHE, 'node24', 'node_modules', 'node', 'bin');
  return {
    nodeBinDir,
    node: join(nodeBinDir, 'node'),
    codeServerEntry: join(E2E_CACHE, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
    chromium: CHROMIUM_PATH,
  };
}

interface Marker {
  codeServer: string;
  node: string;
  installedAt: string;
  seconds: number;
}

function readMarker(): Marker | undefined {
  try {
    return JSON.parse(readFileSync(MARKER, 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  console.log(`[e2e install] $ ${cmd} ${args.join(' ')}${opts.cwd ? `   (in ${opts.cwd})` : ''}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: opts.cwd, env: opts.env ?? process.env });
  if (r.error) throw new Error(`Could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed with exit code ${r.status ?? r.signal}.`);
}

/** The environment without the npm_* variables an outer npm process sets, plus `extra`. */
export function cleanNpmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Debian packages of DEBIAN_PACKAGES that are not installed. */
export function missingDebianPackages(): string[] {
  return DEBIAN_PACKAGES.filter((p) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' });
    return r.status !== 0 || !r.stdout.includes('install ok installed');
  });
}

function ensureDebianPackages(): void {
  const missing = missingDebianPackages();
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`The end-to-end suite needs the Debian packages ${missing.join(', ')}. Install them with: sudo apt-get update && sudo apt-get install -y ${missing.join(' ')}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', ...missing], { env });
}

/**
 * Makes sure code-server, Node 24 and Chromium are installed, installing what is missing.
 * Returns the paths. Cheap when everything is already there.
 */
export function ensureInstalled(options: { log?: (line: string) => void } = {}): Toolchain {
  const log = options.log ?? ((line: string) => console.log(`[e2e install] ${line}`));
  const tc = toolchain();
  const marker = readMarker();
  const complete =
    marker?.codeServer === CODE_SERVER_VERSION && marker.node === NODE_VERSION && existsSync(tc.node) && existsSync(tc.codeServerEntry);
  if (complete && missingDebianPackages().length === 0) return tc;

  const t0 = Date.now();
  ensureDebianPackages();
  if (!complete) {
    log(`installing node@${NODE_VERSION} and code-server@${CODE_SERVER_VERSION} into ${E2E_CACHE} (a few minutes)`);
    rmSync(MARKER, { force: true });
    for (const [folder, spec] of [
      ['node24', `node@${NODE_VERSION}`],
      ['code-server', `code-server@${CODE_SERVER_VERSION}`],
    ] as const) {
      const dir = join(E2E_CACHE, folder);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      // Own package.json: npm treats this folder as its project, apart from the repository's.
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `r1-e2e-${folder}`, private: true }, null, 2));
      // code-server builds native modules against the Node that runs npm: Node 24 first on PATH.
      // npm_* variables of an outer npm (npx, npm run) would leak its Node version and the
      // repository's .npmrc into this install: code-server's postinstall reads npm_config_user_agent.
      const env = cleanNpmEnv({ PATH: [tc.nodeBinDir, process.env.PATH ?? ''].join(delimiter) });
      run('npm', ['install', '--no-audit', '--no-fund', '--save-exact', spec], { cwd: dir, env });
    }
    for (const p of [tc.node, tc.codeServerEntry]) {
      if (!existsSync(p)) throw new Error(`The install finished but ${p} is missing.`);
    }
    const v = spawnSync(tc.node, ['--version'], { encoding: 'utf8' }).stdout.trim();
    if (v !== `v${NODE_VERSION}`) throw new Error(`${tc.node} reports ${v}, expected v${NODE_VERSION}.`);
  }
  if (!existsSync(tc.chromium)) throw new Error(`${tc.chromium} is missing after installing the Debian package chromium.`);
  const seconds = Math.round((Date.now() - t0) / 100) / 10;
  const written: Marker = { codeServer: CODE_SERVER_VERSION, node: NODE_VERSION, installedAt: new Date().toISOString(), seconds };
  writeFileSync(MARKER, JSON.stringify(written, null, 2));
  log(`installed in ${seconds} s`);
  return tc;
}

if (require.main === module) {
  try {
    const tc = ensureInstalled();
    const marker = readMarker();
    console.log(`[e2e install] node: ${tc.node}`);
    console.log(`[e2e install] code-server: ${tc.codeServerEntry}`);
    console.log(`[e2e install] chromium: ${tc.chromium}`);
    if (marker) console.log(`[e2e install] install took ${marker.seconds} s (at ${marker.installedAt})`);
  } catch (e) {
    console.error(`[e2e install] ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
