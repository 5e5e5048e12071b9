/**
 * The one source of truth of grpc-anchor's metrics: what each metric is
 * (name, kind, unit, attributes, meaning) and how a collection reads all of
 * them, at once, from the counters the core and the adapters already keep
 * (the live policies, the live service watches, the live registrations).
 * The OpenTelemetry instruments and the Effect metrics are two views of
 * {@link collect}. Internal; `Metrics` exports the definitions.
 */
import type * as Balancer from "../../../core/Balancer.js"
import { type RestartReason, RESTART_REASONS, watches } from "../../etcd/internal/watchStats.js"
import { registrations } from "../../etcd/internal/registrationStats.js"
import { samples } from "../../grpc/internal/stats.js"

/**
 * A metric's kind: a gauge (a value now) or a monotonic counter (a total
 * since its source started: a channel's pool, a watch, a registration).
 *
 * @example
 * ```ts
 * import { Metrics } from "grpc-anchor"
 * const counters = Metrics.definitions.filter((d) => d.kind === "counter")
 * ```
 *
 * @since 0.3.0
 */
export type Kind = "gauge" | "counter"

/**
 * One metric: its name, kind, unit, attributes and meaning.
 *
 * @example
 * ```ts
 * import { Metrics } from "grpc-anchor"
 * // { name: "grpc_anchor.connections", kind: "gauge", unit: "{connection}", attributes: ["grpc_anchor.target", ...], ... }
 * const connections = Metrics.definitions.find((d) => d.name === "grpc_anchor.connections")
 * ```
 *
 * @since 0.3.0
 */
export interface Definition {
  readonly name: string
  readonly kind: Kind
  /** UCUM, with OpenTelemetry's `{annotation}` for counts of things. */
  readonly unit: string
  readonly attributes: ReadonlyArray<string>
  readonly description: string
  /** How two sources with the same attributes combine (two channels on one target): summed, or the least/greatest. */
  readonly merge: "sum" | "min" | "max"
}

const TARGET = "grpc_anchor.target"
const ADDRESS = "grpc_anchor.address"
const STATE = "grpc_anchor.state"
const SERVICE = "grpc_anchor.service"
const REASON = "grpc_anchor.reason"

const define = (
  name: string,
  kind: Kind,
  unit: string,
  attributes: ReadonlyArray<string>,
  description: string,
  merge: Definition["merge"] = "sum"
): Definition => ({ name, kind, unit, attributes, description, merge })

/** Every metric, in the order the README lists them. */
export const definitions = {
  connections: define("grpc_anchor.connections", "gauge", "{connection}", [TARGET, ADDRESS, STATE], "Connections of an address by state (IDLE, CONNECTING, READY, TRANSIENT_FAILURE, SHUTDOWN); every state is reported, zeros included."),
  wanted: define("grpc_anchor.connections.wanted", "gauge", "{connection}", [TARGET, ADDRESS], "Connections the pool wants for an address: its #N, or the count an adaptive #MIN..MAX grew to."),
  open: define("grpc_anchor.connections.open", "gauge", "{connection}", [TARGET, ADDRESS], "Connections the pool has opened for an address (subchannels made; openings are paced, 16 per event-loop turn)."),
  picks: define("grpc_anchor.picks", "counter", "{pick}", [TARGET, ADDRESS], "Calls the pool picked a connection of this address for."),
  inFlight: define("grpc_anchor.calls.in_flight", "gauge", "{call}", [TARGET, ADDRESS], "Calls started on this address's connections and not ended (least_request compares these)."),
  hung: define("grpc_anchor.connections.hung", "gauge", "{connection}", [TARGET, ADDRESS], "Connections of an address the hung rule avoids now: their calls stopped being answered while other addresses answer (grpc_anchor.hung_after_ms)."),
  avoidances: define("grpc_anchor.hung.avoidances", "counter", "{avoidance}", [TARGET], "Times the hung rule took a connection out of the picks."),
  grows: define("grpc_anchor.adaptive.grows", "counter", "{connection}", [TARGET, ADDRESS], "Connections an adaptive address (#MIN..MAX) opened because every one of its connections was full."),
  shrinks: define("grpc_anchor.adaptive.shrinks", "counter", "{connection}", [TARGET, ADDRESS], "Connections an adaptive address closed after a shrink period without the load that needed them."),
  trimmed: define("grpc_anchor.cap.trimmed", "gauge", "{address}", [TARGET], "Addresses of the last etcd list left out because the pool would exceed grpc_anchor.max_connections."),
  graceAddresses: define("grpc_anchor.grace.addresses", "gauge", "{address}", [TARGET], "Addresses an update removed that the mass-removal grace still keeps (still picked)."),
  graceDuration: define("grpc_anchor.grace.duration", "gauge", "s", [TARGET, ADDRESS], "How long the mass-removal grace has kept this address (reported only while it is kept).", "max"),
  subsetSize: define("grpc_anchor.subset.size", "gauge", "{address}", [TARGET], "Backends in this client's subset (?subset=K targets)."),
  subsetMoves: define("grpc_anchor.subset.moves", "counter", "{address}", [TARGET], "Backends moved into or out of the subset by membership changes, beyond the backends that joined or left (Subset.moves)."),
  restarts: define("grpc_anchor.etcd.watch.restarts", "counter", "{restart}", [SERVICE, REASON], "Restarts of a service's etcd watch by reason: member_failover (moved to another member, no relist), compacted, revision_reset, cancelled (each a relist), unreachable (a listing failed and is retried)."),
  contactAge: define("grpc_anchor.etcd.contact.age", "gauge", "s", [SERVICE], "Time since etcd last answered the service's watch or listing (a quiet watch is answered every 0.4 x memberTimeout).", "min"),
  endpoints: define("grpc_anchor.etcd.endpoints", "gauge", "{endpoint}", [SERVICE], "Endpoints of the service in the last set read from etcd (before subsetting)."),
  regrants: define("grpc_anchor.registration.lease.regrants", "counter", "{lease}", [SERVICE, ADDRESS], "Leases granted after the first: one for each lease lost (expired, revoked, wiped) or given up on and replaced."),
  reputs: define("grpc_anchor.registration.reputs", "counter", "{put}", [SERVICE, ADDRESS], "Writes of the record after it was first in etcd, each because etcd no longer held it exactly (deleted, wiped, a new lease)."),
  leaseMoves: define("grpc_anchor.registration.lease.moves", "counter", "{move}", [SERVICE, ADDRESS], "Times the record was confirmed under another lease than the one it was last under."),
  keepAliveAge: define("grpc_anchor.registration.keepalive.age", "gauge", "s", [SERVICE, ADDRESS], "Time since etcd last renewed the registration's lease (absent before the first renewal).", "max")
} as const satisfies Record<string, Definition>

/**
 * One value of one metric for one set of attributes.
 *
 * @example
 * ```ts
 * import { Metrics } from "grpc-anchor"
 * // { definition: { name: "grpc_anchor.picks", ... }, attributes: { "grpc_anchor.target": "pass:///...", "grpc_anchor.address": "10.0.0.1:9080" }, value: 1250 }
 * const picks = Metrics.collect().filter((p) => p.definition.name === "grpc_anchor.picks")
 * ```
 *
 * @since 0.3.0
 */
export interface Point {
  readonly definition: Definition
  readonly attributes: Readonly<Record<string, string>>
  readonly value: number
}

const STATES: ReadonlyArray<Balancer.ConnectionState> = ["IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE", "SHUTDOWN"]

/**
 * Every metric's points now. Reads the live sources once: O(connections +
 * watches + registrations). `now` (ms since the epoch) is for the etcd ages.
 */
export const collect = (now: number = Date.now()): ReadonlyArray<Point> => {
  const points = new Map<string, { definition: Definition; attributes: Record<string, string>; value: number }>()
  const add = (definition: Definition, attributes: Record<string, string>, value: number): void => {
    const key = `${definition.name}\u0000${definition.attributes.map((a) => attributes[a]).join("\u0000")}`
    const existing = points.get(key)
    if (existing === undefined) points.set(key, { definition, attributes, value })
    else if (definition.merge === "sum") existing.value += value
    else if (definition.merge === "min") existing.value = Math.min(existing.value, value)
    else existing.value = Math.max(existing.value, value)
  }
  const d = definitions
  for (const { open, picks, pool, subset } of samples()) {
    const target = pool.target
    for (const address of pool.addresses) {
      const at = { [TARGET]: target, [ADDRESS]: address.address }
      for (const state of STATES) add(d.connections, { ...at, [STATE]: state }, address.states[state])
      add(d.wanted, at, address.wanted)
      add(d.open, at, open.get(address.address) ?? 0)
      add(d.picks, at, picks.get(address.address) ?? 0)
      add(d.inFlight, at, address.inFlight)
      add(d.hung, at, address.hung)
      add(d.grows, at, address.grown)
      add(d.shrinks, at, address.shrunk)
      if (address.keptForMs !== undefined) add(d.graceDuration, at, address.keptForMs / 1000)
    }
    const of = { [TARGET]: target }
    add(d.avoidances, of, pool.avoidances)
    add(d.trimmed, of, pool.trimmed)
    add(d.graceAddresses, of, pool.kept)
    if (subset !== undefined) {
      add(d.subsetSize, of, subset.size)
      add(d.subsetMoves, of, subset.moves)
    }
  }
  for (const watch of watches()) {
    const of = { [SERVICE]: watch.service }
    for (const reason of RESTART_REASONS) add(d.restarts, { ...of, [REASON]: reason }, watch.restarts[reason as RestartReason])
    if (watch.lastContact > 0) add(d.contactAge, of, Math.max(0, now - watch.lastContact) / 1000)
    add(d.endpoints, of, watch.endpoints)
  }
  for (const registration of registrations()) {
    const of = { [SERVICE]: registration.service, [ADDRESS]: registration.address }
    const counters = registration.counters()
    add(d.regrants, of, counters.leaseRegrants)
    add(d.reputs, of, counters.recordReputs)
    add(d.leaseMoves, of, counters.leaseMoves)
    const last = counters.lastKeepAliveMillis
    if (last !== undefined) add(d.keepAliveAge, of, Math.max(0, now - last) / 1000)
  }
  return [...points.values()]
}
