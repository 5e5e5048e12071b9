/** A new address list: merge, trim to the cap, the mass-removal grace, the cap with the grace. */
import { ConnectionCapError } from "./cap.js"
import { pushDeadline } from "./deadlines.js"
import type { Event } from "./events.js"
import type { OverCap } from "./listing.js"
import { armShrink } from "./adaptive.js"
import { rebuildRing } from "./ring.js"
import { type BalancerImpl, mod, type Out } from "./state.js"

/**
 * Merges duplicates of `endpoints` (counts and maxima added,
 * first-appearance order) and fits the list under `max` connections: refused
 * with `overCap: "fail"`, else the addresses that fit in ascending address
 * order are kept (in the resolver's order). Pure; `log` receives trace lines.
 *
 * @throws RangeError on a count or maxCount that is not a whole number in range.
 */
export const trim = (
  endpoints: Extract<Event, { _tag: "Addresses" }>["endpoints"],
  overCap: OverCap,
  max: number,
  log: (line: () => string) => void
): Trimmed | Refused => {
  // Merge duplicates (counts and maxima added), first-appearance order.
  const merged = new Map<string, number>()
  const maxima = new Map<string, number>()
  for (const endpoint of endpoints) {
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
  if (total > max) {
    if (overCap === "fail") {
      const error = new ConnectionCapError({ total, max })
      log(() => `refused: ${error.message}`)
      return { _tag: "Refused", error }
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
    log(() => `over the cap of ${max} connections (${total} asked): kept ${kept.size} addresses in address order, left out ${dropped.length}: ${dropped.slice(0, 20).join(",")}${dropped.length > 20 ? ",..." : ""}`)
    merged.clear()
    // Keep the resolver's order among the kept ones.
    for (const endpoint of endpoints) {
      const count = kept.get(endpoint.address)
      if (count !== undefined && !merged.has(endpoint.address)) merged.set(endpoint.address, count)
    }
    return { _tag: "Trimmed", merged, maxima, dropped: dropped.length }
  }
  return { _tag: "Trimmed", merged, maxima, dropped: 0 }
}

/** A list merged and within the cap: counts (the minimums) and maxima by address, in the resolver's order. */
export interface Trimmed {
  readonly _tag: "Trimmed"
  readonly merged: ReadonlyMap<string, number>
  readonly maxima: ReadonlyMap<string, number>
  /** Addresses left out by the cap. */
  readonly dropped: number
}

/** A list refused: over the cap with `overCap: "fail"`. */
export interface Refused {
  readonly _tag: "Refused"
  readonly error: ConnectionCapError
}

/** An address of the pool as admission sees it. */
export interface PoolAddress {
  readonly address: string
  readonly count: number
  readonly min: number
  readonly max: number
  /** Connected (READY and healthy) connections. */
  readonly connected: number
  /** Kept by the mass-removal grace until then; 0: listed. */
  readonly retainedUntil: number
}

/** The limits admission applies. */
export interface Limits {
  readonly maxConnections: number
  readonly removalGraceMs: number
  readonly removalThreshold: number
}

/** A list admitted: the counts and ranges to build the ring from, and the addresses the grace now keeps. */
export interface Admitted {
  readonly _tag: "Admitted"
  /** The listed addresses (the resolver's order), then those kept by the grace. */
  readonly next: ReadonlyArray<Wanted>
  /** The addresses the update drops that the grace keeps from now (empty: no grace). */
  readonly retain: ReadonlySet<string>
}

/**
 * Admission of a list {@link trim} let through, a pure function of the pool,
 * the list and the limits: applies the mass-removal grace (READY addresses
 * the update would drop are kept when it drops more than the threshold's
 * share of them), keeps the counts adaptive addresses grew to within their
 * new range, and fits the whole under the cap (grown counts back to their
 * minimums, then the addresses kept by the grace give way). `log` receives
 * trace lines (lazily).
 */
export const admit = (
  pool: ReadonlyMap<string, PoolAddress>,
  { maxima, merged }: Trimmed,
  limits: Limits,
  log: (line: () => string) => void
): Admitted => {
  const max = limits.maxConnections
  // Mass-removal grace: READY addresses the update would drop.
  let readyAddresses = 0
  let alreadyRetained = 0
  const newlyRemoved: Array<PoolAddress> = []
  for (const address of pool.values()) {
    if (merged.has(address.address)) {
      if (address.connected > 0) readyAddresses++
      continue
    }
    if (address.connected === 0) continue
    readyAddresses++
    if (address.retainedUntil !== 0) alreadyRetained++
    else newlyRemoved.push(address)
  }
  const removing = newlyRemoved.length + alreadyRetained
  const grace = limits.removalGraceMs > 0 && newlyRemoved.length > 0 &&
    removing > limits.removalThreshold * readyAddresses
  const retain = new Set<string>()
  if (grace) {
    for (const address of newlyRemoved) retain.add(address.address)
    log(() => `mass removal: the update drops ${removing} of ${readyAddresses} addresses with READY connections; keeping ${newlyRemoved.map((a) => a.address).join(",")} for ${limits.removalGraceMs} ms`)
  }
  const next: Array<Wanted> = []
  for (const [address, min] of merged) {
    const max = maxima.get(address)!
    const existing = pool.get(address)
    // An adaptive address keeps the connections it grew to (re-resolution repeats the same list).
    const count = existing === undefined ? min : Math.min(max, Math.max(min, existing.count))
    next.push({ address, count, min, max })
  }
  for (const address of pool.values()) {
    if (!merged.has(address.address) && (address.retainedUntil !== 0 || retain.has(address.address))) {
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
    log(() => `over the cap of ${max} connections with the addresses kept by the grace: released now ${released.join(",")}`)
  }
  return { _tag: "Admitted", next, retain }
}

/** Applies an `Addresses` event: {@link trim}, then {@link admit}, then the ring, the retention deadlines and the start. */
export const onAddresses = (b: BalancerImpl, event: Extract<Event, { _tag: "Addresses" }>, out: Out): void => {
  const log = (line: () => string): void => {
    if (out.tracing) out.log(line)
  }
  const trimmed = trim(event.endpoints, event.overCap, b.options.maxConnections, log)
  if (trimmed._tag === "Refused") {
    // A refused list changes nothing (target, note, pick mode, seed): the last list keeps serving.
    if (b.ring.length === 0) b.emptyReason = `anchor_round_robin: ${event.target}: ${trimmed.error.message}`
    return
  }
  b.target = event.target
  b.listed = true
  b.trimmed = trimmed.dropped
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

  const { next, retain } = admit(b.addresses, trimmed, b.options, log)
  const until = b.now + b.options.removalGraceMs
  for (const address of b.addresses.values()) {
    if (trimmed.merged.has(address.address)) address.retainedUntil = 0
    else if (retain.has(address.address)) {
      address.retainedUntil = until
      address.retainedSince = b.now
      pushDeadline(b, { at: until, kind: "retention", address, gen: 0 })
    }
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
