/**
 * The hung rule (every pick mode): a connection whose calls stop being
 * answered while other addresses answer theirs takes no new calls (see
 * "Hung connections" in the module doc of `Balancer`). O(1) per call and
 * per pick; no call identity needed.
 *
 * Per connection the machine keeps how many calls started since its last
 * answer (`waiting`), when the second of them started (`secondFrom`) and
 * when the latest did (`lastStart`). How it tells long-lived streams (a
 * watch, a server stream: a call that is never answered while it lives)
 * from a hung connection: a hung connection keeps being given calls and
 * answers none of them, so the rule wants the second call since the last
 * answer to have waited the threshold *and* a call started at least half
 * the threshold after it, still unanswered. A lone stream is one call;
 * streams opened back to back start together; and any unary call the
 * connection is given meanwhile is answered and resets the count. Per
 * address, Little's law gives a mean latency from the calls in flight
 * integrated over time, divided by the answers: no per-call state.
 */
import { refresh } from "./slots.js"
import type { AddressState, BalancerImpl, Slot } from "./state.js"

/**
 * The threshold is at least this many times the mean latency of the other
 * address that answered last: a service whose calls take seconds is not
 * hung when they take seconds.
 */
export const HUNG_LATENCY_FACTOR = 8

/**
 * A hung connection that still has calls in flight gets no probe (those
 * calls are probes already: the first answer brings it back) until it has
 * been avoided this many probe periods; then probe rounds anyway, one per
 * period (see {@link HUNG_PROBE_BURST}), so a connection avoided wrongly
 * (long streams, nothing else placed on it) is tried again from the 10th
 * period on.
 */
export const HUNG_PROBE_PATIENCE = 10

/**
 * A probe round lets 1 call through, the next 2, ... up to this many, while
 * none of the connection's calls is answered or ends unanswered (which
 * starts it over at 1). One call alone can be a stream, which is never
 * answered while it lives: a client that opens a stream and then makes one
 * unary call in a loop would, over `round_robin`, put every stream on one
 * connection and every probe (the next call after it comes due) on a
 * stream; the second round carries the unary call, whose answer brings the
 * connection back. A frozen connection takes at most this many calls per
 * period.
 */
export const HUNG_PROBE_BURST = 8

/** Integrates the address's calls in flight up to `now` (Little's law). */
export const integrate = (address: AddressState, now: number): void => {
  if (now > address.areaAt) {
    address.area += address.inFlight * (now - address.areaAt)
    address.areaAt = now
  }
}

/** An answer on `slot` (the server responded): latency sample, answer times, and the slot's return. */
export const callAnswered = (b: BalancerImpl, slot: Slot, now: number): void => {
  const address = slot.address
  // The area since the previous answer is one latency sample (Little: L = lambda W over that gap).
  const sample = address.area - address.areaMark
  address.areaMark = address.area
  address.latency = address.latency === 0 ? sample : address.latency + (sample - address.latency) / 8
  if (b.answer1 === address) b.answer1At = now
  else {
    b.answer2At = b.answer1At
    b.answer2 = b.answer1
    b.answer1At = now
    b.answer1 = address
  }
  slot.waiting = 0
  if (slot.hung) {
    slot.hung = false
    slot.probeGen++
    b.nHung--
    refresh(b, slot)
    if (b.options.trace) b.notes.push(`${slot.key}: a call was answered; taking calls again`)
  }
}

/**
 * Whether `slot` is hung at `now`: of the calls started since its last
 * answer, the second has waited at least the threshold T (`hungAfterMs`, or
 * 8 times the mean latency of the other address that answered last, if
 * higher), a later one started at least T/2 after the second, and another
 * address answered a call after the second started.
 */
export const isHung = (b: BalancerImpl, slot: Slot, now: number): boolean => {
  if (slot.waiting < 3 || b.options.hungAfterMs === 0) return false
  const other = b.answer1 !== slot.address ? b.answer1 : b.answer2
  const otherAt = b.answer1 !== slot.address ? b.answer1At : b.answer2At
  if (other === undefined || otherAt <= slot.secondFrom) return false
  const threshold = Math.max(b.options.hungAfterMs, HUNG_LATENCY_FACTOR * other.latency)
  return now - slot.secondFrom >= threshold && slot.lastStart - slot.secondFrom >= threshold / 2
}

/** Takes `slot` out of the picks until an answer, with a probe after `hungAfterMs`. */
export const avoid = (b: BalancerImpl, slot: Slot, now: number): void => {
  slot.hung = true
  slot.hungSince = now
  slot.probeBurst = 1
  slot.probeLeft = 0
  slot.avoided++
  b.avoidances++
  b.nHung++
  refresh(b, slot)
  scheduleProbe(b, slot, now)
  if (b.options.trace) {
    b.notes.push(
      `${slot.key}: ${slot.waiting} calls unanswered, the second for ${Math.round(now - slot.secondFrom)} ms, while ${
        (b.answer1 !== slot.address ? b.answer1 : b.answer2)!.address
      } answers; avoided (hung) until a call is answered, one probe every ${b.options.hungAfterMs} ms`
    )
  }
}

/** Schedules `slot`'s next probe `hungAfterMs` after `now` (also when a hung slot is connected again: health back). */
export const scheduleProbe = (b: BalancerImpl, slot: Slot, now: number): void => {
  // Fixed delay and a time that never goes back: appending keeps the queue sorted.
  b.probes.push({ slot, at: now + b.options.hungAfterMs, gen: ++slot.probeGen })
}

/**
 * The slot due for a probe at `now` (one call let through to a hung
 * connection, so that it can answer and come back), or undefined: a
 * connection with calls still in flight waits (see
 * {@link HUNG_PROBE_PATIENCE}). Drops stale entries, and those of hung
 * connections not connected (ejected by health checks): `refresh` schedules
 * a new probe, a probe period later, when one is connected again. O(1)
 * amortized.
 */
export const dueProbe = (b: BalancerImpl, now: number): Slot | undefined => {
  const probes = b.probes
  while (b.probeHead < probes.length) {
    const p = probes[b.probeHead]!
    const live = p.slot.hung && p.slot.probeGen === p.gen && b.byId[p.slot.id] === p.slot
    if (live && p.at > now) return undefined
    b.probeHead++
    if (live && p.slot.connected) {
      scheduleProbe(b, p.slot, now)
      if (p.slot.inFlight > 0 && now - p.slot.hungSince < HUNG_PROBE_PATIENCE * b.options.hungAfterMs) continue
      const slot = p.slot
      if (b.options.trace) b.notes.push(`${slot.key}: probe (${slot.probeBurst} call${slot.probeBurst === 1 ? "" : "s"}) while hung`)
      slot.probeLeft = slot.probeBurst - 1
      if (slot.probeBurst < HUNG_PROBE_BURST) slot.probeBurst++
      b.probing = slot
      compactProbes(b)
      return slot
    }
  }
  compactProbes(b)
  return undefined
}

/** The hung slot whose probe round has calls left to let through, or undefined (O(1)). */
export const probeRound = (b: BalancerImpl): Slot | undefined => {
  const slot = b.probing
  if (slot === undefined) return undefined
  if (slot.probeLeft > 0 && slot.hung && slot.connected && b.byId[slot.id] === slot) {
    slot.probeLeft--
    return slot
  }
  b.probing = undefined
  return undefined
}

/** A call on hung `slot` ended unanswered: evidence that it is hung; probe rounds start over at one call. */
export const unansweredWhileHung = (slot: Slot): void => {
  slot.probeBurst = 1
  slot.probeLeft = 0
}

const compactProbes = (b: BalancerImpl): void => {
  if (b.probeHead === b.probes.length) {
    b.probes.length = 0
    b.probeHead = 0
  } else if (b.probeHead > 64 && b.probeHead * 2 > b.probes.length) {
    b.probes = b.probes.slice(b.probeHead)
    b.probeHead = 0
  }
}

/** A connection that is READY anew starts with a clean record (its calls in flight ended with the old one). */
export const resetConnection = (b: BalancerImpl, slot: Slot): void => {
  slot.waiting = 0
  if (slot.hung) {
    slot.hung = false
    slot.probeGen++
    b.nHung--
  }
}
