/**
 * The names a prepared graph (rewrites.ts) adds, which the engine's decoder reads at run time
 * (../kvSlots.ts, ../session.ts, ../modelFolder.ts). A leaf: it imports nothing.
 */

/**
 * The symbolic dim a prepared graph's `present.*` outputs carry in place of the total length: they
 * hold only the key/value rows of the tokens of this run, [batch, kv_heads, seq, head_dim]. The
 * engine then keeps the cache itself (../kvSlots.ts).
 */
export const KV_NEW_ROWS_DIM = 'r1_new_sequence_length';

/**
 * The int64 [1] input of a prepared graph (the last-position logits rewrite): how many of the last
 * positions lm_head runs on and the logits cover, [batch, count, vocab]. 1 for a decode step; a
 * prompt-lookup pass feeds its drafted tokens + 1 (../lookup.ts).
 */
export const LOGIT_COUNT_INPUT = 'r1_logit_count';
