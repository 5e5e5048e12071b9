/**
 * The connection-age replacement: retries of the calls a connection carried
 * when it ended go to fresh connections until its replacement answers (see
 * "Retries after a connection ends" in the module doc of `Balancer`).
 */
import { pushDeadline } from "./deadlines.js"
import type { BalancerImpl, Out, Slot } from "./state.js"

/**
 * A redirected pick: `slot` when it is fresh, else the newest connection of
 * its address, else the newest of the pool, when fresh; else -1: the call
 * waits, and is redirected again when grpc-js picks it again after the next
 * publish.
 */
export const redirected = (b: BalancerImpl, slot: Slot): number => {
  let target: Slot | undefined = slot.openedAt >= b.freshAfter ? slot : undefined
  if (target === undefined) {
    for (const sibling of slot.address.slots) {
      if (sibling.connected && sibling.openedAt >= b.freshAfter && (target === undefined || sibling.openedAt > target.openedAt)) {
        target = sibling
      }
    }
  }
  // The pool's newest first. A connection opened at or after `freshAfter` became READY then or
  // later too, so the walk stops at the first one READY before.
  for (let s = b.newest; target === undefined && s !== undefined && s.readyAt >= b.freshAfter; s = s.older) {
    if (s.connected && s.openedAt >= b.freshAfter) target = s
  }
  if (target === undefined) {
    b.queued = true
    return -1
  }
  if (target !== slot && slot.pending > 0) {
    // least_request counted the pick on `slot` until its call starts: move it.
    slot.pending--
    target.pending++
    b.pendingSlots.push(target)
  }
  return target.id
}

/** A fresh connection is at most 1 / FRESH_SHARE as old as the one that ended (see the module doc). */
export const FRESH_SHARE = 3

/**
 * `slot`'s connection ended with calls in flight: the next picks of this
 * turn, as many as it carried calls (grpc-js retries the refused ones at
 * once), go to connections opened at most a third of its life ago; the
 * window (that threshold, for calls that wait) lasts until its replacement
 * answers.
 */
export const redirectRetries = (b: BalancerImpl, slot: Slot, out: Out): void => {
  const life = b.now - slot.openedAt
  const after = b.now - life / FRESH_SHARE
  if (after > b.freshAfter) b.freshAfter = after
  b.redirecting = true
  b.redirect += slot.inFlight
  if (slot.awaitedIn !== b.window) {
    slot.awaitedIn = b.window
    b.awaiting++
  }
  pushDeadline(b, { at: b.now + b.options.replacementWaitMs, kind: "redirect", address: undefined, gen: ++b.redirectGen })
  if (out.tracing) {
    out.log(() => `${slot.key} ended after ${Math.round(life)} ms with ${slot.inFlight} call(s) in flight: the next ${b.redirect} pick(s) go to connections opened at most ${Math.round(b.now - b.freshAfter)} ms ago (or wait for one) until its replacement answers`)
  }
}

/** `slot`'s replacement answered (or it was removed): the window ends at the next wake-up once none is awaited. */
export const answered = (b: BalancerImpl, slot: Slot): void => {
  slot.awaitedIn = 0
  b.awaiting--
  // The next wake-up, not now: the picks that waited are placed on the new connection first.
  if (b.awaiting === 0 && b.redirecting) pushDeadline(b, { at: b.now, kind: "settled", address: undefined, gen: b.redirectGen })
}

/** The redirection window ends: picks go their own way again (those that waited are placed again). */
export const endRedirect = (b: BalancerImpl, out: Out, why: string): void => {
  const left = b.redirect
  b.redirecting = false
  b.redirect = 0
  b.replay = 0
  b.freshAfter = Number.NEGATIVE_INFINITY
  b.awaiting = 0
  b.window++
  b.redirectGen++
  if (b.queued) out.republish = true
  if (out.tracing) out.log(() => `retries no longer redirected (${why}; ${left} pick(s) of the turn not redirected)`)
}
