/** `least_request`: the power of two choices over the ready slots. */
import type { BalancerImpl, Slot } from "./state.js"

/** xorshift32: a whole number 0..2^32-1. */
export const draw = (b: BalancerImpl): number => {
  let x = b.rng
  x ^= x << 13
  x ^= x >>> 17
  x ^= x << 5
  b.rng = x >>> 0
  return b.rng
}

/**
 * The power of two choices over the ready slots (else the connected ones):
 * two distinct slots drawn uniformly (the second draw skips the first's
 * index), and `better(b, first, second, now)` says which wins (a
 * module-level function: nothing is allocated per pick). A lone slot is
 * picked without a draw; none: undefined.
 */
export const pickOfTwo = (
  b: BalancerImpl,
  now: number,
  better: (b: BalancerImpl, first: Slot, second: Slot, now: number) => Slot
): Slot | undefined => {
  const list = b.nPickable > 0 ? b.pickableList : b.connectedList
  const n = list.length
  if (n === 0) return undefined
  if (n === 1) return list[0]!
  const i = Math.floor((draw(b) / 4294967296) * n)
  let j = Math.floor((draw(b) / 4294967296) * (n - 1))
  if (j >= i) j++
  return better(b, list[i]!, list[j]!, now)
}

/** Calls in flight, and picks not yet started: a burst of picks in one turn must not all see the same counts. */
export const load = (slot: Slot): number => slot.inFlight + slot.pending

/** Fewer calls in flight wins; ties: the first drawn. */
const fewerCalls = (_b: BalancerImpl, first: Slot, second: Slot): Slot => (load(second) < load(first) ? second : first)

export const pickLeastRequest = (b: BalancerImpl): Slot | undefined => pickOfTwo(b, 0, fewerCalls)
