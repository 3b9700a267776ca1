/**
 * The prepared CPU model. ONNX Runtime's MatMulNBits computes in float32 when its
 * `accuracy_level` attribute is absent or 0 (how transformers.js's quantizer leaves q4 exports),
 * and with int8 dot products when it is 4: on a 2-core x64 machine the linear layers of the 1.5B
 * model take 188 ms a token at level 0 and 43 ms at level 4. ONNX Runtime 1.30 has no session
 * option that overrides the attribute, so on the CPU the engine writes a copy of the model once,
 * with accuracy_level 4 on those nodes, and loads that copy from then on. The same copy gets graph
 * rewrites that save work at run time (GraphRewrites: logits of the last position(s) only, new KV
 * rows only, MatMulNBits sharing an input fused into one wider node, and each layer's attention as
 * one GroupQueryAttention node, attention.ts). The attention rewrite is the one that
 * depends on the export's inner structure, so it is kept only when `PrepareOptions.verify`
 * (check.ts) finds the same logits as a copy without it.
 *
 * The copy is streamed: the ModelProto is walked at the protobuf field level, only NodeProto
 * messages of the graph (and the headers of initializers) are decoded and re-encoded, and the
 * weights (2 GB for the 1.5B q4 file) are copied through byte for byte in chunks, also when fusion
 * concatenates them. Memory stays a few MB.
 *
 * Where: next to nothing the user owns. Models without external data go to a cache folder
 * (`LoadOptions.cacheDir`, else the user cache: `$XDG_CACHE_HOME/r1-coder/prepared`,
 * `~/Library/Caches/r1-coder/prepared`, `%LOCALAPPDATA%\r1-coder\prepared`), named by a key over
 * the source's path, size, mtime and first MB, so a changed source is prepared again; older copies
 * of the same source are removed. Models with external data files are prepared next to the source
 * (relative data paths must resolve) when that folder is writable, else not at all.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, rename, rm, stat, statfs, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { AttentionShape } from './attention';
import type { PreparedStep } from '../types';
import { DECODE_MAX_TOKENS, DECODE_MIN_SLOTS } from './decodeAttention';
import { type Plan, planRewrite } from './plan';
import { FileReader, type Segment } from './protobuf';
import { CPU_ACCURACY_LEVEL, type GraphRewrites, wantedRewrites } from './rewrites';

/** Why a model is used as it is when no rewrite applies (not worth a note). */
export const NOTHING_TO_PREPARE = 'no MatMulNBits node without accuracy_level, and no other rewrite applies to a quantized graph';

/** Bump when the rewrite changes, so older prepared copies are not reused. */
export const PREPARE_VERSION = 8;

export interface PrepareOptions extends GraphRewrites {
  /** Folder for prepared copies (default: the user cache folder, see defaultPrepareCacheDir). */
  cacheDir?: string;
  /** accuracy_level written on MatMulNBits nodes that have none (or 0). Default 4. */
  accuracyLevel?: number;
  /** config.json's attention numbers: without them the attention is not rewritten. */
  attentionShape?: AttentionShape;
  /**
   * Compares a copy without the attention rewrite (`plain`) and one with it (`candidate`): resolves
   * to undefined when they compute the same logits, else to why not. Without it the attention is
   * not rewritten: the rewrite anchors on an export we cannot inspect, so it is kept only when this
   * check passes on the user's own model.
   */
  verify?: (plain: string, candidate: string) => Promise<string | undefined>;
  /** What the verdict of `verify` depends on (its own version, ONNX Runtime's): part of the prepared copy's key. */
  verifyVersion?: string;
}

export interface PrepareResult {
  /** The file to load: the prepared copy, or the source when nothing needed (or could be) prepared. */
  file: string;
  prepared: boolean;
  /** True when an earlier prepared copy was reused. */
  reused: boolean;
  /** MatMulNBits nodes rewritten (0 when the copy was reused or nothing needed rewriting). */
  rewrittenNodes: number;
  /** Set when the copy was written now: the graph rewrites applied. */
  lastLogits?: boolean;
  kvNewRows?: boolean;
  /** MatMulNBits nodes that now run as fewer, wider nodes (e.g. q/k/v → one), and into how many. */
  fusedMatMuls?: { from: number; to: number };
  /** Layers whose attention runs as GroupQueryAttention in the copy (0 when not rewritten or rejected). */
  attentionLayers?: number;
  /** Layers whose decode passes read the KV slots in place (decodeAttention.ts; 0 when not made or rejected). */
  decodeAttentionLayers?: number;
  /** Why the attention rewrites were made but not kept (the verify check failed). */
  attentionRejected?: string;
  /** Why no prepared copy is used, when `prepared` is false. */
  reason?: string;
  /** What each step of the copy did, or why it does not apply (kept beside the copy for reuse). */
  steps?: PreparedStep[];
  ms: number;
}

/** The report of each step, from the plan that was kept. */
function describeSteps(plan: Plan, level: number, rejected?: { why: string; candidate: Plan }): PreparedStep[] {
  const w = plan.why;
  /** A checked rewrite's step when the check rejected the copy with it: why, or why the candidate did not make it. */
  const notKept = (made: number, why: string | undefined) => (rejected && made > 0 ? `rewritten but not kept: ${rejected.why}` : (why ?? 'off'));
  return [
    plan.rewritten > 0
      ? { step: 'int8 compute', applied: true, detail: `${plan.rewritten} MatMulNBits nodes at accuracy_level ${level}` }
      : { step: 'int8 compute', applied: false, detail: 'every MatMulNBits node already has an accuracy level (set by the export)' },
    plan.lastLogits ? { step: 'last-position logits', applied: true, detail: 'lm_head runs on the last position only (on the last few when prompt lookup checks drafted tokens)' } : { step: 'last-position logits', applied: false, detail: w.lastLogits ?? 'off' },
    plan.kvNewRows
      ? { step: 'new KV rows only', applied: true, detail: 'present.* carry only the rows of the run; the engine keeps the KV cache' }
      : { step: 'new KV rows only', applied: false, detail: w.kvNewRows ?? 'off' },
    plan.fusedMatMuls.from > 0
      ? { step: 'fused matrix products', applied: true, detail: `${plan.fusedMatMuls.from} MatMulNBits nodes sharing an input run as ${plan.fusedMatMuls.to}` }
      : { step: 'fused matrix products', applied: false, detail: w.fuseMatMuls ?? 'off' },
    plan.attentionLayers > 0
      ? { step: 'fused attention', applied: true, detail: `the attention of ${plan.attentionLayers} layers runs as GroupQueryAttention, checked against the copy without it` }
      : { step: 'fused attention', applied: false, detail: rejected ? notKept(rejected.candidate.attentionLayers, rejected.candidate.why.attention) : (w.attention ?? 'off') },
    plan.decodeAttentionLayers > 0
      ? { step: 'decode attention', applied: true, detail: `decode passes of up to ${DECODE_MAX_TOKENS} tokens over ${DECODE_MIN_SLOTS} or more cached tokens read the KV cache in place (${plan.decodeAttentionLayers} layers), checked against the copy without it` }
      : { step: 'decode attention', applied: false, detail: rejected ? notKept(rejected.candidate.decodeAttentionLayers, rejected.candidate.why.decodeAttention) : (w.decodeAttention ?? 'off') },
  ];
}

/** The steps report kept beside a prepared copy. */
function stepsFile(copy: string): string {
  return `${copy}.steps.json`;
}

async function readSteps(copy: string): Promise<PreparedStep[] | undefined> {
  try {
    const v = JSON.parse(await readFile(stepsFile(copy), 'utf8')) as unknown;
    return Array.isArray(v) ? (v as PreparedStep[]) : undefined;
  } catch {
    return undefined;
  }
}

/** The platform's user cache folder for prepared models. */
export function defaultPrepareCacheDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (platform === 'win32') return join(env.LOCALAPPDATA || join(homedir(), 'AppData', 'Local'), 'r1-coder', 'prepared');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'r1-coder', 'prepared');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'r1-coder', 'prepared');
}

/** Writes `segments` to `out`: bytes, ranges of the source `src`, and ranges of its external data files (beside `srcPath`). */
async function writeSegments(src: FileHandle, srcPath: string, out: FileHandle, segments: Segment[]): Promise<void> {
  const chunk = Buffer.alloc(8 << 20);
  const dataFiles = new Map<string, FileHandle>();
  let outPos = 0;
  try {
    for (const s of segments) {
      if (s instanceof Uint8Array) {
        await out.write(s, 0, s.length, outPos);
        outPos += s.length;
        continue;
      }
      let from = src;
      if (s.file !== undefined) {
        from = dataFiles.get(s.file) ?? (await open(join(dirname(srcPath), s.file), 'r'));
        dataFiles.set(s.file, from);
      }
      for (let done = 0; done < s.len; ) {
        const n = Math.min(chunk.length, s.len - done);
        const { bytesRead } = await from.read(chunk, 0, n, s.from + done);
        if (bytesRead !== n) throw new Error(`the model file${s.file ? ` (${s.file})` : ''} changed while it was being prepared`);
        await out.write(chunk, 0, n, outPos);
        outPos += n;
        done += n;
      }
    }
  } finally {
    for (const h of dataFiles.values()) await h.close().catch(() => undefined);
  }
}

function hasExternalData(file: string): boolean {
  try {
    const base = basename(file);
    return readdirSync(dirname(file)).some((n) => n !== base && n.startsWith(base) && !n.includes('.tmp-'));
  } catch {
    return false;
  }
}

/** Removes temporary copies (`.tmp-<pid>-…`) left by a process that no longer runs (killed mid-write or mid-check). */
async function removeStaleTemporaries(dir: string): Promise<void> {
  for (const n of readdirSync(dir)) {
    const m = /^\.tmp-(\d+)-/.exec(n);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') await unlink(join(dir, n)).catch(() => undefined);
    }
  }
}

/**
 * Returns the file to load on the CPU: a prepared copy (made now, or reused) with accuracy_level
 * `level` on every MatMulNBits node that had none, or the source itself when no node needs it or a
 * copy cannot be written (then `reason` says why). Never throws for the source being unpreparable;
 * it throws only for I/O errors reading the source.
 */
export async function prepareModelForCpu(file: string, opts: PrepareOptions = {}): Promise<PrepareResult> {
  const t0 = performance.now();
  const level = opts.accuracyLevel ?? CPU_ACCURACY_LEVEL;
  const src = resolve(file);
  const done = (r: Omit<PrepareResult, 'ms'>): PrepareResult => ({ ...r, ms: Math.round(performance.now() - t0) });
  const st = await stat(src);
  const fh = await open(src, 'r');
  try {
    const head = Buffer.alloc(Math.min(st.size, 1 << 20));
    await fh.read(head, 0, head.length, 0);
    const key = createHash('sha256').update(JSON.stringify({ v: PREPARE_VERSION, level, ...wantedRewrites(opts), attention: opts.verify && opts.attentionShape ? { shape: opts.attentionShape, check: opts.verifyVersion } : undefined, path: src, size: st.size, mtime: st.mtimeMs })).update(head).digest('hex');
    const external = hasExternalData(src);
    const dir = external ? dirname(src) : resolve(opts.cacheDir ?? defaultPrepareCacheDir());
    const pathTag = createHash('sha256').update(src).digest('hex').slice(0, 8);
    const name = external ? `${basename(src, '.onnx')}.r1-prepared-${key.slice(0, 12)}.onnx` : `${pathTag}-${key.slice(0, 12)}-${basename(src)}`;
    const target = join(dir, name);
    if (existsSync(target)) {
      const t = await stat(target).catch(() => undefined);
      if (t && t.size > 0) return done({ file: target, prepared: true, reused: true, rewrittenNodes: 0, steps: await readSteps(target) });
    }
    const reader = new FileReader(fh, st.size);
    const shape = opts.verify ? opts.attentionShape : undefined;
    let plan = await planRewrite(reader, level, opts, shape);
    if (!plan.changed) return done({ file: src, prepared: false, reused: false, rewrittenNodes: 0, reason: NOTHING_TO_PREPARE });
    const LIMIT = 0x7fffffff;
    // Fused weights are written into the copy itself; when a model keeps its weights in external
    // data (a 7B, say) that can pass protobuf's 2 GB: then the copy does without the fusion.
    let fuse = opts.fuseMatMuls;
    if (plan.outputSize > LIMIT && plan.fusedMatMuls.from > 0) {
      const size = plan.outputSize;
      fuse = false;
      plan = await planRewrite(reader, level, { ...opts, fuseMatMuls: false }, shape);
      plan.why.fuseMatMuls = `the fused weights would make the copy ${(size / 1e9).toFixed(2)} GB, past protobuf's 2 GB limit (they are written into the copy; the model's own weights stay in its data file)`;
    }
    // With the attention rewritten, a copy without it is written too, as the reference (and the
    // fallback) of the verify check.
    let plain = plan.attentionLayers > 0 || plan.decodeAttentionLayers > 0 ? await planRewrite(reader, level, { ...opts, fuseMatMuls: fuse, attention: false }) : undefined;
    if (plain && plan.outputSize > LIMIT) [plan, plain] = [plain, undefined]; // the rotary tables push it over: no rewrite
    if (plan.outputSize > LIMIT || (plain?.outputSize ?? 0) > LIMIT) return done({ file: src, prepared: false, reused: false, rewrittenNodes: 0, reason: 'the prepared model would exceed the 2 GB protobuf limit' });
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      return done({ file: src, prepared: false, reused: false, rewrittenNodes: 0, reason: `cannot create ${dir}: ${(e as Error).message}` });
    }
    await removeStaleTemporaries(dir);
    try {
      const fs = await statfs(dir);
      const free = Number(fs.bavail) * Number(fs.bsize) - (64 << 20);
      if (plain && free < plan.outputSize + plain.outputSize) [plan, plain] = [plain, undefined]; // room for one copy only: no rewrite
      if (free < plan.outputSize) {
        return done({ file: src, prepared: false, reused: false, rewrittenNodes: 0, reason: `not enough free space in ${dir} (${((free + (64 << 20)) / 1e9).toFixed(2)} GB free, ${(plan.outputSize / 1e9).toFixed(2)} GB needed)` });
      }
    } catch {
      // statfs unsupported: try anyway
    }
    /** Writes `segments` to a temporary file in `dir` and returns its path; nothing is left on failure. */
    const write = async (segments: Segment[]): Promise<string> => {
      const tmp = join(dir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}-${name}`);
      let out: FileHandle | undefined;
      try {
        out = await open(tmp, 'w');
        await writeSegments(fh, src, out, segments);
        await out.close();
        return tmp;
      } catch (e) {
        await out?.close().catch(() => undefined);
        await rm(tmp, { force: true }).catch(() => undefined);
        throw e;
      }
    };
    let chosen = plan;
    let attentionRejected: string | undefined;
    const temporaries: string[] = [];
    try {
      const candidate = await write(plan.segments);
      temporaries.push(candidate);
      let keep = candidate;
      if (plain) {
        const reference = await write(plain.segments);
        temporaries.push(reference);
        attentionRejected = await opts.verify!(reference, candidate).catch((e: unknown) => `the check failed to run: ${(e as Error).message.split('\n')[0]}`);
        if (attentionRejected) [chosen, keep] = [plain, reference];
      }
      await writeFile(stepsFile(target), JSON.stringify(describeSteps(chosen, level, attentionRejected ? { why: attentionRejected, candidate: plan } : undefined), null, 1));
      await rename(keep, target);
    } catch (e) {
      return done({ file: src, prepared: false, reused: false, rewrittenNodes: 0, reason: `cannot write the prepared copy in ${dir}: ${(e as Error).message}` });
    } finally {
      for (const t of temporaries) await rm(t, { force: true }).catch(() => undefined);
    }
    // Older copies of the same source.
    if (!external) {
      for (const n of readdirSync(dir)) {
        const copy = n.endsWith('.steps.json') ? n.slice(0, -'.steps.json'.length) : n;
        if (copy !== name && copy.startsWith(`${pathTag}-`) && copy.endsWith(`-${basename(src)}`)) await unlink(join(dir, n)).catch(() => undefined);
      }
    } else {
      const prefix = `${basename(src, '.onnx')}.r1-prepared-`;
      for (const n of readdirSync(dir)) if (n !== name && n !== basename(stepsFile(name)) && n.startsWith(prefix)) await unlink(join(dir, n)).catch(() => undefined);
    }
    return done({
      file: target,
      prepared: true,
      reused: false,
      rewrittenNodes: chosen.rewritten,
      lastLogits: chosen.lastLogits,
      kvNewRows: chosen.kvNewRows,
      fusedMatMuls: chosen.fusedMatMuls,
      attentionLayers: chosen.attentionLayers,
      decodeAttentionLayers: chosen.decodeAttentionLayers,
      attentionRejected,
      steps: describeSteps(chosen, level, attentionRejected ? { why: attentionRejected, candidate: plan } : undefined),
    });
  } finally {
    await fh.close();
  }
}
