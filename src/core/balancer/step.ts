/** The event step: each event's handler, then the channel state and the wake-up. */
import { armShrink, currentCounts, onCallsWaiting } from "./adaptive.js"
import { onAddresses, type Wanted } from "./admission.js"
import { compact, earliest, nextWake, pushDeadline } from "./deadlines.js"
import type { ChannelState, ConnectionState, Event, Output } from "./events.js"
import { endRedirect, redirectRetries, answered } from "./replacement.js"
import { rebuildRing } from "./ring.js"
import { refresh } from "./slots.js"
import { type AddressState, type Balancer, type BalancerImpl, impl, Out, slotOf } from "./state.js"
import { failureMessage } from "./view.js"

export const computeState = (b: BalancerImpl): ChannelState => {
  if (b.ring.length === 0) return "TRANSIENT_FAILURE"
  if (b.nConnected > 0) return b.serving ? "READY" : "CONNECTING"
  if (b.nConnecting > 0) return "CONNECTING"
  return "TRANSIENT_FAILURE"
}

export const endStartIfSettled = (b: BalancerImpl, out: Out): void => {
  if (!b.serving && b.ring.length > 0 && b.unsettled === 0) {
    b.serving = true
    if (out.tracing) out.log(() => `start: every first connection attempt settled; serving`)
  }
}

export const finish = (b: BalancerImpl, out: Out): Output => {
  endStartIfSettled(b, out)
  const next = computeState(b)
  // An empty pool republishes when its reason changes (a resolver error after "no addresses").
  const reason = next === "TRANSIENT_FAILURE" && b.ring.length === 0 ? b.emptyReason ?? "" : null
  let publish: Output["publish"]
  if (next !== b.publishedState || reason !== b.publishedReason || (out.republish && next === "READY")) {
    // grpc-js picks every queued call again when the state is published.
    b.replay = b.queuedCalls
    b.queuedCalls = 0
    b.queued = false
    const message = next === "TRANSIENT_FAILURE" ? failureMessage(b) : null
    publish = { state: next, message }
    const previous = b.publishedState ?? "IDLE"
    if (out.tracing) out.log(() => `channel ${previous} -> ${next}${message !== null ? `: ${message}` : ""}`)
    b.publishedState = next
    b.publishedReason = reason
  }
  b.state = next
  return {
    remove: out.remove,
    create: out.create,
    connect: out.connect,
    publish,
    reresolve: out.reresolve,
    wakeAt: nextWake(b),
    trace: out.trace
  }
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/**
 * Applies one event and returns what to do (see {@link Output}). A
 * connectivity event (`StateChanged`, `HealthChanged`) costs
 * O(log32 n) amortised plus the address's own count (<= 256), whatever the
 * number of slots; an `Addresses` event costs O(n log n) (the new ring).
 * Events for unknown slot ids are ignored. An id names one slot from its
 * `create` to its `remove`; a later slot may get the same id (ids are
 * reused so lookups stay dense), so send no event for a removed slot.
 *
 * @category events
 * @since 0.2.0
 */
export const step = (balancer: Balancer, event: Event): Output => {
  const b = impl(balancer)
  if (event.now > b.now) b.now = event.now
  const out = new Out(b.options.trace)
  switch (event._tag) {
    case "Addresses":
      onAddresses(b, event, out)
      break
    case "ResolverError":
      if (b.ring.length === 0) {
        // Before any list the target is not known here; the resolver's message names it.
        b.emptyReason = b.listed ? `anchor_round_robin: ${b.target}: ${event.message}` : `anchor_round_robin: ${event.message}`
        if (out.tracing) out.log(() => `resolver error with no addresses: ${event.message}`)
      } else {
        if (out.tracing) out.log(() => `resolver error, keeping ${b.ring.length} connections: ${event.message}`)
      }
      break
    case "StateChanged":
      onState(b, event.slot, event.state, event.error, out)
      break
    case "HealthChanged": {
      const slot = slotOf(b, event.slot)
      if (slot !== undefined && slot.healthy !== event.healthy) {
        slot.healthy = event.healthy
        refresh(b, slot)
        if (out.tracing) out.log(() => `${slot.key} ${event.healthy ? "healthy" : "unhealthy (ejected)"}`)
      }
      break
    }
    case "TimerFired":
      onTimer(b, out)
      break
    case "CallsWaiting":
      onCallsWaiting(b, out)
      break
  }
  return finish(b, out)
}

export const onState = (b: BalancerImpl, id: number, next: ConnectionState, error: string | undefined, out: Out): void => {
  const slot = slotOf(b, id)
  if (slot === undefined) return
  const previous = slot.raw
  const wasConnected = slot.connected
  slot.raw = next
  if (next === "CONNECTING" && previous !== "CONNECTING") slot.attemptAt = b.now
  else if (next === "TRANSIENT_FAILURE" || next === "SHUTDOWN") slot.attemptAt = Number.NEGATIVE_INFINITY
  if (next === "TRANSIENT_FAILURE" && error) b.lastError = error
  refresh(b, slot)
  if (out.tracing) out.log(() => `${slot.key} ${previous} -> ${next}${error ? ` (${error})` : ""}`)
  const address = slot.address
  if (wasConnected && !slot.connected) {
    out.reresolve = true
    if (b.options.suspicionMs > 0) {
      let suspected = 0
      for (const sibling of address.slots) {
        b.work++
        if (sibling !== slot && sibling.connected) {
          if (!sibling.suspect) {
            sibling.suspect = true
            refresh(b, sibling)
          }
          suspected++
        }
      }
      if (suspected > 0) {
        address.suspectUntil = b.now + b.options.suspicionMs
        const gen = ++address.suspicionGen
        pushDeadline(b, { at: address.suspectUntil, kind: "suspicion", address, gen })
        if (out.tracing) out.log(() => `${address.address}: skipping ${suspected} sibling connection(s) for up to ${b.options.suspicionMs} ms`)
      }
    }
  }
  if (previous === "READY" && next !== "READY" && slot.inFlight > 0 && b.options.replacementWaitMs > 0) {
    redirectRetries(b, slot, out)
  }
  if (slot.awaitedIn === b.window && (next === "READY" || next === "TRANSIENT_FAILURE" || next === "SHUTDOWN")) {
    answered(b, slot)
    if (out.tracing) out.log(() => `${slot.key}: the replacement answered ${next}; ${b.awaiting} still awaited`)
  }
  // A fresh connection for the picks that waited for one.
  if (slot.connected && !wasConnected && b.queued && b.redirecting) out.republish = true
  if (next === "READY" && address.suspectUntil !== 0) {
    // The address answers new connections: its other connections are fine.
    clearSuspicion(b, address)
    if (out.tracing) out.log(() => `${address.address}: reconnected; siblings used again`)
  }
  if (next === "IDLE") {
    // Keep every slot connected, as grpc-js's round_robin does (it connects an IDLE child at once);
    // grpc-js applies its backoff between attempts. So no slot waits for the channel's exitIdle.
    out.pushConnect(slot.id)
  }
}

export const clearSuspicion = (b: BalancerImpl, address: AddressState): void => {
  address.suspectUntil = 0
  address.suspicionGen++
  for (const sibling of address.slots) {
    b.work++
    if (sibling.suspect) {
      sibling.suspect = false
      refresh(b, sibling)
    }
  }
}

export const onTimer = (b: BalancerImpl, out: Out): void => {
  const expired = new Set<AddressState>()
  let shrunk = false
  for (;;) {
    // Stale heads are dropped by earliest: the head it returns is live.
    const queue = earliest(b)
    if (queue === undefined || queue.items[queue.head]!.at > b.now) break
    const d = queue.items[queue.head++]!
    switch (d.kind) {
      case "start":
        b.serving = true
        if (out.tracing) out.log(() => `start: waited ${b.options.startWaitMs} ms (${b.unsettled} first attempt(s) unsettled); serving`)
        break
      case "redirect":
        endRedirect(b, out, `no answer within ${b.options.replacementWaitMs} ms`)
        break
      case "settled":
        endRedirect(b, out, "every replacement answered")
        break
      case "suspicion":
        clearSuspicion(b, d.address!)
        if (out.tracing) out.log(() => `${d.address!.address}: suspicion lapsed`)
        break
      case "retention":
        d.address!.retainedUntil = 0
        expired.add(d.address!)
        if (out.tracing) out.log(() => `${d.address!.address}: removal grace over; removed`)
        break
      case "shrink": {
        const address = d.address!
        address.shrinkAt = 0
        if (address.count <= address.min) break
        const last = address.slots[address.count - 1]
        // Busy: calls in flight went over what one connection fewer carries during the period, or are now.
        if (address.busy || address.inFlight > (address.count - 1) * b.options.maxStreamsPerConnection) {
          if (out.tracing) out.log(() => `${address.address}: busy in the last ${b.options.shrinkIdleMs} ms; keeping ${address.count} connections`)
        } else if (last !== undefined && last.inFlight > 0) {
          if (out.tracing) out.log(() => `${address.address}: connection ${address.count} still carries ${last.inFlight} call(s); keeping it`)
        } else {
          address.count--
          address.shrunk++
          shrunk = true
          if (out.tracing) out.log(() => `${address.address}: not busy for ${b.options.shrinkIdleMs} ms; closing connection ${address.count + 1} (${address.count} left, at least ${address.min})`)
        }
        armShrink(b, address)
        break
      }
    }
  }
  compact(b)
  if (shrunk && expired.size === 0) rebuildRing(b, currentCounts(b), out, 0)
  if (expired.size > 0) {
    const rest: Array<Wanted> = []
    for (const address of b.addresses.values()) {
      if (!expired.has(address)) rest.push({ address: address.address, count: address.count, min: address.min, max: address.max })
    }
    rebuildRing(b, rest, out, 0)
    if (b.ring.length === 0) b.emptyReason = `anchor_round_robin: no addresses for ${b.target}${b.note ? ` (${b.note})` : ""}`
  }
}
