/**
 * A reference model of the balancer, written from its documented rules (the
 * README's "Semantics" and the module doc of `src/core/Balancer.ts`), not
 * from its code: plain maps of addresses and connections, every derived fact
 * (the channel state, which connections take calls, the next wake-up, what
 * an address list keeps) recomputed from scratch by scanning them. It keeps
 * no counters, bitsets, rings or queues, so a wrong rule in the balancer, not
 * only a miscounted one, makes the two disagree.
 *
 * The rules it states (the balancer under test has `maxConnections: cap`):
 *
 * - **Slots.** An address with count N has connections `address#0..N-1`; an
 *   update keeps the connections whose key it keeps, releases the others and
 *   opens the new ones (asking each to connect).
 * - **Cap.** A list over `cap` connections is refused whole with `fail` (the
 *   pool does not change); with `keepFirst` whole addresses are kept in
 *   ascending address order while they fit (the first that does not fit and
 *   every one after it are left out). Exactly `cap` fits.
 * - **Grace.** An update that drops more than `threshold` of the addresses
 *   that have a READY (and healthy) connection, at least one of them not
 *   already kept, keeps the dropped READY ones for `graceMs` or until they
 *   are listed again; an address already kept stays kept until its own end.
 *   Other removals (half or fewer, or of addresses with nothing READY) take
 *   effect at once. The list takes its connections first; the kept
 *   addresses that no longer fit beside it are released (those that fit are
 *   kept, in ascending address order).
 * - **Failure.** A connection is failed from a TRANSIENT_FAILURE or SHUTDOWN
 *   (or a READY one that is unhealthy, i.e. ejected) until it is READY and
 *   healthy again, through its reconnect attempts (sticky).
 * - **Channel state.** No connections: TRANSIENT_FAILURE. One READY and
 *   healthy: READY once serving, else CONNECTING. Else CONNECTING while a
 *   connection that has not failed is connecting (or idle), else
 *   TRANSIENT_FAILURE.
 * - **Balanced start.** Serving begins when every connection of the pool has
 *   settled its first attempt (READY or failed) or `startWaitMs` after the
 *   first non-empty list, whichever is first, and never ends.
 * - **Suspicion.** When a StateChanged takes a READY and healthy connection
 *   out of that state, its READY and healthy siblings are skipped until a
 *   connection of the address reports READY, at most `suspicionMs`; when no
 *   connection of the pool is left to take calls, the READY ones take them
 *   anyway (the fallback).
 * - **Picks.** Round robin: over k rounds each connection that takes calls
 *   is picked exactly k times, in a fixed cyclic order; -1 when the channel
 *   is not READY.
 * - **Wake-ups.** The balancer asks to be woken at the earliest of: the end
 *   of the start wait (while not serving), each suspicion's end, each kept
 *   address's end of grace.
 */
import type * as Balancer from "../src/core/Balancer.js"
import type * as Expansion from "../src/core/Expansion.js"

export interface Limits {
  readonly cap: number
  readonly startWaitMs: number
  readonly suspicionMs: number
  readonly graceMs: number
  readonly threshold: number
}

export interface MSlot {
  readonly id: number
  readonly address: string
  readonly index: number
  raw: Balancer.ConnectionState
  healthy: boolean
  /** Failed since it was last READY and healthy. */
  failed: boolean
  /** Its first attempt settled (it was READY and healthy, or failed). */
  settled: boolean
  /** Skipped: a sibling dropped while it was READY and healthy, and no READY came since. */
  suspect: boolean
}

export interface MAddress {
  readonly name: string
  count: number
  /** Kept by the grace until then; 0: listed. */
  retainedUntil: number
  /** Its siblings are suspect until then; 0: none. */
  suspectUntil: number
}

/** What an accepted address list leaves in the pool. */
export interface Plan {
  /** Connections per address: the listed ones, then those the grace keeps. */
  readonly counts: ReadonlyMap<string, number>
  readonly listed: ReadonlySet<string>
  /** Addresses the grace starts keeping with this update. */
  readonly retain: ReadonlySet<string>
  /** Addresses with a READY connection the update removes at once. */
  readonly removedReady: ReadonlyArray<string>
  /** Addresses kept by the grace that the cap releases. */
  readonly released: ReadonlyArray<string>
}

const sum = (counts: Iterable<number>): number => {
  let total = 0
  for (const n of counts) total += n
  return total
}

export const keyOf = (address: string, index: number): string => `${address}#${index}`

export class Model {
  now = 0
  serving = false
  startDeadline: number | undefined
  target = ""
  readonly addresses = new Map<string, MAddress>()
  /** By key (`address#index`). */
  readonly slots = new Map<string, MSlot>()
  published: Balancer.ChannelState | undefined
  /** The last output's wake-up. */
  wakeAt: number | undefined

  constructor(readonly limits: Limits) {}

  connected(slot: MSlot): boolean {
    return slot.raw === "READY" && slot.healthy
  }

  byId(id: number): MSlot | undefined {
    for (const slot of this.slots.values()) if (slot.id === id) return slot
    return undefined
  }

  /** The slots sorted by key: commands choose one by position. */
  sorted(): Array<MSlot> {
    return [...this.slots.values()].sort((x, y) => (x.address === y.address ? x.index - y.index : x.address < y.address ? -1 : 1))
  }

  slotsOf(address: string): Array<MSlot> {
    return [...this.slots.values()].filter((slot) => slot.address === address)
  }

  /** The ids that take calls: READY, healthy, not suspect; if none, every READY and healthy one. */
  takingCalls(): Set<number> {
    const ready = [...this.slots.values()].filter((slot) => this.connected(slot))
    const trusted = ready.filter((slot) => !slot.suspect)
    return new Set((trusted.length > 0 ? trusted : ready).map((slot) => slot.id))
  }

  state(): Balancer.ChannelState {
    const all = [...this.slots.values()]
    if (all.length === 0) return "TRANSIENT_FAILURE"
    if (all.some((slot) => this.connected(slot))) return this.serving ? "READY" : "CONNECTING"
    if (all.some((slot) => !slot.failed)) return "CONNECTING"
    return "TRANSIENT_FAILURE"
  }

  /** The earliest pending deadline. */
  wake(): number | undefined {
    const times: Array<number> = []
    if (!this.serving && this.startDeadline !== undefined) times.push(this.startDeadline)
    for (const address of this.addresses.values()) {
      if (address.suspectUntil > 0) times.push(address.suspectUntil)
      if (address.retainedUntil > 0) times.push(address.retainedUntil)
    }
    return times.length === 0 ? undefined : Math.min(...times)
  }

  /** The start rule, checked after every event. */
  settle(): void {
    if (!this.serving && this.slots.size > 0 && [...this.slots.values()].every((slot) => slot.settled)) this.serving = true
  }

  /** What `endpoints` should do to the pool; undefined: refused. */
  plan(endpoints: ReadonlyArray<Expansion.Weighted>, overCap: "fail" | "keepFirst"): Plan | undefined {
    const { cap, graceMs, threshold } = this.limits
    const merged = new Map<string, number>()
    for (const e of endpoints) if (e.count > 0) merged.set(e.address, (merged.get(e.address) ?? 0) + e.count)
    if (sum(merged.values()) > cap) {
      if (overCap === "fail") return undefined
      let used = 0
      let full = false
      for (const address of [...merged.keys()].sort()) {
        if (!full && used + merged.get(address)! <= cap) used += merged.get(address)!
        else {
          full = true
          merged.delete(address)
        }
      }
    }
    const ready = [...this.addresses.values()].filter((a) => this.slotsOf(a.name).some((slot) => this.connected(slot)))
    const dropped = ready.filter((a) => !merged.has(a.name))
    const newly = dropped.filter((a) => a.retainedUntil === 0)
    const grace = graceMs > 0 && newly.length > 0 && dropped.length > threshold * ready.length
    const retain = new Set(grace ? newly.map((a) => a.name) : [])
    const counts = new Map(merged)
    let used = sum(merged.values())
    const released: Array<string> = []
    const kept = [...this.addresses.values()]
      .filter((a) => !merged.has(a.name) && (a.retainedUntil !== 0 || retain.has(a.name)))
      .sort((x, y) => (x.name < y.name ? -1 : 1))
    for (const a of kept) {
      if (used + a.count <= cap) {
        counts.set(a.name, a.count)
        used += a.count
      } else released.push(a.name)
    }
    const removedReady = newly.filter((a) => !retain.has(a.name)).map((a) => a.name)
    return { counts, listed: new Set(merged.keys()), retain, removedReady, released }
  }

  /** The keys a plan releases and the keys it opens. */
  diff(plan: Plan): { readonly gone: Array<MSlot>; readonly added: Array<string> } {
    const gone = [...this.slots.values()].filter((slot) => slot.index >= (plan.counts.get(slot.address) ?? 0))
    const added: Array<string> = []
    for (const [address, count] of plan.counts) {
      for (let i = 0; i < count; i++) if (!this.slots.has(keyOf(address, i))) added.push(keyOf(address, i))
    }
    return { gone, added }
  }

  /** Applies an accepted plan; `created` are the balancer's new slots (their ids). */
  commit(plan: Plan, created: ReadonlyArray<Balancer.NewSlot>, target: string): void {
    this.target = target
    for (const slot of this.diff(plan).gone) this.slots.delete(keyOf(slot.address, slot.index))
    for (const name of [...this.addresses.keys()]) if (!plan.counts.has(name)) this.addresses.delete(name)
    for (const [name, count] of plan.counts) {
      const address = this.addresses.get(name) ?? { name, count, retainedUntil: 0, suspectUntil: 0 }
      address.count = count
      if (plan.listed.has(name)) address.retainedUntil = 0
      else if (plan.retain.has(name)) address.retainedUntil = this.now + this.limits.graceMs
      this.addresses.set(name, address)
    }
    for (const slot of created) {
      this.slots.set(keyOf(slot.address, slot.index), {
        id: slot.id,
        address: slot.address,
        index: slot.index,
        raw: "IDLE",
        healthy: true,
        failed: false,
        settled: false,
        suspect: false
      })
    }
    if (this.slots.size > 0 && !this.serving && this.startDeadline === undefined) {
      if (this.limits.startWaitMs <= 0) this.serving = true
      else this.startDeadline = this.now + this.limits.startWaitMs
    }
  }

  /** A connection's state or health changed; returns whether it dropped (was READY and healthy, is no more). */
  change(slot: MSlot, raw: Balancer.ConnectionState, healthy: boolean, fromState: boolean): boolean {
    const was = this.connected(slot)
    slot.raw = raw
    slot.healthy = healthy
    const failing = raw === "TRANSIENT_FAILURE" || raw === "SHUTDOWN" || (raw === "READY" && !healthy)
    if (this.connected(slot)) slot.failed = false
    else if (failing) slot.failed = true
    if (this.connected(slot) || slot.failed) slot.settled = true
    const address = this.addresses.get(slot.address)!
    const dropped = was && !this.connected(slot)
    if (dropped && fromState && this.limits.suspicionMs > 0) {
      const siblings = this.slotsOf(slot.address).filter((s) => s !== slot && this.connected(s))
      for (const s of siblings) s.suspect = true
      if (siblings.length > 0) address.suspectUntil = this.now + this.limits.suspicionMs
    }
    if (fromState && raw === "READY" && address.suspectUntil !== 0) this.clearSuspicion(address)
    return dropped
  }

  clearSuspicion(address: MAddress): void {
    address.suspectUntil = 0
    for (const slot of this.slotsOf(address.name)) slot.suspect = false
  }

  /** Time passes to `now` and the timer fires: what is due ends. Returns the slots released. */
  advance(now: number): { readonly gone: Array<MSlot>; readonly expired: number; readonly suspicionsEnded: number; readonly started: boolean } {
    this.now = now
    let started = false
    if (!this.serving && this.startDeadline !== undefined && this.startDeadline <= now) {
      this.serving = true
      started = true
    }
    let suspicionsEnded = 0
    const gone: Array<MSlot> = []
    let expired = 0
    for (const address of [...this.addresses.values()]) {
      if (address.suspectUntil > 0 && address.suspectUntil <= now) {
        this.clearSuspicion(address)
        suspicionsEnded++
      }
      if (address.retainedUntil > 0 && address.retainedUntil <= now) {
        expired++
        for (const slot of this.slotsOf(address.name)) {
          gone.push(slot)
          this.slots.delete(keyOf(slot.address, slot.index))
        }
        this.addresses.delete(address.name)
      }
    }
    return { gone, expired, suspicionsEnded, started }
  }
}
