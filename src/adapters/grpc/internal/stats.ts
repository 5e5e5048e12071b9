/**
 * How the policy of a channel hands its per-connection statistics to a
 * reader (AnchoredChannel, the tests and benchmarks): a sink passed in the
 * channel options under `STATS_KEY`. Internal: a sink is useless without
 * that key, so neither is exported from the package.
 */
import type * as Balancer from "../../../core/Balancer.js"
import * as LiveSet from "../../internal/liveSet.js"
import type { SubsetState } from "./keys.js"
import type { ChannelStats, ConnectionStats } from "../Stats.js"

/** Something that can report connection statistics: the policy instance of a channel. */
export interface StatsSource {
  readonly snapshot: () => ReadonlyArray<ConnectionStats>
}

/** What metrics read from one live policy: the core's counters and the policy's own. */
export interface PoolSample {
  readonly pool: Balancer.PoolMetrics
  /** Picks per address since the policy started (its released connections' included). */
  readonly picks: ReadonlyMap<string, number>
  /** Connections opened (subchannels created) per address. */
  readonly open: ReadonlyMap<string, number>
  /** The resolver's subset (`?subset=K` targets). */
  readonly subset: SubsetState | undefined
}

/** A live policy as metrics see it. */
export interface PoolSource {
  readonly sample: () => PoolSample | undefined
}

/**
 * The registry of live policies: every `anchor_round_robin` instance from
 * its first address list to its `destroy`, whether or not a sink reads it.
 * Metrics read it at collection time; nothing else does.
 */
const live = LiveSet.make<PoolSource>()

export const { track, untrack } = live

/** The samples of every live policy, now. */
export const samples = (): Array<PoolSample> => {
  const out: Array<PoolSample> = []
  for (const source of live.all()) {
    const sample = source.sample()
    if (sample !== undefined) out.push(sample)
  }
  return out
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
