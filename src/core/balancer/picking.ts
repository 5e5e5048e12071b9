/** Picks: the round robin, and the end of an event-loop turn. */
import type { Balancer } from "./state.js"
import { type BalancerImpl, impl } from "./state.js"
import { pickEwma } from "./ewma.js"
import { avoid, dueProbe, isHung, probeRound } from "./hung.js"
import { pickLeastRequest } from "./leastRequest.js"
import { redirected } from "./replacement.js"
import { NONE, type Slot } from "./state.js"

/**
 * The next call's slot id, or -1 when the channel is not READY or the call
 * must wait (queue) for a fresh connection (see "Retries after a connection
 * ends" in the module doc; the channel publishes its state again when it
 * may be picked).
 * `round_robin`: the next ready slot of the ring, O(log32 n).
 * `least_request`: of two ready slots drawn at random, the one with fewer
 * calls in flight, O(1). `ewma`: of two, the one with the lower peak-EWMA
 * latency x (calls in flight + 1), O(1). In every mode a connection found
 * hung (see the module doc) is taken out of the picks on the way, and a
 * hung one due for its probe gets the pick. A pick redirected to a fresh
 * connection costs up to O(its address's count) more. Allocation-free.
 *
 * `now` (since 0.3.0): the time on the events' clock (default: the latest
 * time the balancer was given); the hung rule and `ewma` read it.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * const b = Balancer.make({ startWaitMs: 0 })
 * const [slot] = Balancer.step(b, { _tag: "Addresses", now: 0, target: "pass:///a:1", endpoints: [{ address: "a:1", count: 1 }], overCap: "fail", offset: 0 }).create
 * Balancer.step(b, { _tag: "StateChanged", now: 1, slot: slot!.id, state: "READY" })
 * Balancer.pick(b, 2) // slot!.id
 * ```
 *
 * @category picking
 * @since 0.2.0
 */
export const pick = (balancer: Balancer, now?: number): number => {
  const b = impl(balancer)
  const t = now === undefined || !(now >= b.now) ? b.now : (b.now = now)
  // After a publish grpc-js first picks again, at once, every call it queued: those come first.
  const again = b.replay > 0
  if (again) b.replay--
  let id = b.state !== "READY" ? -1 : pickByMode(b, t)
  if (id >= 0 && b.redirecting && (again || b.redirect > 0)) {
    // A retry of this turn, or a call that waited (it may be one): to a fresh connection.
    if (!again) b.redirect--
    id = redirected(b, b.byId[id]!)
  }
  if (id < 0) b.queuedCalls++
  return id
}

/** The mode's pick, skipping (and marking) connections found hung; a due probe first. */
const pickByMode = (b: BalancerImpl, now: number): number => {
  if (b.nHung > 0) {
    const probe = probeRound(b) ?? dueProbe(b, now)
    if (probe !== undefined) return counted(b, probe)
  }
  // Each round marks one more connection hung (amortized O(1): marked once per hang); when none
  // is left pickable the readiness fallback picks among the connected ones, hung or not.
  for (;;) {
    const slot = b.pickMode === "round_robin" ? pickRoundRobin(b) : b.pickMode === "ewma" ? pickEwma(b, now) : pickLeastRequest(b)
    if (slot === undefined) return -1
    if (slot.waiting >= 3 && slot.pickable && isHung(b, slot, now)) {
      avoid(b, slot, now)
      continue
    }
    return b.pickMode === "round_robin" ? slot.id : counted(b, slot)
  }
}

/** A load-aware pick counts as in flight on its slot until its call starts or the turn ends. */
const counted = (b: BalancerImpl, slot: Slot): number => {
  if (b.pickMode !== "round_robin") {
    slot.pending++
    b.pendingSlots.push(slot)
  }
  return slot.id
}

export const pickRoundRobin = (b: BalancerImpl): Slot | undefined => {
  const bits = b.nPickable > 0 ? b.pickableBits : b.nConnected > 0 ? b.connectedBits : undefined
  if (bits === undefined) return undefined
  let p = bits.next(b.cursor)
  if (p < 0) p = bits.next(0)
  b.cursor = p + 1 === b.ring.length ? 0 : p + 1
  return b.ring[p]!
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
 * Returns the trace lines of the picks and call ends since the last call
 * (hung connections avoided and back; empty unless the `trace` option is
 * on): write them as a step's `trace`.
 *
 * @category picking
 * @since 0.2.0
 */
export const settlePicks = (balancer: Balancer): ReadonlyArray<string> => {
  const b = impl(balancer)
  b.redirect = 0
  b.replay = 0
  const list = b.pendingSlots
  if (list.length > 0) {
    for (let i = 0; i < list.length; i++) list[i]!.pending = 0
    list.length = 0
  }
  if (b.notes.length === 0) return NONE
  const notes = b.notes
  b.notes = []
  return notes
}
