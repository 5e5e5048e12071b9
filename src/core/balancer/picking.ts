/** Picks: the round robin, and the end of an event-loop turn. */
import type { Balancer } from "./state.js"
import { type BalancerImpl, impl } from "./state.js"
import { pickLeastRequest } from "./leastRequest.js"
import { redirected } from "./replacement.js"

/**
 * The next call's slot id, or -1 when the channel is not READY or the call
 * must wait (queue) for a fresh connection (see "Retries after a connection
 * ends" in the module doc; the channel publishes its state again when it
 * may be picked).
 * `round_robin`: the next ready slot of the ring, O(log32 n).
 * `least_request`: of two ready slots drawn at random, the one with fewer
 * calls in flight, O(1). A pick redirected to a fresh connection costs up
 * to O(its address's count) more. Allocation-free.
 *
 * @category picking
 * @since 0.2.0
 */
export const pick = (balancer: Balancer): number => {
  const b = impl(balancer)
  // After a publish grpc-js first picks again, at once, every call it queued: those come first.
  const again = b.replay > 0
  if (again) b.replay--
  let id = b.state !== "READY" ? -1 : b.pickMode === "least_request" ? pickLeastRequest(b) : pickRoundRobin(b)
  if (id >= 0 && b.redirecting && (again || b.redirect > 0)) {
    // A retry of this turn, or a call that waited (it may be one): to a fresh connection.
    if (!again) b.redirect--
    id = redirected(b, b.byId[id]!)
  }
  if (id < 0) b.queuedCalls++
  return id
}

export const pickRoundRobin = (b: BalancerImpl): number => {
  const bits = b.nPickable > 0 ? b.pickableBits : b.nConnected > 0 ? b.connectedBits : undefined
  if (bits === undefined) return -1
  let p = bits.next(b.cursor)
  if (p < 0) p = bits.next(0)
  b.cursor = p + 1 === b.ring.length ? 0 : p + 1
  return b.ring[p]!.id
}

/**
 * Ends an event-loop turn: call it once per turn after picks or connectivity
 * events (e.g. from `setImmediate`). It forgets the `least_request` picks
 * whose calls never started (grpc-js starts a picked call after its
 * credentials resolve, so {@link callStarted} follows a pick by a few
 * microtasks, and a call may be re-picked or fail before it starts; until a
 * call starts, its pick counts as in flight on its slot, so picks made in
 * one burst spread instead of all seeing the same counts), and the picks
 * left to redirect after a connection ended (grpc-js made the retries of
 * its refused calls within the turn). O(picks since the last call).
 *
 * @category picking
 * @since 0.2.0
 */
export const settlePicks = (balancer: Balancer): void => {
  const b = impl(balancer)
  b.redirect = 0
  b.replay = 0
  const list = b.pendingSlots
  if (list.length === 0) return
  for (let i = 0; i < list.length; i++) list[i]!.pending = 0
  list.length = 0
}
