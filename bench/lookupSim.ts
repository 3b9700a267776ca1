/**
 * `npm run bench:lookup-sim`: prompt lookup's drafting on the replay texts (bench/texts), without
 * a model. A replay writes a known text, so which drafts the engine would make and keep is known
 * in advance: the engine's own `PromptLookup` runs on the same token ids as `npm run bench:lookup`
 * replays, and each pass is charged a cost by its width, 1 + s per drafted token. Its tokens per
 * pass match the engine's replay (bench/NOTES.md); the speedup is then a function of s alone.
 *
 * Beside our drafting, two ceilings: the longest match's draft cut to exactly the tokens the
 * text keeps (the best draft length, known in advance), and the best continuation of any earlier
 * place (the best place and length). They say how much a better drafter could still win.
 *
 *   npm run bench:lookup-sim -- [--slopes 0.1,0.15,0.2,0.25]
 */
import { findDraft, PromptLookup, MAX_DRAFT } from '../src/engine/lookup';
import { R1Tokenizer } from '../src/engine/tokenizer';
import { ensureFixture } from '../test/fixtures/models';
import { type Replay, allReplays } from './lookupTexts';

/** What chooses each pass's drafts: `future` is the text still to come (only the ceilings read it). */
export interface SimDrafter {
  draft(context: readonly number[], limit: number, future: readonly number[]): number[];
  record(accepted: number): void;
  measured(width: number, ms: number): void;
}

/** A pass over `width` new tokens costs 1 + slope × (width − 1) one-token steps. */
export function linearCost(slope: number): number[] {
  return Array.from({ length: MAX_DRAFT + 2 }, (_, w) => (w === 0 ? 0 : 1 + slope * (w - 1)));
}

function agreeing(draft: readonly number[], future: readonly number[]): number {
  let a = 0;
  while (a < draft.length && a < future.length && draft[a] === future[a]) a++;
  return a;
}

/**
 * Writes the replay's text pass by pass as generate.ts does: the first token from the prompt's
 * pass, then passes of the pending token plus drafts, each emitting the kept drafts and one
 * token more, the last one the eos. Returns the tokens, passes and their summed cost.
 */
export function simulateReplay(rp: Replay, drafter: SimDrafter, cost: readonly number[]): { tokens: number; passes: number; cost: number; drafted: number; kept: number } {
  const text = rp.textIds;
  const context = [...rp.promptIds, text[0]!];
  let at = 1;
  let passes = 0;
  let total = 0;
  let drafted = 0;
  let kept = 0;
  while (at <= text.length) {
    const room = text.length - at;
    const future = text.slice(at);
    const drafts = room > 0 ? drafter.draft(context, room, future) : [];
    const accepted = agreeing(drafts, future);
    if (drafts.length > 0) drafter.record(accepted);
    const c = cost[1 + drafts.length]!;
    // The engine times its passes; here the time is the cost (40 ms a step, any scale would do).
    drafter.measured(1 + drafts.length, 40 * c);
    passes++;
    total += c;
    drafted += drafts.length;
    kept += accepted;
    for (let i = 0; i <= accepted; i++, at++) if (at < text.length) context.push(text[at]!);
  }
  return { tokens: text.length, passes, cost: total, drafted, kept };
}

/** Our drafting, as the engine runs it. */
export function engineDrafter(): SimDrafter {
  const lookup = new PromptLookup();
  return { draft: (c, limit) => lookup.draft(c, limit), record: (a) => lookup.record(a), measured: (w, ms) => lookup.measured(w, ms) };
}

/** Ceiling: the longest match's draft, cut to the tokens the text keeps (none when it keeps none). */
export function bestLengthDrafter(): SimDrafter {
  return {
    draft: (c, limit, future) => {
      const d = findDraft(c, Math.min(MAX_DRAFT, limit));
      return d ? d.tokens.slice(0, agreeing(d.tokens, future)) : [];
    },
    record: () => undefined,
    measured: () => undefined,
  };
}

/** Ceiling: of every earlier place that follows the context's last token, the one the text agrees with longest. */
export function bestPlaceDrafter(): SimDrafter {
  return {
    draft: (c, limit, future) => {
      const max = Math.min(MAX_DRAFT, limit);
      const n = c.length;
      let best = 0;
      for (let i = n - 2; i >= 0 && best < max; i--) {
        if (c[i] !== c[n - 1]) continue;
        best = Math.max(best, agreeing(c.slice(i + 1, i + 1 + max), future));
      }
      return future.slice(0, best);
    },
    record: () => undefined,
    measured: () => undefined,
  };
}

/** Tokens per unit of cost over a set of replays (the speedup over one token a step), and tokens per pass. */
export function simulatePhase(replays: readonly Replay[], make: () => SimDrafter, cost: readonly number[]): { speedup: number; tokensPerPass: number } {
  let tokens = 0;
  let passes = 0;
  let total = 0;
  for (const rp of replays) {
    const r = simulateReplay(rp, make(), cost);
    tokens += r.tokens;
    passes += r.passes;
    total += r.cost;
  }
  return { speedup: tokens / total, tokensPerPass: tokens / passes };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--slopes');
  const slopes = (i >= 0 ? argv[i + 1]! : '0.1,0.15,0.2,0.25').split(',').map(Number);
  const tok = await R1Tokenizer.fromFolder(await ensureFixture('tokenizer'));
  const replays = allReplays(tok);
  const phases: [string, Replay[]][] = [
    ['answers (real fixes)', replays.filter((r) => r.phase === 'answer')],
    ['reasoning, genuine R1', replays.filter((r) => r.phase === 'reasoning' && r.kind === 'r1')],
    ['reasoning, substitute', replays.filter((r) => r.phase === 'reasoning' && r.kind === 'fix')],
  ];
  const drafters: [string, () => SimDrafter][] = [
    ['our drafting', engineDrafter],
    ['best length known', bestLengthDrafter],
    ['best place and length known', bestPlaceDrafter],
  ];
  const lines = [`| phase, drafter | ${slopes.map((s) => `s = ${s}`).join(' | ')} |`, `|---|${slopes.map(() => '---|').join('')}`];
  for (const [phase, rs] of phases) {
    for (const [name, make] of drafters) {
      const cells = slopes.map((s) => {
        const r = simulatePhase(rs, make, linearCost(s));
        return `${r.speedup.toFixed(2)}x (${r.tokensPerPass.toFixed(2)} a pass)`;
      });
      lines.push(`| ${phase}, ${name} | ${cells.join(' | ')} |`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
