/**
 * `ewma`: the power of two choices by peak-EWMA latency (Finagle's and
 * linkerd's "peak EWMA", go-zero's p2c_ewma): of two distinct ready
 * connections drawn uniformly, the one with the lower estimate x (calls in
 * flight + 1) wins. Every connection is a candidate, so at equal latency an
 * address with more connections gets more calls (`#N` keeps its meaning).
 *
 * The estimate of a connection:
 * - a sample (a call's start to its end, in ms) above the decayed estimate
 *   replaces it (the peak: a slowdown counts at once); one below blends in
 *   with weight `1 - exp(-dt / tau)`, dt the time since the previous sample
 *   (so a connection that gets few calls learns from each), but at least
 *   1/16: with the time weight alone, a connection that answers hundreds of
 *   calls a second would keep its highest sample for seconds, and on a
 *   busy host (scheduling noise of tens of ms) every fast connection would
 *   look as slow as its worst recent call (measured: the slow backend's
 *   share in bench/adaptive.ts (c) went from 14-20% to 6-9%);
 * - as the picks read it, it decays toward 0 with time constant tau
 *   (`ewmaDecayMs`, 10 s) since its last sample: a connection that lost the
 *   comparisons and gets no calls becomes cheap again and is tried (the way
 *   back for idle ones);
 * - a sample counts at most 4 times the larger of the estimate and the
 *   pool's typical latency: one long-lived stream ending (a whole life as
 *   one sample) moves it fourfold, not a thousandfold, while a backend
 *   that really slowed down reaches its latency within a few calls;
 * - a connection without a sample yet (new, or READY anew) costs a penalty
 *   instead: the larger of the pool's typical latency (a time-weighted
 *   average of all samples over about tau; {@link EWMA_INITIAL_MS} while the
 *   pool has none) and, while it has calls in flight, the age of the first
 *   call started since its last answer, at most 4 times the former; times
 *   (calls in flight + 1). So at pool start, with no sample anywhere, the
 *   picks spread as `least_request`'s, and a connection whose calls are not
 *   answered (frozen, or slower than the others) grows dearer as they wait
 *   instead of drawing every call at cost 0 (Finagle's penalty of an
 *   unmeasured node);
 * - a call that ended unanswered (failed fast, cancelled, deadline passed)
 *   counts as a sample at that cap (4 times the larger of the estimate and
 *   the typical latency), and only if that raises the estimate: a backend
 *   that fails in 1 ms looks slow, not fast (no black hole).
 *
 * Costs are read at the pick's `now`; O(1), allocation-free.
 */
import { load, pickOfTwo } from "./leastRequest.js"
import type { BalancerImpl, Slot } from "./state.js"

/** Smallest weight of a sample below the estimate (see the module doc). */
export const EWMA_MIN_WEIGHT = 1 / 16

/** Largest factor one sample may raise the estimate by (see the module doc). */
export const EWMA_SAMPLE_CAP = 4

/**
 * The penalty estimate (ms) of a connection without a sample while the pool
 * has no sample at all (see the module doc).
 */
export const EWMA_INITIAL_MS = 100

/** The connection's estimate at `now`: decayed toward 0 since its last sample; the penalty while it has none. */
export const estimate = (b: BalancerImpl, slot: Slot, now: number): number => {
  if (!slot.sampled) {
    const base = b.typical > 0 ? b.typical : EWMA_INITIAL_MS
    const age = slot.inFlight > 0 && slot.waiting > 0 ? now - slot.firstFrom : 0
    return age > base ? Math.min(age, EWMA_SAMPLE_CAP * base) : base
  }
  const dt = now - slot.ewmaAt
  return dt > 0 ? slot.ewma * Math.exp(-dt / b.options.ewmaDecayMs) : slot.ewma
}

const cost = (b: BalancerImpl, slot: Slot, now: number): number => estimate(b, slot, now) * (load(slot) + 1)

/** The lower cost wins; equal costs (no samples yet): fewer calls in flight, as least_request; then the first drawn. */
const cheaper = (b: BalancerImpl, first: Slot, second: Slot, now: number): Slot => {
  const c1 = cost(b, first, now)
  const c2 = cost(b, second, now)
  return c2 < c1 || (c2 === c1 && load(second) < load(first)) ? second : first
}

export const pickEwma = (b: BalancerImpl, now: number): Slot | undefined => pickOfTwo(b, now, cheaper)

/**
 * One latency sample of a call on `slot` that ended at `now`. An unanswered
 * end (`answered` false) only raises a measured estimate to its latency.
 */
export const observe = (b: BalancerImpl, slot: Slot, latencyMs: number, now: number, answered = true): void => {
  if (!(latencyMs >= 0) || !Number.isFinite(latencyMs)) return
  const tau = b.options.ewmaDecayMs
  const base = Math.max(slot.ewma, b.typical)
  const sample = base > 0 ? Math.min(latencyMs, EWMA_SAMPLE_CAP * base) : latencyMs
  if (!answered) {
    // Counted as slow as a sample may be (its latency says nothing of the backend's): raises only.
    const slow = EWMA_SAMPLE_CAP * (base > 0 ? base : EWMA_INITIAL_MS)
    if (slow > estimate(b, slot, now)) {
      slot.ewma = slow
      slot.ewmaAt = now
      slot.sampled = true
    }
    return
  }
  const w = Math.min(Math.exp(-Math.max(0, now - slot.ewmaAt) / tau), 1 - EWMA_MIN_WEIGHT)
  // The peak: a sample above the (decayed) estimate replaces it; one below blends in (no second decay:
  // a steady latency is its own estimate).
  if (!slot.sampled || sample > estimate(b, slot, now)) slot.ewma = sample
  else slot.ewma = slot.ewma * w + sample * (1 - w)
  slot.ewmaAt = now
  slot.sampled = true
  // The pool's typical latency: a time-weighted average over about tau.
  if (b.typical === 0) b.typical = sample
  else {
    const v = Math.exp(-Math.max(0, now - b.typicalAt) / tau)
    b.typical = b.typical * v + sample * (1 - v)
  }
  b.typicalAt = now
}

/** A connection READY anew has no sample: it costs the penalty until its first answer. */
export const startEstimate = (b: BalancerImpl, slot: Slot, now: number): void => {
  slot.ewma = b.typical
  slot.ewmaAt = now
  slot.sampled = false
}
