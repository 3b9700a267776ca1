/**
 * Helpers for the Reasoning view (R1 Coder's webview) in end-to-end scenarios: find the exchange a
 * request added, wait for its status, read what it shows, press its buttons, and record the order
 * in which its parts first appeared.
 *
 * The view renders one `<article class="exchange" data-id=… data-status=…>` per request (newest
 * last) with `.rs-text` (reasoning), `.answer`, `.proposal.state-<pending|accepted|rejected>`,
 * `.ex-error`, `.ex-stats` and the buttons `.ex-cancel`, `.ex-insert`, `.pr-accept`, `.pr-reject`.
 * The webview can be rebuilt when it is hidden and shown again, so every helper looks the frame up
 * again instead of keeping one.
 */
import type { Frame, Locator } from 'playwright-core';
import type { E2E } from './harness';

export type ExchangeStatus = 'queued' | 'generating' | 'complete' | 'cancelled' | 'length' | 'error';

/** What one exchange shows, read from the DOM. */
export interface ExchangeSnapshot {
  id: string;
  status: string;
  reasoning: string;
  answer: string;
  stats: string;
  error: string;
  proposalState?: string;
  proposalMessage: string;
  /** The check's badge (`Checking…`, `Checked`, `1 new problem`, `Not checked`), '' when none. */
  check: string;
  /** The problems the check lists, one line each. */
  checkProblems: string;
  /** Why the exchange proposes no edit, '' when it does not say. */
  notice: string;
}

/** Which part of an exchange appeared first, and when (ms, the page's clock). */
export interface PartEvent {
  id: string;
  part: 'reasoning' | 'answer' | 'stats';
  at: number;
}

export class ReasoningView {
  constructor(private readonly e2e: E2E) {}

  /** The view's document frame (reveals the view when `open` is true). */
  async frame(open = false): Promise<Frame> {
    return open ? this.e2e.openReasoningView() : this.e2e.reasoningFrame();
  }

  /** Ids of the exchanges shown, oldest first. */
  async ids(): Promise<string[]> {
    const frame = await this.frame();
    return frame.locator('article.exchange').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.id ?? ''));
  }

  /** Waits for an exchange whose id is not in `before` and returns its id. */
  async waitForNew(before: readonly string[], timeoutMs = 30_000): Promise<string> {
    return this.e2e.until(
      'a new exchange in the Reasoning view',
      async () => (await this.ids()).find((id) => !before.includes(id)),
      timeoutMs,
    );
  }

  async exchange(id: string): Promise<Locator> {
    return (await this.frame()).locator(`article.exchange[data-id="${id}"]`);
  }

  async snapshot(id: string): Promise<ExchangeSnapshot> {
    const el = await this.exchange(id);
    // One evaluate, so the parts belong to the same moment. No named helpers inside: tsx would
    // wrap them in a helper the page does not have.
    const parts = await el.evaluate((a) => [
      ...['.rs-text', '.answer', '.ex-stats', '.ex-error', '.proposal .pr-message', '.proposal .ck-badge', '.proposal .ck-problems', '.ex-notice'].map((sel) => {
        const e = a.querySelector<HTMLElement>(sel);
        return e && (sel === '.rs-text' || !e.hidden) ? (e.textContent ?? '').trim() : '';
      }),
      (a as HTMLElement).dataset.status ?? '',
      a.querySelector('.proposal')?.className ?? '',
    ]);
    const [status, proposalClass] = [parts[8], parts[9]];
    return {
      id,
      status,
      reasoning: parts[0],
      answer: parts[1],
      stats: parts[2],
      error: parts[3],
      proposalState: /\bstate-(\w+)/.exec(proposalClass)?.[1],
      proposalMessage: parts[4],
      check: parts[5],
      checkProblems: parts[6],
      notice: parts[7],
    };
  }

  /** Waits until exchange `id` has one of `statuses` and returns what it shows then. */
  async waitForStatus(id: string, statuses: ExchangeStatus | ExchangeStatus[], timeoutMs = 60_000): Promise<ExchangeSnapshot> {
    const want = Array.isArray(statuses) ? statuses : [statuses];
    return this.e2e.until(
      `exchange ${id} to be ${want.join(' or ')}`,
      async () => {
        const s = await this.snapshot(id);
        return want.includes(s.status as ExchangeStatus) ? s : undefined;
      },
      timeoutMs,
    );
  }

  /** Waits until `probe` holds for what exchange `id` shows. */
  async waitFor(id: string, what: string, probe: (s: ExchangeSnapshot) => boolean, timeoutMs = 60_000): Promise<ExchangeSnapshot> {
    return this.e2e.until(
      `exchange ${id}: ${what}`,
      async () => {
        const s = await this.snapshot(id);
        return probe(s) ? s : undefined;
      },
      timeoutMs,
    );
  }

  /** Clicks a button (by class, e.g. `pr-accept`) of exchange `id`. */
  async click(id: string, buttonClass: string): Promise<void> {
    const b = (await this.exchange(id)).locator(`vscode-button.${buttonClass}`).first();
    await b.waitFor({ state: 'visible', timeout: 15_000 });
    // A proposal's Accept is disabled until its check answers.
    await this.e2e.until(`${buttonClass} of ${id} to be enabled`, async () => !(await b.evaluate((e) => e.hasAttribute('disabled'))), 60_000);
    await b.click();
  }

  /** Opens the reasoning disclosure of exchange `id` (it closes by itself when the answer starts). */
  async openReasoning(id: string): Promise<void> {
    const el = await this.exchange(id);
    if (!(await el.locator('details.reasoning').evaluate((d) => (d as HTMLDetailsElement).open))) {
      await el.locator('summary.rs-summary').click();
    }
  }

  /**
   * Starts recording, in the view's page, when each exchange's reasoning, answer and final stats
   * (with tok/s and the provider) first appear. Read with `partEvents()`. Call while the view is
   * visible and before starting the request.
   */
  async recordParts(): Promise<void> {
    const frame = await this.frame();
    // A string, not a function: tsx's transform would add helpers the page does not have.
    await frame.evaluate(RECORD_PARTS_SCRIPT);
  }

  /** What `recordParts()` saw for exchange `id`, in order. */
  async partEvents(id: string): Promise<PartEvent[]> {
    const frame = await this.frame();
    const all = (await frame.evaluate('window.__r1Parts || []')) as PartEvent[];
    return all.filter((e) => e.id === id);
  }
}

/** Page script of `recordParts()`: a MutationObserver noting each exchange part's first appearance. */
const RECORD_PARTS_SCRIPT = `(() => {
  if (window.__r1Parts) return;
  const events = [];
  window.__r1Parts = events;
  const seen = new Set();
  function note(id, part) {
    if (seen.has(id + '/' + part)) return;
    seen.add(id + '/' + part);
    events.push({ id, part, at: performance.now() });
  }
  function check() {
    for (const a of document.querySelectorAll('article.exchange')) {
      const id = a.dataset.id || '';
      const reasoning = a.querySelector('.rs-text');
      if (reasoning && reasoning.textContent.trim()) note(id, 'reasoning');
      const answer = a.querySelector('.answer');
      if (answer && !answer.hidden && answer.textContent.trim()) note(id, 'answer');
      const stats = a.querySelector('.ex-stats');
      const s = stats && !stats.hidden ? stats.textContent : '';
      if (/tok\\/s/.test(s) && /\\bcpu\\b/.test(s)) note(id, 'stats');
    }
  }
  new MutationObserver(check).observe(document.getElementById('app') || document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  check();
})()`;
