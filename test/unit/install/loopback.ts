/**
 * A loopback HTTP server for the download tests: 127.0.0.1 only, a random port, a bounded number
 * of requests and a bounded lifetime (it stops by itself), a request log, Range support, and
 * fault injection (drop the connection mid-body, stall mid-body, wrong bytes, any status).
 * Also a fake Hugging Face hub and a fake NuGet flat-container feed built on it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DownloadError } from '../../../src/install/errors';

export interface LoggedRequest {
  method: string;
  /** Path and query, as requested. */
  url: string;
  /** Path only. */
  path: string;
  range?: string;
  authorization?: string;
}

export interface RouteContext {
  /** How many earlier requests this route has answered (0 for the first). */
  count: number;
  url: URL;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, ctx: RouteContext) => unknown;

export interface Loopback {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  port: number;
  requests: LoggedRequest[];
  /** Adds a route; the first matching route answers. Unmatched paths get 404. */
  route(match: string | RegExp | ((path: string) => boolean), handler: Handler): void;
  stop(): Promise<void>;
}

export interface LoopbackOptions {
  /** The server stops itself after this long (default 60 s). */
  maxLifetimeMs?: number;
  /** Requests beyond this answer 503 and are not served (default 500). */
  maxRequests?: number;
}

export async function startLoopback(options: LoopbackOptions = {}): Promise<Loopback> {
  const maxRequests = options.maxRequests ?? 500;
  const requests: LoggedRequest[] = [];
  const routes: Array<{ test: (p: string) => boolean; handler: Handler; count: number }> = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push({
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      path: decodeURIComponent(url.pathname),
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    if (requests.length > maxRequests) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('request budget of the test server exceeded');
      return;
    }
    const path = decodeURIComponent(url.pathname);
    const route = routes.find((r) => r.test(path));
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const ctx = { count: route.count++, url };
    Promise.resolve(route.handler(req, res, ctx)).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(e));
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= new Promise<void>((resolve) => {
      clearTimeout(lifetime);
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
    return stopped;
  };
  const lifetime = setTimeout(() => void stop(), options.maxLifetimeMs ?? 60_000);
  lifetime.unref();
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    route(match, handler) {
      const test = typeof match === 'string' ? (p: string) => p === match : match instanceof RegExp ? (p: string) => match.test(p) : match;
      routes.push({ test, handler, count: 0 });
    },
    stop,
  };
}

/** A port on 127.0.0.1 with nothing listening (listened on, then closed). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export interface ServeFaults {
  /** Send this many body bytes, then destroy the connection. */
  dropAfter?: number;
  /** Send this many body bytes, then send nothing more (until the client gives up). */
  stallAfter?: number;
  /** Ignore Range and answer 200 with the whole body. */
  ignoreRange?: boolean;
  /** Bytes per write, with a short pause between writes (to make progress visible). */
  chunkSize?: number;
  chunkDelayMs?: number;
  headers?: Record<string, string>;
}

/** Serves `body` with Range support (206 / 416) and the given faults. */
export function serveBytes(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, faults: ServeFaults = {}): void {
  let start = 0;
  let end = body.length - 1;
  let status = 200;
  const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', ...(faults.headers ?? {}) };
  const range = req.headers.range;
  if (range && !faults.ignoreRange) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (!m || Number(m[1]) >= body.length) {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    start = Number(m[1]);
    if (m[2]) end = Math.min(end, Number(m[2]));
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${body.length}`;
  }
  const slice = body.subarray(start, end + 1);
  headers['content-length'] = slice.length;
  res.writeHead(status, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const limit = faults.dropAfter ?? faults.stallAfter;
  const toSend = limit != null ? slice.subarray(0, Math.min(limit, slice.length)) : slice;
  const finish = () => {
    if (faults.dropAfter != null) res.socket?.destroy();
    else if (faults.stallAfter != null) {
      // Keep the connection open without sending more; the client or stop() closes it.
    } else res.end();
  };
  const chunk = faults.chunkSize ?? 0;
  if (chunk <= 0) {
    res.write(toSend, () => finish());
    return;
  }
  let pos = 0;
  const step = () => {
    if (res.destroyed) return;
    if (pos >= toSend.length) {
      finish();
      return;
    }
    const part = toSend.subarray(pos, pos + chunk);
    pos += part.length;
    res.write(part, () => setTimeout(step, faults.chunkDelayMs ?? 0));
  };
  step();
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function gitBlobSha1(b: Buffer): string {
  return createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

export interface FakeHubFile {
  body: Buffer;
  /** Stored in LFS (listed with lfs.oid = sha256, served through a CDN redirect). */
  lfs?: boolean;
  /** What the listing claims, when it should lie (checksum tests). */
  listedSha256?: string;
  listedSize?: number;
  /** Faults per request number of the file's bytes (0 = first request). */
  faults?: (count: number) => ServeFaults | undefined;
  /** Answer the bytes request with this status instead. */
  status?: number;
}

export interface FakeHubOptions {
  repo: string;
  revision?: string;
  commit?: string;
  files: Record<string, FakeHubFile>;
  /** Entries per page of the tree listing (default 1000: one page). */
  pageSize?: number;
}

/**
 * The hub's API shapes: `/api/models/{repo}/tree/{rev}?recursive=true` (paged with Link rel=next),
 * `/{repo}/resolve/{rev}/{path}` (LFS files redirect to `/cdn/{sha256}`; X-Repo-Commit header).
 */
export function installFakeHub(server: Loopback, o: FakeHubOptions): void {
  const revision = o.revision ?? 'main';
  const commit = o.commit ?? 'a'.repeat(40);
  const entries: Array<Record<string, unknown>> = [];
  const dirs = new Set<string>();
  for (const [path, f] of Object.entries(o.files)) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    const size = f.listedSize ?? f.body.length;
    if (f.lfs) {
      entries.push({ type: 'file', path, size, oid: gitBlobSha1(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(f.body)}\n`)), lfs: { oid: f.listedSha256 ?? sha256(f.body), size, pointerSize: 134 } });
    } else {
      entries.push({ type: 'file', path, size, oid: gitBlobSha1(f.body) });
    }
  }
  for (const d of dirs) entries.push({ type: 'directory', path: d, size: 0, oid: 'd'.repeat(40) });
  entries.sort((a, b) => String(a.path).localeCompare(String(b.path)));
  const pageSize = o.pageSize ?? 1000;
  const treePath = `/api/models/${o.repo}/tree/${revision}`;
  server.route(treePath, (_req, res, ctx) => {
    const cursor = Number(ctx.url.searchParams.get('cursor') ?? '0');
    const page = entries.slice(cursor, cursor + pageSize);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (cursor + pageSize < entries.length) headers.link = `<${server.origin}${treePath}?recursive=true&cursor=${cursor + pageSize}>; rel="next"`;
    res.writeHead(200, headers).end(JSON.stringify(page));
  });
  const resolvePrefix = `/${o.repo}/resolve/${revision}/`;
  const counts = new Map<string, number>();
  const serveFile = (path: string, req: http.IncomingMessage, res: http.ServerResponse) => {
    const f = o.files[path];
    const n = counts.get(path) ?? 0;
    counts.set(path, n + 1);
    if (f.status) {
      res.writeHead(f.status, { 'content-type': 'text/plain' }).end(`status ${f.status}`);
      return;
    }
    serveBytes(req, res, f.body, { ...(f.faults?.(n) ?? {}), headers: { etag: `"${f.lfs ? sha256(f.body) : gitBlobSha1(f.body)}"` } });
  };
  server.route((p) => p.startsWith(resolvePrefix), (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).slice(resolvePrefix.length);
    const f = o.files[path];
    if (!f) {
      res.writeHead(404, { 'content-type': 'text/plain', 'x-error-code': 'EntryNotFound' }).end('Entry not found');
      return;
    }
    if (f.lfs) {
      res.writeHead(302, { location: `/cdn/${sha256(f.body)}/${encodeURIComponent(path)}`, 'x-repo-commit': commit, 'x-linked-size': String(f.body.length) }).end();
      return;
    }
    res.setHeader('x-repo-commit', commit);
    serveFile(path, req, res);
  });
  server.route((p) => p.startsWith('/cdn/'), (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).split('/').slice(3).join('/');
    if (!o.files[path]) {
      res.writeHead(404).end();
      return;
    }
    serveFile(path, req, res);
  });
}

/** Requests for file bytes (resolve or CDN), as repository paths, in order. */
export function fileRequests(server: Loopback, repo: string, revision = 'main'): Array<{ path: string; range?: string; via: 'resolve' | 'cdn' }> {
  const resolvePrefix = `/${repo}/resolve/${revision}/`;
  const out: Array<{ path: string; range?: string; via: 'resolve' | 'cdn' }> = [];
  for (const r of server.requests) {
    if (r.path.startsWith(resolvePrefix)) out.push({ path: r.path.slice(resolvePrefix.length), range: r.range, via: 'resolve' });
    else if (r.path.startsWith('/cdn/')) out.push({ path: r.path.split('/').slice(3).join('/'), range: r.range, via: 'cdn' });
  }
  return out;
}

export interface FakeFeedOptions {
  id: string;
  version: string;
  nupkg: Buffer;
  /** Sidecar content: base64 sha512 by default; null serves no sidecar (404). */
  sidecar?: string | null;
  /** Serve a v3 service index at /v3/index.json with registration + catalog giving this base64 hash. */
  catalogHash?: string;
  faults?: (count: number) => ServeFaults | undefined;
}

/** A NuGet v3 flat container at `/v3-flatcontainer/`, optionally with a service index and catalog. */
export function installFakeFeed(server: Loopback, o: FakeFeedOptions): { feedUrl: string; serviceIndexUrl: string; packagePath: string } {
  const id = o.id.toLowerCase();
  const v = o.version.toLowerCase();
  const packagePath = `/v3-flatcontainer/${id}/${v}/${id}.${v}.nupkg`;
  let n = 0;
  server.route(packagePath, (req, res) => serveBytes(req, res, o.nupkg, o.faults?.(n++) ?? {}));
  const sidecar = o.sidecar === undefined ? createHash('sha512').update(o.nupkg).digest('base64') : o.sidecar;
  if (sidecar !== null) server.route(`${packagePath}.sha512`, (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(sidecar));
  if (o.catalogHash) {
    const regBase = `${server.origin}/v3/registration5-gz-semver2/`;
    server.route('/v3/index.json', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          version: '3.0.0',
          resources: [
            { '@id': `${server.origin}/v3-flatcontainer/`, '@type': 'PackageBaseAddress/3.0.0' },
            { '@id': regBase, '@type': 'RegistrationsBaseUrl/3.6.0' },
          ],
        }),
      );
    });
    server.route(`/v3/registration5-gz-semver2/${id}/${v}.json`, (_req, res) => {
      const body = gzipSync(JSON.stringify({ '@id': `${regBase}${id}/${v}.json`, catalogEntry: `${server.origin}/v3/catalog0/data/${id}.${v}.json`, listed: true }));
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(body);
    });
    server.route(`/v3/catalog0/data/${id}.${v}.json`, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: o.id, version: o.version, packageHash: o.catalogHash, packageHashAlgorithm: 'SHA512' }));
    });
  }
  return { feedUrl: `${server.origin}/v3-flatcontainer/`, serviceIndexUrl: `${server.origin}/v3/index.json`, packagePath };
}

/** A maker of temporary folders (named `prefix…`) that are all removed after the test file. */
export function tempDirs(prefix: string): () => string {
  const roots: string[] = [];
  after(() => {
    for (const d of roots) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    roots.push(d);
    return d;
  };
}

/** Awaits `p` and asserts it fails with a DownloadError of `code`; returns that error. */
export async function rejectsWith(p: Promise<unknown>, code: string): Promise<DownloadError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DownloadError, `expected a DownloadError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected a DownloadError ${code}`);
}
