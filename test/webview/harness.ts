/**
 * Runs the built Reasoning view (dist/webview.js + dist/webview.css) in headless Chromium, in the
 * very HTML shell and CSP the extension serves (`webviewHtml` from src/protocol/webview.ts), with
 * a stub `acquireVsCodeApi` whose messages reach a fake host in this Node process. The fake host
 * validates requests with the real `parseWebviewMessage` and keeps its records with the real
 * `applyNotification`, as ReasoningViewProvider does.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import {
  applyNotification,
  parseWebviewMessage,
  webviewHtml,
  type ExchangeRecord,
  type HostNotificationMessage,
  type HostNotifications,
  type WebviewRequestMessage,
  type WebviewRequestName,
} from '../../src/protocol/webview';
import { THEMES, type ThemeName } from './themes';

export const root = join(__dirname, '..', '..');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function newestSource(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    newest = Math.max(newest, st.isDirectory() ? newestSource(p) : st.mtimeMs);
  }
  return newest;
}

/**
 * Makes sure dist/webview.js and dist/webview.css are current. `npm run build` produces them;
 * when they are missing or older than their sources, this builds just the webview entry with the
 * options of scripts/build.mjs.
 */
export async function ensureWebviewBundle(): Promise<void> {
  const js = join(root, 'dist/webview.js');
  const css = join(root, 'dist/webview.css');
  const sources = Math.max(newestSource(join(root, 'webview')), statSync(join(root, 'src/protocol/webview.ts')).mtimeMs);
  if (existsSync(js) && existsSync(css) && Math.min(statSync(js).mtimeMs, statSync(css).mtimeMs) >= sources) return;
  await esbuild.build({
    absWorkingDir: root,
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    sourcemap: 'linked',
    legalComments: 'inline',
    logLevel: 'warning',
    entryPoints: [
      { in: 'webview/main.ts', out: 'webview' },
      { in: 'webview/main.css', out: 'webview' },
    ],
    outdir: 'dist',
  });
}

export interface Served {
  origin: string;
  nonce: string;
  /** Every path the page asked the server for. */
  requests: string[];
  close(): Promise<void>;
}

/** Serves the shell at `/` (fresh nonce per load) and the bundles under `/dist/`. Loopback only. */
export async function serve(): Promise<Served> {
  const requests: string[] = [];
  let origin = '';
  const served: Served = { origin: '', nonce: '', requests, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    requests.push(url.pathname);
    if (url.pathname === '/') {
      served.nonce = randomBytes(18).toString('base64');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(webviewHtml({ cspSource: origin, nonce: served.nonce, scriptUri: `${origin}/dist/webview.js`, styleUri: `${origin}/dist/webview.css` }));
      return;
    }
    const file = { '/dist/webview.js': 'text/javascript', '/dist/webview.css': 'text/css', '/dist/webview.js.map': 'application/json', '/dist/webview.css.map': 'application/json' }[url.pathname];
    if (file) {
      res.writeHead(200, { 'content-type': file, 'cache-control': 'no-store' });
      res.end(readFileSync(join(root, url.pathname.slice(1))));
      return;
    }
    // Chromium asks for a favicon of a top-level page; a webview frame does not.
    res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  served.origin = origin;
  served.close = () => new Promise((resolve) => server.close(() => resolve()));
  return served;
}

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`No Chromium at ${CHROMIUM}. Install Debian's: apt-get install -y chromium (or set CHROMIUM_PATH).`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

type Handler = (params: never) => unknown;

/** The extension host, as far as the view can tell. */
export class FakeHost {
  readonly records: ExchangeRecord[] = [];
  /** Requests the view sent, validated, in order. */
  readonly requests: WebviewRequestMessage[] = [];
  /** Messages that failed validation. */
  readonly malformed: string[] = [];
  /** Per-method replies; a handler that throws makes an error reply. */
  readonly handlers: Partial<Record<WebviewRequestName, Handler>> = {};
  /** Holds back the reply to `history/get` while set. */
  historyGate: Promise<void> | undefined;
  page!: Page;

  async notify<K extends keyof HostNotifications>(method: K, params: HostNotifications[K]): Promise<void> {
    const n = { type: 'notification', method, params } as HostNotificationMessage;
    applyNotification(this.records, n);
    await this.page.evaluate((m) => window.postMessage(m, '*'), JSON.parse(JSON.stringify(n)) as unknown);
  }

  /** Requests of one method the view sent so far. */
  sent<K extends WebviewRequestName>(method: K): Extract<WebviewRequestMessage, { method: K }>[] {
    return this.requests.filter((r): r is Extract<WebviewRequestMessage, { method: K }> => r.method === method);
  }

  async receive(raw: unknown): Promise<void> {
    const parsed = parseWebviewMessage(raw);
    if (!parsed.ok) {
      this.malformed.push(parsed.reason);
      return;
    }
    const m = parsed.message;
    this.requests.push(m);
    let reply: unknown;
    try {
      if (m.method === 'history/get') {
        if (this.historyGate) await this.historyGate;
        reply = { type: 'reply', requestId: m.requestId, result: { exchanges: this.records } };
      } else {
        const h = this.handlers[m.method];
        reply = { type: 'reply', requestId: m.requestId, result: h ? await h(m.params as never) : null };
      }
    } catch (e) {
      reply = { type: 'error', requestId: m.requestId, error: { code: 'failed', message: e instanceof Error ? e.message : String(e) } };
    }
    await this.page.evaluate((msg) => window.postMessage(msg, '*'), JSON.parse(JSON.stringify(reply)) as unknown).catch(() => undefined);
  }
}

export interface ViewPage {
  context: BrowserContext;
  page: Page;
  host: FakeHost;
  /** Console errors, page errors and requests that left the loopback server. */
  problems: string[];
  cspViolations(): Promise<unknown[]>;
}

const stub = readFileSync(join(__dirname, 'page', 'vscodeStub.js'), 'utf8');

/** A sidebar-sized page with the view loaded in `theme`. */
export async function openView(browser: Browser, served: Served, theme: ThemeName = 'dark', host = new FakeHost()): Promise<ViewPage> {
  const context = await browser.newContext({ viewport: { width: 420, height: 900 }, deviceScaleFactor: 1, reducedMotion: 'reduce' });
  const page = await context.newPage();
  host.page = page;
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(served.origin)) problems.push(`request left the page's origin: ${r.url()}`);
  });
  await page.exposeBinding('__r1HostReceive', (_source, msg: unknown) => {
    void host.receive(msg);
  });
  await page.addInitScript(stub);
  const t = THEMES[theme];
  // A string, not a function: the page must not depend on helpers of this file's compiler.
  await page.addInitScript(`(() => {
    const t = ${JSON.stringify({ bodyClass: t.bodyClass, kind: t.kind, vars: t.vars })};
    const wait = new MutationObserver(() => {
      if (!document.body) return;
      wait.disconnect();
      for (const [k, v] of Object.entries(t.vars)) document.documentElement.style.setProperty(k, v);
      // The webview frame is transparent over the side bar; paint the side bar behind it.
      document.documentElement.style.setProperty('background', t.vars['--vscode-sideBar-background']);
      document.body.classList.add(t.bodyClass);
      document.body.dataset.vscodeThemeKind = t.kind;
    });
    wait.observe(document, { childList: true, subtree: true });
  })();`);
  await page.goto(`${served.origin}/`);
  await page.waitForFunction(() => document.querySelector('.composer') !== null);
  return {
    context,
    page,
    host,
    problems,
    cspViolations: () => page.evaluate(() => (window as unknown as { __cspViolations: unknown[] }).__cspViolations),
  };
}

/** Polls `fn` until it returns a truthy value. */
export async function until<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
