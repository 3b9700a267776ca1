/**
 * Prompt-lookup drafting: the next tokens are guessed from an earlier place in the prompt or the
 * generated text that ends like the text so far. A fix copies most of the user's code and R1's
 * reasoning quotes it, so the guess is often right for many tokens in a row; the generation loop
 * (generate.ts) then checks all of them in one forward pass and keeps those the model itself would
 * have chosen (exactly: see acceptance there).
 *
 * A pass over more tokens costs more (the CPU's 4-bit matrix kernels are not free per row: 1.17x a
 * step for 2 tokens, 1.60x for 4, 2.46x for 8, 4.24x for 16 on the 1.5B shapes after a Fix prompt),
 * so how many tokens to draft is a bet: the expected tokens per pass over the pass's cost. The
 * odds are learnt while generating, per strength of the match (how many tokens before the cursor
 * agree with the earlier place), and the cost is measured on this machine as passes run.
 */

/** The longest draft: a 17-token pass is the widest the cost table knows. */
export const MAX_DRAFT = 16;
/** Shortest match that drafts at all: a single token matches too much to predict anything. */
export const MIN_MATCH = 2;
/** Matches are measured up to this many tokens (longer ones are as good). */
const MAX_MATCH = 32;
/** How far back the search looks (tokens): the whole context of any model we run. */
const MAX_SEARCH = 1 << 17;

/**
 * A pass's cost relative to a one-token step, by its width (new tokens), before this machine's
 * own passes are measured: the 1.5B shapes on a 2-core x64 CPU after 4,500 cached tokens, the
 * length of a Fix prompt (`npm run bench:lookup -- --pass-cost --context 4500`: 1.17x, 1.60x,
 * 2.46x, 4.24x at 2, 4, 8, 16; bench/NOTES.md), between them by straight lines. After 1,024
 * tokens a pass is cheaper (1.04x, 1.34x, 2.06x, 3.61x, bench/results.md); the 7B shapes measured
 * 1.10x, 1.41x, 2.19x, 3.77x there.
 */
export const DEFAULT_PASS_COST: readonly number[] = [0, 1, 1.17, 1.39, 1.6, 1.82, 2.03, 2.25, 2.46, 2.68, 2.9, 3.13, 3.35, 3.57, 3.79, 4.02, 4.24, 4.46];

/** Match strength buckets: 2, 3, 4–7, 8–15, 16+ tokens. */
function bucketOf(match: number): number {
  if (match <= 2) return 0;
  if (match === 3) return 1;
  if (match < 8) return 2;
  if (match < 16) return 3;
  return 4;
}

/** The prior of each bucket, as (accepted, rejected) pseudo-counts: stronger matches start more trusted. */
const PRIOR: ReadonlyArray<readonly [number, number]> = [
  [1, 1],
  [2, 1],
  [3, 1],
  [4, 1],
  [6, 1],
];
/** Older passes weigh less: the text moves between copying and writing. */
const DECAY = 0.9;
/**
 * A kind of match that does not pay is still tried now and then (one draft token, 1.2x a step) in
 * case the text now copies: after this many chances, doubling after each failed try up to REST_MAX
 * (a cost of about 1% of the steps at most), back to this after a try that held.
 */
const REST_FIRST = 16;
const REST_MAX = 128;

export interface Draft {
  tokens: number[];
  /** How many tokens before the cursor matched (the bucket the outcome is learnt in). */
  match: number;
}

/**
 * The longest earlier match of the context's last tokens, and the tokens that followed it there.
 * Ties go to the latest place (the text being copied right now).
 */
export function findDraft(context: readonly number[], max: number): Draft | undefined {
  const n = context.length;
  if (n < MIN_MATCH + 1 || max <= 0) return undefined;
  const last = context[n - 1]!;
  let best = 0;
  let at = -1;
  const stop = Math.max(0, n - 1 - MAX_SEARCH);
  for (let i = n - 2; i >= stop; i--) {
    if (context[i] !== last) continue;
    let m = 1;
    while (m < MAX_MATCH && i - m >= 0 && context[i - m] === context[n - 1 - m]) m++;
    if (m > best) {
      best = m;
      at = i;
      if (m === MAX_MATCH) break;
    }
  }
  if (best < MIN_MATCH) return undefined;
  const tokens = context.slice(at + 1, Math.min(n, at + 1 + max));
  return tokens.length > 0 ? { tokens, match: best } : undefined;
}

/**
 * Checks a pass's drafts against the model, exactly. `choose(r)` picks the token the model emits
 * after the pass's tokens up to draft r (row 0: before any draft): the argmax when greedy, else a
 * draw from that position's distribution, one draw per emitted token as without drafts. A draft is
 * kept while it equals that choice; the first choice that differs, or the choice after the last
 * draft, is emitted too. With a point-mass draft this is speculative sampling's rule: draft d is
 * kept with probability p(d), and on rejection the token comes from p without d, renormalized.
 * `take(tok)` receives each emitted token in order and returns false to stop (eos, a limit, or
 * the thinking budget's closing tokens replacing the rest). Returns how many drafts were kept.
 */
export function verifyDrafts(drafts: readonly number[], choose: (row: number) => number, take: (tok: number) => boolean): number {
  let accepted = 0;
  for (let r = 0; r <= drafts.length; r++) {
    const tok = choose(r);
    if (!take(tok) || r === drafts.length || tok !== drafts[r]) break;
    accepted++;
  }
  return accepted;
}

/** Expected tokens a pass emits with `k` drafts each right with probability `p`, given the earlier ones were: 1 + p + … + p^k. */
export function expectedTokens(p: number, k: number): number {
  let e = 1;
  let t = 1;
  for (let i = 0; i < k; i++) {
    t *= p;
    e += t;
  }
  return e;
}

/** The draft length that maximizes expected tokens per unit of cost (0: not worth a wider pass). */
export function bestDraftLength(p: number, cost: readonly number[], max: number): number {
  let best = 0;
  let bestRate = 1 / cost[1]!;
  for (let k = 1; k <= max && k + 1 < cost.length; k++) {
    const rate = expectedTokens(p, k) / cost[k + 1]!;
    if (rate > bestRate * 1.0001) {
      best = k;
      bestRate = rate;
    }
  }
  return best;
}

export class PromptLookup {
  private readonly accepted = PRIOR.map((x) => x[0]);
  private readonly rejected = PRIOR.map((x) => x[1]);
  /** Relative pass cost by width; widths measured here replace the defaults (see measured()). */
  private readonly cost: number[];
  private readonly ms: number[] = [];
  private pending?: Draft;
  /** Per bucket: chances passed up since its last draft, and how many to pass up before a try. */
  private readonly idle = PRIOR.map(() => 0);
  private readonly rest = PRIOR.map(() => REST_FIRST);
  /** Whether the pending draft is such a try. */
  private trying = false;

  constructor(
    private readonly maxDraft = MAX_DRAFT,
    private readonly defaultCost: readonly number[] = DEFAULT_PASS_COST,
  ) {
    this.cost = defaultCost.slice();
  }

  /** The probability the bucket's next draft token is right, as learnt so far. */
  odds(match: number): number {
    const b = bucketOf(match);
    return this.accepted[b]! / (this.accepted[b]! + this.rejected[b]!);
  }

  /**
   * The tokens to check in the next pass after `context` (prompt + generated, the last token not
   * yet run), at most `limit`: empty when nothing matches or a wider pass would not pay.
   */
  draft(context: readonly number[], limit: number): number[] {
    this.pending = undefined;
    const max = Math.min(limit, this.maxDraft);
    if (max <= 0) return [];
    const d = findDraft(context, max);
    if (!d) return [];
    const b = bucketOf(d.match);
    let k = bestDraftLength(this.odds(d.match), this.cost, Math.min(max, d.tokens.length));
    this.trying = false;
    if (k === 0) {
      if (++this.idle[b]! < this.rest[b]!) return [];
      k = 1;
      this.trying = true;
    }
    this.idle[b] = 0;
    d.tokens.length = k;
    this.pending = d;
    return d.tokens;
  }

  /** Learns from the last draft: `accepted` of its tokens were the model's own. */
  record(accepted: number): void {
    const d = this.pending;
    this.pending = undefined;
    if (!d) return;
    const b = bucketOf(d.match);
    if (this.trying) this.rest[b] = accepted > 0 ? REST_FIRST : Math.min(this.rest[b]! * 2, REST_MAX);
    this.trying = false;
    this.accepted[b] = this.accepted[b]! * DECAY + accepted;
    this.rejected[b] = this.rejected[b]! * DECAY + (accepted < d.tokens.length ? 1 : 0);
  }

  /**
   * Learns this machine's pass cost: `width` new tokens took `ms`. Each width's time is a moving
   * average; the relative cost of a width is its time over the one-token step's, once both are known.
   */
  measured(width: number, ms: number): void {
    if (width < 1 || width >= this.cost.length || !(ms > 0)) return;
    const prev = this.ms[width];
    this.ms[width] = prev === undefined ? ms : prev * 0.8 + ms * 0.2;
    const one = this.ms[1];
    if (one === undefined) return;
    for (let w = 2; w < this.cost.length; w++) {
      const t = this.ms[w];
      // A wider pass never costs less than a narrower one: noise must not make it look free.
      this.cost[w] = Math.max(t === undefined ? this.defaultCost[w]! : t / one, this.cost[w - 1]!);
    }
  }
}
