/**
 * Per-connection statistics of an `anchor_round_robin` channel, as an
 * `AnchoredChannel` reports them (`anchored.stats`, `anchored.changes`).
 *
 * @example
 * ```ts
 * import type { Stats } from "grpc-anchor"
 * const readyShare = (stats: Stats.ChannelStats): number =>
 *   stats.connections.filter((c) => c.state === "READY").length / Math.max(1, stats.connections.length)
 * ```
 *
 * @since 0.1.0
 */

/**
 * The connectivity state of one connection, by grpc-js's names.
 *
 * @example
 * ```ts
 * const up = (state: Stats.ConnectionState) => state === "READY"
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type ConnectionState = "IDLE" | "CONNECTING" | "READY" | "TRANSIENT_FAILURE" | "SHUTDOWN"

/**
 * One connection slot: which address, which of its N connections, its state
 * and the calls the policy sent to it.
 *
 * @example
 * ```ts
 * // { address: "10.0.0.1:9080", index: 1, state: "READY", picked: 1250, inFlight: 3, hung: false, avoided: 0 }
 * const label = (c: Stats.ConnectionStats) => `${c.address}#${c.index} ${c.state}`
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface ConnectionStats {
  readonly address: string
  /** Which of the address's N connections (0..N-1). */
  readonly index: number
  readonly state: ConnectionState
  /** Calls picked for this connection since it was created. */
  readonly picked: number
  /** Calls started on this connection and not yet ended. */
  readonly inFlight: number
  /** Avoided now by the hung rule: its calls stopped being answered while other addresses answer (since 0.3.0). */
  readonly hung: boolean
  /** Times the hung rule avoided this connection since it was created (since 0.3.0). */
  readonly avoided: number
}

/**
 * A snapshot of a channel's connection pool: its canonical target and one
 * entry per connection slot.
 *
 * @example
 * ```ts
 * const stats: Stats.ChannelStats = yield* anchored.stats
 * stats.connections.length // 3 for pass:///a:1#2,b:2
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface ChannelStats {
  readonly target: string
  readonly connections: ReadonlyArray<ConnectionStats>
}
