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

export const pickLeastRequest = (b: BalancerImpl): Slot | undefined => {
  const list = b.nPickable > 0 ? b.pickableList : b.connectedList
  const n = list.length
  if (n === 0) return undefined
  if (n === 1) return list[0]!
  // Two distinct slots, uniform: the second draw skips the first's index.
  const i = Math.floor((draw(b) / 4294967296) * n)
  let j = Math.floor((draw(b) / 4294967296) * (n - 1))
  if (j >= i) j++
  const first = list[i]!
  const second = list[j]!
  // Picks not yet started count too: a burst of picks in one turn must not all see the same counts.
  return second.inFlight + second.pending < first.inFlight + first.pending ? second : first
}
