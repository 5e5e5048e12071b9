/** Reads of the pool from outside: the pick mode, the channel state, the slots. */
import type { PickMode } from "./options.js"
import type { ChannelState, ConnectionState } from "./events.js"
import { type Balancer, impl } from "./state.js"

/**
 * The pick mode in force: the last address list's `pick`, else the
 * `pickMode` option.
 *
 * @category getters
 * @since 0.2.0
 */
export const pickMode = (balancer: Balancer): PickMode => impl(balancer).pickMode

/**
 * The channel state the balancer reports now.
 *
 * @category getters
 * @since 0.2.0
 */
export const state = (balancer: Balancer): ChannelState => impl(balancer).state

/**
 * Why calls fail while the channel is TRANSIENT_FAILURE: the target, what is
 * wrong and the last connection error.
 *
 * @category getters
 * @since 0.2.0
 */
export const failureMessage = (balancer: Balancer): string => {
  const b = impl(balancer)
  if (b.ring.length === 0) return b.emptyReason ?? `anchor_round_robin: no addresses for ${b.target}`
  return `anchor_round_robin: no ready connection to ${b.target} (${b.ring.length} connections failing; last error: ${b.lastError ?? "none"})`
}

/**
 * One slot as seen from outside.
 *
 * @category models
 * @since 0.2.0
 */
export interface SlotView {
  readonly id: number
  readonly address: string
  readonly index: number
  readonly state: ConnectionState
  readonly healthy: boolean
  /** Takes calls now (ready, not skipped by suspicion, or the fallback). */
  readonly pickable: boolean
  /** Calls in flight, as reported by {@link callStarted} and {@link callEnded}. */
  readonly inFlight: number
  /** Avoided now by the hung rule (since 0.3.0). */
  readonly hung: boolean
  /** Times the hung rule avoided this connection (since 0.3.0; a counter). */
  readonly avoided: number
}

/**
 * The slots in ring (pick) order. O(n): for stats and tests, not per event.
 *
 * @category getters
 * @since 0.2.0
 */
export const slots = (balancer: Balancer): ReadonlyArray<SlotView> => {
  const b = impl(balancer)
  const fallback = b.nPickable === 0
  return b.ring.map((slot) => ({
    id: slot.id,
    address: slot.address.address,
    index: slot.index,
    state: slot.raw,
    healthy: slot.healthy,
    pickable: fallback ? slot.connected : slot.pickable,
    inFlight: slot.inFlight,
    hung: slot.hung,
    avoided: slot.avoided
  }))
}

/**
 * Times the hung rule avoided a connection (took it out of the picks), over
 * the balancer's life: a monotonic counter, O(1), for a metric. Per
 * connection: {@link SlotView}'s `avoided`.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * Balancer.avoidances(Balancer.make()) // 0
 * ```
 *
 * @since 0.3.0
 */
export const avoidances = (balancer: Balancer): number => impl(balancer).avoidances

/**
 * Whether `address` has slots in the pool (listed, or kept by the
 * mass-removal grace). O(1).
 *
 * @category getters
 * @since 0.2.0
 */
export const hasAddress = (balancer: Balancer, address: string): boolean => impl(balancer).addresses.has(address)

/**
 * Units of work done so far by events (bitset levels touched, slots
 * visited). Tests use it to check that a connectivity event costs the same
 * at any pool size.
 *
 * @category getters
 * @since 0.2.0
 */
export const work = (balancer: Balancer): number => impl(balancer).work

/**
 * One address of the pool as metrics report it.
 *
 * @example
 * ```ts
 * import type { Balancer } from "grpc-anchor/core"
 * const unserved = (a: Balancer.AddressMetrics) => a.wanted > 0 && a.states.READY === 0
 * ```
 *
 * @since 0.3.0
 */
export interface AddressMetrics {
  readonly address: string
  /** Connections the pool wants for it now: its `#N`, or the count an adaptive `#MIN..MAX` grew to. */
  readonly wanted: number
  /** Its slots by the raw state of their connection (every state present, zeros included). */
  readonly states: Readonly<Record<ConnectionState, number>>
  /** Calls in flight on its connections. */
  readonly inFlight: number
  /** Its connections the hung rule avoids now. */
  readonly hung: number
  /** Connections opened by adaptive growth, and closed by the shrink check, since it joined the pool. */
  readonly grown: number
  readonly shrunk: number
  /** How long (ms, up to `now`) the mass-removal grace has kept it; `undefined`: listed. */
  readonly keptForMs: number | undefined
}

/**
 * What metrics read from a pool: per address, then for the pool.
 *
 * @example
 * ```ts
 * import type { Balancer } from "grpc-anchor/core"
 * const holding = (m: Balancer.PoolMetrics) => m.kept > 0 // the mass-removal grace keeps addresses
 * ```
 *
 * @since 0.3.0
 */
export interface PoolMetrics {
  readonly target: string
  readonly addresses: ReadonlyArray<AddressMetrics>
  /** Addresses of the last accepted list left out by the cap. */
  readonly trimmed: number
  /** Addresses kept by the mass-removal grace now. */
  readonly kept: number
  /** Times the hung rule avoided a connection, over the balancer's life ({@link avoidances}). */
  readonly avoidances: number
}

/**
 * The pool's counters for metrics, read at collection time. O(n) in the
 * slots; it adds nothing to picks or events (the counters are kept anyway).
 * `now` is the time on the clock of the events' `now`, for the grace's age.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * const b = Balancer.make()
 * Balancer.step(b, { _tag: "Addresses", now: 0, target: "pass:///a:1#2", endpoints: [{ address: "a:1", count: 2 }], overCap: "fail", offset: 0 })
 * Balancer.metrics(b, 10).addresses[0] // { address: "a:1", wanted: 2, states: { IDLE: 2, READY: 0, ... }, ... }
 * ```
 *
 * @since 0.3.0
 */
export const metrics = (balancer: Balancer, now: number): PoolMetrics => {
  const b = impl(balancer)
  const addresses: Array<AddressMetrics> = []
  let kept = 0
  for (const address of b.addresses.values()) {
    const states: Record<ConnectionState, number> = { IDLE: 0, CONNECTING: 0, READY: 0, TRANSIENT_FAILURE: 0, SHUTDOWN: 0 }
    let hung = 0
    for (const slot of address.slots) {
      states[slot.raw]++
      if (slot.hung) hung++
    }
    const isKept = address.retainedUntil !== 0
    if (isKept) kept++
    addresses.push({
      address: address.address,
      wanted: address.count,
      states,
      inFlight: address.inFlight,
      hung,
      grown: address.grown,
      shrunk: address.shrunk,
      keptForMs: isKept ? Math.max(0, now - address.retainedSince) : undefined
    })
  }
  return { target: b.target, addresses, trimmed: b.trimmed, kept, avoidances: b.avoidances }
}
