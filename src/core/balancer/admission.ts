/** A new address list: merge, trim to the cap, the mass-removal grace, the cap with the grace. */
import { ConnectionCapError } from "./config.js"
import { pushDeadline } from "./deadlines.js"
import type { Event } from "./events.js"
import { armShrink } from "./adaptive.js"
import { rebuildRing } from "./ring.js"
import { type AddressState, type BalancerImpl, mod, type Out } from "./state.js"

export const onAddresses = (b: BalancerImpl, event: Extract<Event, { _tag: "Addresses" }>, out: Out): void => {
  // Merge duplicates (counts and maxima added), first-appearance order.
  const merged = new Map<string, number>()
  const maxima = new Map<string, number>()
  for (const endpoint of event.endpoints) {
    if (!Number.isSafeInteger(endpoint.count) || endpoint.count < 0) {
      throw new RangeError(`the count of ${endpoint.address} must be a whole number >= 0, got ${endpoint.count}`)
    }
    const maxCount = endpoint.maxCount ?? endpoint.count
    if (!Number.isSafeInteger(maxCount) || maxCount < endpoint.count) {
      throw new RangeError(`the maxCount of ${endpoint.address} must be a whole number >= its count ${endpoint.count}, got ${maxCount}`)
    }
    if (endpoint.count > 0) {
      merged.set(endpoint.address, (merged.get(endpoint.address) ?? 0) + endpoint.count)
      maxima.set(endpoint.address, (maxima.get(endpoint.address) ?? 0) + maxCount)
    }
  }
  let total = 0
  for (const count of merged.values()) total += count
  const max = b.options.maxConnections
  if (total > max) {
    if (event.overCap === "fail") {
      // A refused list changes nothing (target, note, pick mode, seed): the last list keeps serving.
      const error = new ConnectionCapError({ total, max })
      if (out.tracing) out.log(() => `refused: ${error.message}`)
      if (b.ring.length === 0) b.emptyReason = `anchor_round_robin: ${event.target}: ${error.message}`
      return
    }
    const kept = new Map<string, number>()
    const dropped: Array<string> = []
    let used = 0
    for (const address of [...merged.keys()].sort()) {
      const count = merged.get(address)!
      if (dropped.length === 0 && used + count <= max) {
        kept.set(address, count)
        used += count
      } else dropped.push(address)
    }
    if (out.tracing) out.log(() => `over the cap of ${max} connections (${total} asked): kept ${kept.size} addresses in address order, left out ${dropped.length}: ${dropped.slice(0, 20).join(",")}${dropped.length > 20 ? ",..." : ""}`)
    merged.clear()
    // Keep the resolver's order among the kept ones.
    for (const endpoint of event.endpoints) {
      const count = kept.get(endpoint.address)
      if (count !== undefined && !merged.has(endpoint.address)) merged.set(endpoint.address, count)
    }
  }

  b.target = event.target
  b.note = event.note ?? ""
  const mode = event.pick ?? b.options.pickMode
  if (mode !== b.pickMode) {
    if (out.tracing) out.log(() => `pick mode ${b.pickMode} -> ${mode}`)
    b.pickMode = mode
  }
  if (!b.seeded) {
    b.seeded = true
    // xorshift32 must not start at 0.
    b.rng = (mod(event.offset, 4294967296) ^ 0x9e3779b9) >>> 0 || 1
  }

  // Mass-removal grace: READY addresses the update would drop.
  let readyAddresses = 0
  let alreadyRetained = 0
  const newlyRemoved: Array<AddressState> = []
  for (const address of b.addresses.values()) {
    if (merged.has(address.address)) {
      address.retainedUntil = 0
      if (address.connected > 0) readyAddresses++
      continue
    }
    if (address.connected === 0) continue
    readyAddresses++
    if (address.retainedUntil !== 0) alreadyRetained++
    else newlyRemoved.push(address)
  }
  const removing = newlyRemoved.length + alreadyRetained
  const grace = b.options.removalGraceMs > 0 && newlyRemoved.length > 0 &&
    removing > b.options.removalThreshold * readyAddresses
  if (grace) {
    const until = b.now + b.options.removalGraceMs
    for (const address of newlyRemoved) {
      address.retainedUntil = until
      pushDeadline(b, { at: until, kind: "retention", address, gen: 0 })
    }
    if (out.tracing) out.log(() => `mass removal: the update drops ${removing} of ${readyAddresses} addresses with READY connections; keeping ${newlyRemoved.map((a) => a.address).join(",")} for ${b.options.removalGraceMs} ms`)
  }
  const next: Array<Wanted> = []
  for (const [address, min] of merged) {
    const max = maxima.get(address)!
    const existing = b.addresses.get(address)
    // An adaptive address keeps the connections it grew to (re-resolution repeats the same list).
    const count = existing === undefined ? min : Math.min(max, Math.max(min, existing.count))
    next.push({ address, count, min, max })
  }
  for (const address of b.addresses.values()) {
    if (!merged.has(address.address) && address.retainedUntil !== 0) {
      next.push({ address: address.address, count: address.count, min: address.min, max: address.max })
    }
  }
  let wanted = 0
  for (const w of next) wanted += w.count
  if (wanted > max) {
    // Grown connections kept over a new list must not take the pool over its cap: back to the minimums.
    for (let i = 0; i < next.length; i++) next[i] = { ...next[i]!, count: next[i]!.min }
    wanted = 0
    for (const w of next) wanted += w.count
  }
  if (wanted > max) {
    // Still over: the listed ones fit by themselves (trimmed above), so the addresses kept by the
    // grace give way, keeping in ascending address order those that still fit. The list comes
    // first: it is what serves after the grace (nothing would bring back an address left out of it
    // when the grace ends), and an update that needs the room brings new backends, i.e. a
    // replacement whose old servers are going away, not the lease loss the grace is for.
    const keptByGrace = next.splice(merged.size)
    let used = wanted
    for (const w of keptByGrace) used -= w.count
    const fits = new Set<string>()
    const released: Array<string> = []
    for (const w of [...keptByGrace].sort((x, y) => (x.address < y.address ? -1 : 1))) {
      if (used + w.count <= max) {
        fits.add(w.address)
        used += w.count
      } else released.push(w.address)
    }
    for (const w of keptByGrace) if (fits.has(w.address)) next.push(w)
    if (out.tracing) out.log(() => `over the cap of ${max} connections with the addresses kept by the grace: released now ${released.join(",")}`)
  }
  rebuildRing(b, next, out, event.offset)
  for (const address of b.addresses.values()) armShrink(b, address)
  if (b.ring.length === 0) {
    b.emptyReason = `anchor_round_robin: no addresses for ${b.target}${b.note ? ` (${b.note})` : ""}`
    b.lastError = b.emptyReason
  } else {
    b.emptyReason = null
    if (!b.serving && b.startDeadline === 0) {
      if (b.options.startWaitMs <= 0) b.serving = true
      else {
        b.startDeadline = b.now + b.options.startWaitMs
        pushDeadline(b, { at: b.startDeadline, kind: "start", address: undefined, gen: 0 })
      }
    }
  }
}

/** An address's current count and its range, as the ring is built from. */
export interface Wanted {
  readonly address: string
  readonly count: number
  readonly min: number
  readonly max: number
}
