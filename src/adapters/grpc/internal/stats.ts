/**
 * How the policy of a channel hands its per-connection statistics to a
 * reader (AnchoredChannel, the tests and benchmarks): a sink passed in the
 * channel options under `STATS_KEY`. Internal: a sink is useless without
 * that key, so neither is exported from the package.
 */
import type { ChannelStats, ConnectionStats } from "../Stats.js"

/** Something that can report connection statistics: the policy instance of a channel. */
export interface StatsSource {
  readonly snapshot: () => ReadonlyArray<ConnectionStats>
}

/**
 * Receives the policy of a channel (grpc-js may replace it, e.g. after the
 * channel went idle) and a signal whenever a connection's state or the
 * address list changed.
 */
export interface StatsSink {
  readonly attach: (source: StatsSource) => void
  readonly detach: (source: StatsSource) => void
  readonly changed: () => void
}

/**
 * A sink that keeps the latest source and calls `onChange` on every signal.
 *
 * @example
 * ```ts
 * const sink = makeSink(target)
 * const client = new EchoClient(target, insecure, { [STATS_KEY]: sink })
 * sink.read().connections // [{ address, index, state, picked, inFlight }, ...]
 * ```
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
