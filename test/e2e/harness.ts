/**
 * End-to-end harness: R1 Coder installed from its VSIX into a real VS Code (code-server 4.139.1,
 * VS Code 1.139.1), opened on a fixture workspace and driven with playwright-core and Debian's
 * Chromium. Each `E2E.start()` gets its own user-data, extensions and workspace folders, serves on
 * 127.0.0.1 only, and `stop()` ends everything it started (code-server's whole process group,
 * including the extension host and the R1 language server, and the browser).
 *
 * Usage (node:test):
 *   const e2e = await E2E.start({ name: 'basics' });
 *   try { await e2e.runCommand('R1: Show Log'); ... } finally { await e2e.stop(); }
 * or `await withE2E({ name }, async (e2e) => { ... })`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { chromium, type Browser, type Frame, type Locator, type Page } from 'playwright-core';
import { cleanNpmEnv, ensureInstalled, REPO_ROOT, type Toolchain } from './install';

export const RESULTS_DIR = join(REPO_ROOT, 'test-results');
export const FIXTURE_WORKSPACE = join(REPO_ROOT, 'test', 'e2e', 'workspace');
export const SCRIPTED_MODEL = join(REPO_ROOT, '.cache', 'fixtures', 'scripted');
export const EXTENSION_ID = 'r1-coder.r1-coder';

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Settings every run starts from; `E2EOptions.settings` is merged over them (undefined removes a key). */
export function defaultSettings(): Record<string, unknown> {
  return {
    'r1.model.path': SCRIPTED_MODEL,
    'chat.disableAIFeatures': true,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'security.workspace.trust.enabled': false,
    'git.enabled': false,
    'git.openRepositoryInParentFolders': 'never',
    'files.autoSave': 'off',
    'editor.accessibilitySupport': 'off',
    'window.commandCenter': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
  };
}

export interface E2EOptions {
  /** Names the run's screenshots and logs in test-results/ (letters, digits, dashes). */
  name: string;
  settings?: Record<string, unknown>;
  /** Folder copied as the workspace (default test/e2e/workspace); the copy is what VS Code edits. */
  workspace?: string;
  /** Reuse this VSIX instead of packaging (default: package when the sources are newer than the VSIX). */
  vsix?: string;
  /** Also install these VSIX files (e.g. a test-runner extension). */
  extraVsix?: string[];
  /** Chromium window size. */
  viewport?: { width: number; height: number };
  /** Open this folder itself instead of a copy of `workspace` (the product command does). */
  folder?: string;
  /**
   * Keep user data and extensions here across runs instead of a temporary folder (not removed by
   * stop()). Settings are written only when the folder has no settings.json yet.
   */
  stateDir?: string;
  /** Open Chromium and the workbench (default true); false only serves it. */
  browser?: boolean;
  /** Port on 127.0.0.1 (default 0: a free port chosen by code-server). */
  port?: number;
  /**
   * Kill code-server at once on SIGINT/SIGTERM/SIGHUP of this process and exit (default true).
   * Pass false when the caller handles these signals itself and calls stop().
   */
  handleSignals?: boolean;
}

export interface Timings {
  /** code-server process spawned → it printed its listening address. */
  serverStartMs: number;
  /** page.goto → `.monaco-workbench` present. */
  workbenchMs: number;
  /** page.goto → R1's status bar item visible. */
  statusItemMs: number;
}

// ---------------------------------------------------------------------------------------------
// VSIX: package once, reuse while fresh

const VSIX_INPUTS = ['src', 'webview', 'media', 'package.json', '.vscodeignore', 'README.md', 'tsconfig.json', 'scripts/build.mjs', 'scripts/package.mjs'];

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

export function platformTarget(): string {
  return `${process.platform}-${process.arch}`;
}

/** Path of the harness's VSIX for this platform, (re)packaged when any input is newer. */
export function ensureVsix(options: { force?: boolean } = {}): string {
  const vsix = join(REPO_ROOT, '.cache', 'e2e', `r1-coder-${platformTarget()}.vsix`);
  const inputsMtime = Math.max(...VSIX_INPUTS.map((p) => newestMtime(join(REPO_ROOT, p))));
  if (!options.force && existsSync(vsix) && statSync(vsix).mtimeMs > inputsMtime) return vsix;
  const r = spawnSync(process.execPath, ['scripts/package.mjs', '--target', platformTarget(), '--out', vsix], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: cleanNpmEnv(),
  });
  if (r.status !== 0) {
    throw new Error(`Packaging the VSIX failed (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return vsix;
}

// ---------------------------------------------------------------------------------------------
// Processes

/** PIDs of live processes whose command line mentions `marker` (a folder unique to one run). */
function pidsMentioning(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmdline.includes(marker)) pids.push(Number(name));
    } catch {
      // it ended meanwhile
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return condition();
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-');
}

/** Started groups, killed on exit even if a test runner forgets to call stop(). */
const liveGroups = new Set<number>();
function killLiveGroups(): void {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  liveGroups.clear();
}
process.once('exit', killLiveGroups);
let signalsHandled = false;
/** Ctrl+C or a CI timeout (SIGTERM) would end this process without 'exit' handlers: end code-server too. */
function handleSignals(): void {
  if (signalsHandled) return;
  signalsHandled = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.once(signal, () => {
      killLiveGroups();
      process.exit(code);
    });
  }
}

// ---------------------------------------------------------------------------------------------

export class E2E {
  readonly timings: Partial<Timings> = {};
  private screenshotCount = 0;
  private stopped = false;
  private keepRoot = false;
  private codeServerLog = '';

  private constructor(
    readonly name: string,
    readonly toolchain: Toolchain,
    /** Temporary root of this run: user-data/, extensions/, workspace/, config.yaml. */
    readonly root: string,
    readonly workspace: string,
    readonly userDataDir: string,
    readonly extensionsDir: string,
    private codeServer: ChildProcess | undefined,
    private browser: Browser | undefined,
    private _page: Page | undefined,
    public url = '',
  ) {}

  get page(): Page {
    if (!this._page) throw new Error('The browser page is not open.');
    return this._page;
  }

  /** code-server's process id (leader of the process group that holds the extension host). */
  get codeServerPid(): number | undefined {
    return this.codeServer?.pid;
  }

  /**
   * Installs what is missing, packages when needed, installs the VSIX into a fresh extensions
   * folder, starts code-server on a free 127.0.0.1 port and opens the workbench in Chromium.
   * When anything fails on the way, whatever was started is stopped before the error is thrown.
   */
  static async start(options: E2EOptions): Promise<E2E> {
    if (options.handleSignals !== false) handleSignals();
    const toolchain = ensureInstalled();
    const vsix = options.vsix ?? ensureVsix();
    const name = sanitize(options.name);
    const root = options.stateDir ?? mkdtempSync(join(tmpdir(), `r1-e2e-${name}-`));
    const userDataDir = join(root, 'user-data');
    const extensionsDir = join(root, 'extensions');
    const workspace = options.folder ?? join(root, 'workspace');
    mkdirSync(join(userDataDir, 'User'), { recursive: true });
    mkdirSync(extensionsDir, { recursive: true });
    if (!options.folder) copyWorkspace(options.workspace ?? FIXTURE_WORKSPACE, workspace);
    const settingsFile = join(userDataDir, 'User', 'settings.json');
    if (!options.stateDir || !existsSync(settingsFile)) {
      const settings: Record<string, unknown> = { ...defaultSettings(), ...options.settings };
      for (const [k, v] of Object.entries(settings)) if (v === undefined) delete settings[k];
      writeFileSync(settingsFile, JSON.stringify(settings, null, 2));
      // code-server is a remote window: VS Code reads machine-scoped settings (r1.model.path is
      // "machine-overridable") from the remote machine's settings, not from the user's. Write them
      // there too, as a user would in the "Remote" tab of the Settings editor.
      mkdirSync(join(userDataDir, 'Machine'), { recursive: true });
      writeFileSync(join(userDataDir, 'Machine', 'settings.json'), JSON.stringify(settings, null, 2));
    }
    // code-server reads a config file (default ~/.config/code-server): give it its own.
    writeFileSync(join(root, 'config.yaml'), 'auth: none\ncert: false\n');

    const e2e = new E2E(name, toolchain, root, workspace, userDataDir, extensionsDir, undefined, undefined, undefined);
    e2e.keepRoot = options.stateDir !== undefined;
    try {
      for (const file of [vsix, ...(options.extraVsix ?? [])]) e2e.installExtension(file);
      await e2e.startCodeServer(options.port ?? 0);
      if (options.browser !== false) await e2e.openWorkbench(options.viewport ?? { width: 1400, height: 900 });
      return e2e;
    } catch (e) {
      if (e2e._page) await e2e.screenshot('start-failed').catch(() => undefined);
      await e2e.stop();
      throw e;
    }
  }

  private env(): NodeJS.ProcessEnv {
    return cleanNpmEnv({
      PATH: [this.toolchain.nodeBinDir, process.env.PATH ?? ''].join(delimiter),
      // Keep code-server and VS Code away from the user's own folders.
      XDG_CONFIG_HOME: join(this.root, 'xdg-config'),
      XDG_DATA_HOME: join(this.root, 'xdg-data'),
      XDG_CACHE_HOME: join(this.root, 'xdg-cache'),
      VSCODE_AGENT_FOLDER: join(this.root, 'agent'),
    });
  }

  private codeServerArgs(): string[] {
    return [
      this.toolchain.codeServerEntry,
      '--config',
      join(this.root, 'config.yaml'),
      '--user-data-dir',
      this.userDataDir,
      '--extensions-dir',
      this.extensionsDir,
    ];
  }

  private installExtension(vsix: string): void {
    const r = spawnSync(this.toolchain.node, [...this.codeServerArgs(), '--force', '--install-extension', vsix], {
      encoding: 'utf8',
      env: this.env(),
      timeout: 120_000,
    });
    if (r.status !== 0 || !/successfully installed/i.test(r.stdout + r.stderr)) {
      throw new Error(`code-server --install-extension ${vsix} failed (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
    }
  }

  private async startCodeServer(port: number): Promise<void> {
    const t0 = Date.now();
    const args = [
      ...this.codeServerArgs(),
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--disable-proxy',
      '--ignore-last-opened',
      this.workspace,
    ];
    // Own process group (detached), so stop() can end code-server and every process below it.
    const child = spawn(this.toolchain.node, args, { env: this.env(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.codeServer = child;
    if (child.pid !== undefined) liveGroups.add(child.pid);
    const onData = (chunk: Buffer): void => {
      this.codeServerLog += chunk.toString('utf8');
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`code-server did not report its address within 60 s. Output:\n${this.codeServerLog}`)), 60_000);
      const check = (): void => {
        const m = /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+)\/?/.exec(this.codeServerLog);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      child.stdout?.on('data', check);
      child.stderr?.on('data', check);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`code-server exited early (${code ?? signal}). Output:\n${this.codeServerLog}`));
      });
    });
    this.timings.serverStartMs = Date.now() - t0;
    this.url = `${address}/?folder=${encodeURIComponent(this.workspace)}`;
  }

  private async openWorkbench(viewport: { width: number; height: number }): Promise<void> {
    this.browser = await chromium.launch({ executablePath: this.toolchain.chromium, args: CHROMIUM_ARGS, headless: true });
    const context = await this.browser.newContext({ viewport });
    this._page = await context.newPage();
    const t0 = Date.now();
    await this._page.goto(this.url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await this._page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60_000 });
    this.timings.workbenchMs = Date.now() - t0;
    await this.statusItem().waitFor({ state: 'visible', timeout: 60_000 });
    this.timings.statusItemMs = Date.now() - t0;
  }

  // -------------------------------------------------------------------------------------------
  // Helpers for scenarios

  /**
   * "Developer: Reload Window": the workbench shuts down as VS Code does (storage flushed) and
   * comes back with a new extension host, R1 activated again. (A bare page reload can lose the last
   * seconds of workspace state: code-server's browser storage flushes on a timer.)
   */
  async reloadWindow(): Promise<void> {
    const loaded = this.page.waitForEvent('load', { timeout: 60_000 });
    await this.runCommand('Developer: Reload Window');
    await loaded;
    await this.page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60_000 });
    await this.statusItem().waitFor({ state: 'visible', timeout: 60_000 });
  }

  /** R1 Coder's status bar item (its id is `<extension id>.r1.status`). */
  statusItem(): Locator {
    return this.page.locator(`[id="${EXTENSION_ID}.r1.status"]`);
  }

  /**
   * Runs a command through the command palette by its full title, e.g. "R1: Show Log".
   * Picks the row whose label is exactly the title.
   */
  async runCommand(title: string): Promise<void> {
    const page = this.page;
    const input = page.locator('.quick-input-widget .quick-input-box input');
    // A quick input that is closing (Quick Open after openFile, a quick pick just answered) is
    // still "visible" for a moment and takes no typing: let it go first.
    if (await input.isVisible()) await input.waitFor({ state: 'hidden', timeout: 1500 }).catch(() => undefined);
    if (!(await input.isVisible())) {
      await page.locator('.monaco-workbench').click({ position: { x: 5, y: 5 }, force: true }).catch(() => undefined);
      await page.keyboard.press('F1');
    }
    await this.pickCommand(title);
    await input.waitFor({ state: 'hidden', timeout: 15_000 });
  }

  /** With the command palette open: types `title` and clicks the row whose label is exactly it. */
  private async pickCommand(title: string): Promise<void> {
    const page = this.page;
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill(`>${title}`);
    const row = page
      .locator('.quick-input-widget .quick-input-list .monaco-list-row')
      .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRegExp(title)}\\s*$`) }) })
      .first();
    await row.waitFor({ state: 'visible', timeout: 15_000 });
    await row.click();
  }

  /** A notification toast whose message matches `text`; waits until it is visible. */
  async waitForNotification(text: string | RegExp, timeoutMs = 30_000): Promise<Locator> {
    const toast = this.page.locator('.notification-toast-container .notification-list-item', {
      has: this.page.locator('.notification-list-item-message', { hasText: text }),
    });
    await toast.first().waitFor({ state: 'visible', timeout: timeoutMs });
    return toast.first();
  }

  /** Buttons of a notification, by label. */
  notificationButton(toast: Locator, label: string): Locator {
    return toast.locator('.monaco-button', { hasText: label });
  }

  /** Text currently shown in the Output panel's editor (only the rendered lines). */
  async outputText(): Promise<string> {
    const lines = this.page.locator('.part.panel .output-view .view-lines');
    await lines.first().waitFor({ state: 'visible', timeout: 15_000 });
    return (await lines.first().innerText()).replace(/\u00a0/g, ' ');
  }

  /** Waits until the Output panel shows text matching `pattern`, and returns all of it. */
  async waitForOutput(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < end) {
      last = await this.outputText().catch(() => '');
      if (pattern.test(last)) return last;
      await this.page.waitForTimeout(100);
    }
    throw new Error(`The Output panel never showed ${String(pattern)}. Last text:\n${last}`);
  }

  /** Saves a full-page screenshot as test-results/<run name>-<nn>-<label>.png and returns its path. */
  async screenshot(label: string): Promise<string> {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const n = String(++this.screenshotCount).padStart(2, '0');
    const file = join(RESULTS_DIR, `${this.name}-${n}-${sanitize(label)}.png`);
    // Finite CSS transitions (a toast fading in) jump to their end, so the picture is not caught mid-fade.
    await this.page.screenshot({ path: file, timeout: 30_000, animations: 'disabled' });
    return file;
  }

  /**
   * The frame holding the Reasoning view's own document. Webviews are nested iframes in
   * code-server: a host frame (`.../webview/browser/pre/index.html?...&extensionId=r1-coder.r1-coder`)
   * and, inside it, the frame with the extension's HTML. Waits until that inner frame has
   * `selector` (default `#app`, the root the view's script renders into), so call it after the view
   * was opened (e.g. `openReasoningView()`).
   */
  async reasoningFrame(selector = '#app', timeoutMs = 30_000): Promise<Frame> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      for (const frame of this.page.frames()) {
        const host = frame.parentFrame();
        if (!host || !new RegExp(`[?&]extensionId=${escapeRegExp(EXTENSION_ID)}(&|$)`, 'i').test(host.url())) continue;
        if ((await frame.locator(selector).count().catch(() => 0)) > 0) return frame;
      }
      await this.page.waitForTimeout(100);
    }
    throw new Error(`No webview frame of ${EXTENSION_ID} with ${selector} appeared within ${timeoutMs} ms. Frames: ${this.page.frames().map((f) => f.url()).join(', ')}`);
  }

  /** Opens (reveals) the Reasoning view and returns its document's frame. */
  async openReasoningView(selector = '#app'): Promise<Frame> {
    await this.runCommand('R1 Coder: Focus on Reasoning View');
    return this.reasoningFrame(selector);
  }

  /**
   * R1 Coder's activation time as VS Code measured it, read from "Developer: Show Running
   * Extensions" (the editor is closed again afterwards).
   */
  async activationTimeMs(): Promise<number> {
    await this.runCommand('Developer: Show Running Extensions');
    const row = this.page.locator('.runtime-extensions-editor .monaco-list-row', { has: this.page.locator('.name', { hasText: /^R1 Coder$/ }) });
    const cell = row.locator('.activation-time');
    await cell.waitFor({ state: 'visible', timeout: 30_000 });
    const text = await cell.innerText();
    const m = /Activation:\s*([\d.,]+)\s*ms/i.exec(text);
    if (!m) throw new Error(`Unexpected activation cell text: ${text}`);
    await this.screenshot('running-extensions');
    await this.runCommand('View: Close Editor');
    return Number(m[1].replace(/,/g, ''));
  }

  /**
   * Runs a command that asks for text in an input box (e.g. "R1: Ask"): picks `title` in the
   * command palette, waits for the input box titled `inputTitle` (default: `title`), types `text`
   * and presses Enter.
   */
  async runCommandWithInput(title: string, text: string, inputTitle: string | RegExp = title): Promise<void> {
    const page = this.page;
    const widget = page.locator('.quick-input-widget');
    const input = widget.locator('.quick-input-box input');
    await page.locator('.monaco-workbench').click({ position: { x: 5, y: 5 }, force: true }).catch(() => undefined);
    await page.keyboard.press('F1');
    await this.pickCommand(title);
    // The palette closes and the same widget comes back as the command's input box.
    await widget.locator('.quick-input-title', { hasText: inputTitle }).waitFor({ state: 'visible', timeout: 15_000 });
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill(text);
    await input.press('Enter');
    await input.waitFor({ state: 'hidden', timeout: 15_000 });
  }

  /**
   * Drags the sash between the primary side bar and the editor so the side bar is `width` pixels
   * wide (screenshots of the Reasoning view then show whole lines of a diff). The side bar must be
   * visible.
   */
  async setSideBarWidth(width: number): Promise<void> {
    const bar = this.page.locator('.part.sidebar').first();
    await bar.waitFor({ state: 'visible', timeout: 15_000 });
    const box = await bar.boundingBox();
    if (!box) throw new Error('The side bar has no size.');
    // The sash is a thin element of its own near the side bar's right edge: take the nearest.
    const edge = box.x + box.width;
    const sashes = await this.page.locator('.monaco-sash.vertical').evaluateAll((els) =>
      els.map((e) => {
        const r = e.getBoundingClientRect();
        return { x: r.x + r.width / 2, y: r.y + r.height / 2, height: r.height };
      }),
    );
    const sash = sashes.filter((s) => s.height > box.height / 2).sort((a, b) => Math.abs(a.x - edge) - Math.abs(b.x - edge))[0];
    if (!sash || Math.abs(sash.x - edge) > 20) throw new Error(`No sash next to the side bar (its edge is at x=${edge}).`);
    await this.page.mouse.move(sash.x, sash.y);
    await this.page.mouse.down();
    await this.page.mouse.move(sash.x + (width - box.width), sash.y, { steps: 8 });
    await this.page.mouse.up();
    await this.until(`the side bar to be ${width}px wide`, async () => {
      const b = await bar.boundingBox();
      return b !== null && Math.abs(b.width - width) <= 4;
    }, 5_000);
  }

  /** The active editor group's text editor (not the Output panel's). */
  activeEditor(): Locator {
    return this.page.locator('.part.editor .editor-group-container.active .editor-instance .monaco-editor').first();
  }

  /**
   * Text of the active editor as it renders it (lines in order of their position on screen).
   * Only rendered lines count: meant for small fixture files that fit the window.
   */
  async editorText(): Promise<string> {
    const editor = this.activeEditor();
    await editor.locator('.view-lines').waitFor({ state: 'visible', timeout: 15_000 });
    return editor.locator('.view-lines .view-line').evaluateAll((lines) =>
      lines
        .map((l) => ({ top: Number.parseFloat((l as HTMLElement).style.top) || 0, text: (l as HTMLElement).innerText }))
        .sort((a, b) => a.top - b.top)
        .map((l) => l.text.replace(/\u00a0/g, ' ').replace(/\n$/, ''))
        .join('\n'),
    );
  }

  /** Moves the keyboard focus to the active editor ("View: Focus Active Editor Group"). */
  async focusEditor(): Promise<void> {
    await this.runCommand('View: Focus Active Editor Group');
    await this.until('the active editor to have the keyboard focus', () => this.activeEditor().evaluate((e) => e.classList.contains('focused')), 15_000);
  }

  /**
   * Moves the cursor of the active editor to 1-based `line`:`column` (Quick Open's ":line:column")
   * and gives the editor the keyboard focus.
   */
  async goTo(line: number, column = 1): Promise<void> {
    const page = this.page;
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await page.locator('.monaco-workbench').click({ position: { x: 5, y: 5 }, force: true }).catch(() => undefined);
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill(`:${line}:${column}`);
    await input.press('Enter');
    await input.waitFor({ state: 'hidden', timeout: 15_000 });
    await this.until(`the cursor at ${line}:${column}`, async () => {
      const text = await page.locator('.statusbar-item[id="status.editor.selection"]').innerText();
      return new RegExp(`Ln ${line}, Col ${column}\\b`).test(text);
    }, 15_000);
  }

  /** The tab of the open file `path` (workspace-relative; matched by its base name). */
  editorTab(path: string): Locator {
    const base = path.split('/').pop() ?? path;
    return this.page.locator(`.tabs-container .tab[aria-label^="${base}"]`).first();
  }

  /** Whether the tab of `path` shows unsaved changes. */
  async isDirty(path: string): Promise<boolean> {
    return /\bdirty\b/.test((await this.editorTab(path).getAttribute('class')) ?? '');
  }

  /** Saves the active editor (Ctrl+S) and waits until the tab of `path` is no longer dirty. */
  async save(path: string): Promise<void> {
    await this.focusEditor();
    await this.page.keyboard.press('Control+S');
    await this.until(`${path} to be saved`, async () => !(await this.isDirty(path)), 15_000);
  }

  /**
   * PIDs of R1 Coder's language server processes of this run: node processes running the
   * installed extension's dist/server.js.
   */
  serverPids(): number[] {
    return pidsMentioning(this.extensionsDir).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => /[\\/]dist[\\/]server\.js$/.test(arg));
      } catch {
        return false;
      }
    });
  }

  /** Opens a workspace file (path relative to the workspace) in an editor, through Quick Open. */
  async openFile(path: string): Promise<void> {
    const page = this.page;
    await page.keyboard.press('Control+P');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill(path);
    const base = path.split('/').pop() ?? path;
    const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: base }).first();
    await row.waitFor({ state: 'visible', timeout: 15_000 });
    await input.press('Enter');
    await page.locator(`.tabs-container .tab[aria-label^="${base}"]`).first().waitFor({ state: 'visible', timeout: 15_000 });
  }

  /** Absolute path of a file of this run's workspace copy. */
  workspaceFile(path: string): string {
    return join(this.workspace, path);
  }

  /**
   * Polls `probe` until it returns a value other than undefined/false/'' and returns that value;
   * throws with `what` after `timeoutMs`. For conditions no selector expresses.
   */
  async until<T>(what: string, probe: () => Promise<T | undefined | false | ''>, timeoutMs = 30_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < end) {
      try {
        const value = await probe();
        if (value !== undefined && value !== false && value !== '') return value;
      } catch (e) {
        lastError = e;
      }
      await this.page.waitForTimeout(100);
    }
    throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.${lastError ? ` Last error: ${String(lastError)}` : ''}`);
  }

  /** Runs one scenario step; on failure saves a screenshot named after it before rethrowing. */
  async step<T>(label: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      await this.screenshot(`FAILED-${label}`).catch(() => undefined);
      throw e;
    }
  }

  /** Files of this run's VS Code logs whose path matches `pattern` (e.g. /R1 Coder\.log$/). */
  logFiles(pattern: RegExp): string[] {
    const out: string[] = [];
    const walk = (dir: string): void => {
      if (!existsSync(dir)) return;
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (pattern.test(p)) out.push(p);
      }
    };
    walk(join(this.userDataDir, 'logs'));
    return out.sort();
  }

  /** Text of the extension's own log ("R1 Coder" output channel) as VS Code wrote it to disk. */
  extensionLog(): string {
    return this.logFiles(/R1 Coder\.log$/)
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
  }

  /** Resolves when code-server exits (by itself or through stop()). */
  exited(): Promise<void> {
    const child = this.codeServer;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((r) => child.once('exit', () => r()));
  }

  /** Everything code-server printed so far. */
  get serverOutput(): string {
    return this.codeServerLog;
  }

  /** PIDs of processes that still belong to this run (by its unique folder). */
  leftoverPids(): number[] {
    return pidsMentioning(this.root);
  }

  /**
   * Stops the browser and code-server with everything below it, keeps code-server's output and
   * VS Code's logs under test-results/, and removes the run's folder. Safe to call twice.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const errors: string[] = [];
    try {
      await this.browser?.close();
    } catch (e) {
      errors.push(`closing Chromium: ${String(e)}`);
    }
    const child = this.codeServer;
    if (child?.pid !== undefined) {
      const pgid = child.pid;
      const signalGroup = (signal: NodeJS.Signals): void => {
        try {
          process.kill(-pgid, signal);
        } catch {
          // the group is gone
        }
      };
      const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
      signalGroup('SIGTERM');
      const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
      if (!done) signalGroup('SIGKILL');
      // Children of the group (extension host, language server) may outlive the leader briefly.
      await waitUntil(() => !groupAlive(pgid), 5_000);
      if (groupAlive(pgid)) signalGroup('SIGKILL');
      liveGroups.delete(pgid);
    }
    // Anything this run started that left the process group (setsid) still names the run's folder.
    for (const pid of this.leftoverPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitUntil(() => this.leftoverPids().every((p) => !alive(p)), 5_000);
    try {
      if (!this.keepRoot) this.keepLogs();
    } catch (e) {
      errors.push(`keeping logs: ${String(e)}`);
    }
    if (!this.keepRoot) rmSync(this.root, { recursive: true, force: true, maxRetries: 3 });
    if (errors.length > 0) console.warn(`[e2e ${this.name}] while stopping: ${errors.join('; ')}`);
  }

  private keepLogs(): void {
    const dir = join(RESULTS_DIR, 'logs', this.name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'code-server.log'), this.codeServerLog);
    const logs = join(this.userDataDir, 'logs');
    if (existsSync(logs)) cpSync(logs, join(dir, 'vscode'), { recursive: true });
  }

  /** Where a path of this run's workspace is, relative to it (for messages). */
  relative(path: string): string {
    return relative(this.workspace, path);
  }
}

/** Copies a fixture workspace; `name.ts.fixture` becomes `name.ts` (see test/e2e/workspace/README.md). */
export function copyWorkspace(from: string, to: string): void {
  cpSync(from, to, { recursive: true });
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.fixture')) renameSync(p, p.slice(0, -'.fixture'.length));
    }
  };
  walk(to);
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Runs `fn` against a fresh code-server, always stopping it afterwards. */
export async function withE2E<T>(options: E2EOptions, fn: (e2e: E2E) => Promise<T>): Promise<T> {
  const e2e = await E2E.start(options);
  try {
    return await fn(e2e);
  } catch (e) {
    await e2e.screenshot('failure').catch(() => undefined);
    throw e;
  } finally {
    await e2e.stop();
  }
}
