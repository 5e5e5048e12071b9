/** Adaptive counts: call accounting, growth when an address is saturated, shrink checks. */
import { pushDeadline } from "./deadlines.js"
import type { Wanted } from "./admission.js"
import { observe } from "./ewma.js"
import { callAnswered, integrate, unansweredWhileHung } from "./hung.js"
import { rebuildRing } from "./ring.js"
import { type AddressState, type Balancer, type BalancerImpl, impl, type Out, slotOf } from "./state.js"

/**
 * Counts a call started on slot `id` (the slot a pick returned; grpc-js's
 * `onCallStarted`). O(1). Returns `true` when the slot's address has an
 * adaptive count below its maximum, every one of its connections carries at
 * least `maxStreamsPerConnection` calls and some call waits for a stream:
 * then send a `CallsWaiting` event (soon, not from inside the pick) to open
 * one more connection. Call it only for a slot still in the pool: after a
 * slot's `remove`, drop its calls' events (its counts went with it).
 * `now` (since 0.3.0): the time on the events' clock (default: the latest
 * time the balancer was given); the hung rule reads it.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * const b = Balancer.make({ startWaitMs: 0, maxStreamsPerConnection: 1 })
 * const [slot] = Balancer.step(b, { _tag: "Addresses", now: 0, target: "pass:///a:1#1..2", endpoints: [{ address: "a:1", count: 1, maxCount: 2 }], overCap: "fail", offset: 0 }).create
 * Balancer.step(b, { _tag: "StateChanged", now: 1, slot: slot!.id, state: "READY" })
 * Balancer.callStarted(b, Balancer.pick(b)) // false: one call, one stream
 * Balancer.callStarted(b, Balancer.pick(b)) // true: a call waits
 * Balancer.step(b, { _tag: "CallsWaiting", now: 2 }).create // [{ id, address: "a:1", index: 1 }]
 * ```
 *
 * @category events
 * @since 0.2.0
 */
export const callStarted = (balancer: Balancer, id: number, now?: number): boolean => {
  const b = impl(balancer)
  const slot = slotOf(b, id)
  if (slot === undefined) return false
  const t = now === undefined || !(now >= b.now) ? b.now : (b.now = now)
  const limit = b.options.maxStreamsPerConnection
  const address = slot.address
  if (slot.pending > 0) slot.pending--
  // The hung rule's and ewma's bookkeeping, skipped when neither is in use.
  if (b.options.hungAfterMs > 0 || b.pickMode === "ewma") {
    integrate(address, t)
    if (slot.waiting === 0) slot.firstFrom = t
    if (slot.waiting++ === 1) slot.secondFrom = t
    slot.lastStart = t
  }
  const n = ++slot.inFlight
  address.inFlight++
  if (n === limit) address.full++
  else if (n === limit + 1) address.over++
  if (address.count > address.min && address.inFlight > (address.count - 1) * limit) address.busy = true
  if (
    address.max > address.count && !address.growWanted && address.full === address.count && address.over > 0 &&
    address.retainedUntil === 0 && b.total < b.options.maxConnections
  ) {
    address.growWanted = true
    b.growQueue.push(address)
    return true
  }
  return false
}

/**
 * Counts the end of a call {@link callStarted} counted (grpc-js's
 * `onCallEnded`). O(1); never goes below zero. Since 0.3.0: `now` as in
 * {@link callStarted}; `answered` (default `true`): the server responded
 * (any status but the ones a client makes up when it gets no answer:
 * DEADLINE_EXCEEDED, CANCELLED, UNAVAILABLE), which is what the hung rule
 * waits for; `latencyMs`: the call's start to its end, when the caller
 * knows it (the policy measures it in `ewma` mode), the `ewma` sample.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * const b = Balancer.make({ startWaitMs: 0 })
 * const [slot] = Balancer.step(b, { _tag: "Addresses", now: 0, target: "pass:///a:1?pick=ewma", endpoints: [{ address: "a:1", count: 1 }], overCap: "fail", offset: 0, pick: "ewma" }).create
 * Balancer.step(b, { _tag: "StateChanged", now: 1, slot: slot!.id, state: "READY" })
 * const id = Balancer.pick(b, 10)
 * Balancer.callStarted(b, id, 10)
 * Balancer.callEnded(b, id, 13, true, 3) // answered after 3 ms
 * ```
 *
 * @category events
 * @since 0.2.0
 */
export const callEnded = (balancer: Balancer, id: number, now?: number, answered = true, latencyMs?: number): void => {
  const b = impl(balancer)
  const slot = slotOf(b, id)
  if (slot === undefined || slot.inFlight === 0) return
  const t = now === undefined || !(now >= b.now) ? b.now : (b.now = now)
  const limit = b.options.maxStreamsPerConnection
  const address = slot.address
  const timed = b.options.hungAfterMs > 0 || b.pickMode === "ewma"
  if (timed) integrate(address, t)
  const n = slot.inFlight--
  address.inFlight--
  if (n === limit) address.full--
  else if (n === limit + 1) address.over--
  if (!timed) return
  if (answered) callAnswered(b, slot, t)
  else if (slot.hung) unansweredWhileHung(slot)
  if (latencyMs !== undefined && b.pickMode === "ewma") observe(b, slot, latencyMs, t, answered)
}

/** Grows each queued address by one connection if it is still saturated (one attempt at a time). */
export const onCallsWaiting = (b: BalancerImpl, out: Out): void => {
  const queue = b.growQueue
  if (queue.length === 0) return
  b.growQueue = []
  let grown = false
  let total = b.total
  for (const address of queue) {
    address.growWanted = false
    if (b.addresses.get(address.address) !== address) continue
    // Re-checked: calls may have ended since callStarted asked.
    // An address kept only by the mass-removal grace is on its way out: it does not grow.
    if (address.max <= address.count || address.full !== address.count || address.over === 0 || address.retainedUntil !== 0) continue
    if (total >= b.options.maxConnections) {
      if (out.tracing) out.log(() => `${address.address}: saturated, but the channel is at its cap of ${b.options.maxConnections} connections`)
      continue
    }
    address.count++
    address.grown++
    total++
    grown = true
    if (out.tracing) out.log(() => `${address.address}: every connection carries >= ${b.options.maxStreamsPerConnection} calls and ${address.inFlight} are in flight; opening connection ${address.count} of at most ${address.max}`)
    armShrink(b, address)
  }
  if (grown) rebuildRing(b, currentCounts(b), out, 0)
}

/** The addresses as they are now (current counts and ranges), in pool order. */
export const currentCounts = (b: BalancerImpl): Array<Wanted> => {
  const list: Array<Wanted> = []
  for (const address of b.addresses.values()) {
    list.push({ address: address.address, count: address.count, min: address.min, max: address.max })
  }
  return list
}

/** Schedules the next shrink check of an address above its minimum, if none is pending. */
export const armShrink = (b: BalancerImpl, address: AddressState): void => {
  if (address.shrinkAt !== 0 || address.count <= address.min) return
  address.busy = false
  address.shrinkAt = b.now + b.options.shrinkIdleMs
  pushDeadline(b, { at: address.shrinkAt, kind: "shrink", address, gen: 0 })
}
