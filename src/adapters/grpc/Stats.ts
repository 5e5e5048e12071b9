/**
 * Per-connection statistics of an `anchor_round_robin` channel.
 *
 * @since 0.1.0
 */

/**
 * The connectivity state of one connection, by grpc-js's names.
 *
 * @since 0.1.0
 */
export type ConnectionState = "IDLE" | "CONNECTING" | "READY" | "TRANSIENT_FAILURE" | "SHUTDOWN"

/**
 * One connection slot: which address, which of its N connections, its state
 * and the calls the policy sent to it.
 *
 * @since 0.1.0
 */
export interface ConnectionStats {
  readonly address: string
  readonly index: number
  readonly state: ConnectionState
  /** Calls picked for this connection since it was created. */
  readonly picked: number
  /** Calls started on this connection and not yet ended. */
  readonly inFlight: number
}

/**
 * A snapshot of a channel's connection pool.
 *
 * @since 0.1.0
 */
export interface ChannelStats {
  readonly target: string
  readonly connections: ReadonlyArray<ConnectionStats>
}

/**
 * Something that can report connection statistics: the policy instance of a
 * channel.
 *
 * @since 0.1.0
 */
export interface StatsSource {
  readonly snapshot: () => ReadonlyArray<ConnectionStats>
}

/**
 * Receives the policy of a channel (grpc-js may replace it, e.g. after the
 * channel went idle) and a signal whenever a connection's state or the
 * address list changed.
 *
 * @since 0.1.0
 */
export interface StatsSink {
  readonly attach: (source: StatsSource) => void
  readonly detach: (source: StatsSource) => void
  readonly changed: () => void
}

/**
 * A sink that keeps the latest source and calls `onChange` on every signal.
 *
 * @since 0.1.0
 */
export const makeSink = (target: string, onChange: () => void = () => {}): StatsSink & {
  readonly read: () => ChannelStats
} => {
  let current: StatsSource | undefined
  return {
    attach: (source) => {
      current = source
      onChange()
    },
    detach: (source) => {
      if (current === source) {
        current = undefined
        onChange()
      }
    },
    changed: onChange,
    read: () => ({ target, connections: current?.snapshot() ?? [] })
  }
}
