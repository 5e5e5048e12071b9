/**
 * The balancer's options (`Options`), their defaults and limits, and the
 * names of the channel options that set them.
 *
 * @since 0.2.0
 */
import type { PickMode } from "../Target.js"

/**
 * Default cap on one channel's connections (see the module doc).
 *
 * @category constants
 * @since 0.2.0
 */
export const DEFAULT_MAX_CONNECTIONS = 4096

/**
 * Default bound on the balanced-start wait, in ms (see the module doc).
 *
 * @category constants
 * @since 0.2.0
 */
export const DEFAULT_START_WAIT_MS = 250

/**
 * Default grace period for READY addresses removed by a mass removal, in ms.
 *
 * @category constants
 * @since 0.2.0
 */
export const DEFAULT_REMOVAL_GRACE_MS = 30_000

/**
 * How long the siblings of a dropped connection are skipped, at most, in ms.
 *
 * @category constants
 * @since 0.2.0
 */
export const SUSPICION_MS = 1_000

/**
 * Default bound on how long retries are redirected after a connection with
 * calls in flight ends, in ms (see the module doc). A reconnect answers in a
 * few ms to tens of ms, but a busy process reads its sockets late: 1 s, as
 * {@link SUSPICION_MS}, covers that. Only picks that find no fresh
 * connection wait, and only until one is READY.
 *
 * @category constants
 * @since 0.3.0
 */
export const DEFAULT_REPLACEMENT_WAIT_MS = 1_000

/**
 * Default stream limit assumed per connection when deciding that an
 * adaptive address is saturated (grpc-js does not expose the server's HTTP/2
 * `MAX_CONCURRENT_STREAMS` through its public API; 100 is what most servers
 * announce, e.g. Go's grpc and Envoy; grpc-js servers announce no limit
 * unless `grpc.max_concurrent_streams` is set).
 *
 * @category constants
 * @since 0.2.0
 */
export const DEFAULT_MAX_STREAMS_PER_CONNECTION = 100

/**
 * Default time an adaptive address must stay un-busy before one of its
 * extra connections is closed, in ms (see the module doc).
 *
 * @category constants
 * @since 0.2.0
 */
export const DEFAULT_SHRINK_IDLE_MS = 30_000

/**
 * Default floor of the hung rule's threshold, in ms (0 turns the rule off;
 * see "Hung connections" in the module doc): a connection whose second call
 * since its last answer has waited this long, with a later one unanswered
 * too, while another address answered meanwhile, takes no new calls but one
 * probe per this period. 1 s: well above a healthy loopback or
 * in-datacenter call (8 times the other addresses' mean latency is the
 * threshold when that is higher), and low enough that a frozen backend
 * stops getting calls within about a second.
 *
 * @category constants
 * @since 0.3.0
 */
export const DEFAULT_HUNG_AFTER_MS = 1_000

/**
 * Default decay time constant of the `ewma` pick mode's latency estimates,
 * in ms (linkerd's and Finagle's peak EWMA use 10 s).
 *
 * @category constants
 * @since 0.3.0
 */
export const DEFAULT_EWMA_DECAY_MS = 10_000

/**
 * How calls pick a connection (see the module doc): `round_robin`, the
 * smooth weighted round robin (the default); `least_request`, the power of
 * two choices by calls in flight; `ewma` (since 0.3.0), the power of two
 * choices by peak-EWMA latency x (calls in flight + 1). The target
 * grammar's type, re-exported.
 *
 * @category models
 * @since 0.2.0
 */
export type { PickMode } from "../Target.js"

/**
 * The pick modes: the target grammar's one list, re-exported.
 *
 * @category models
 * @since 0.2.0
 */
export { PICK_MODES } from "../Target.js"

/**
 * The machine's tunables. Every field has a documented default.
 *
 * @category models
 * @since 0.2.0
 */
export interface Options {
  /** Bound on the balanced-start wait (ms, >= 0; 0 serves at the first READY). */
  readonly startWaitMs: number
  /** Cap on the number of connections (slots), >= 1. */
  readonly maxConnections: number
  /** How long READY addresses dropped by a mass removal are kept (ms, >= 0; 0 disables). */
  readonly removalGraceMs: number
  /** The share (0..1) of READY addresses an update may remove at once before the grace applies. */
  readonly removalThreshold: number
  /** How long siblings of a dropped connection are skipped, at most (ms). */
  readonly suspicionMs: number
  /** Build trace lines (off by default: they cost allocations on every event). */
  readonly trace: boolean
  /** The pick mode when the address list names none. */
  readonly pickMode: PickMode
  /** Streams one connection is assumed to carry at once (>= 1): the saturation point of adaptive counts. */
  readonly maxStreamsPerConnection: number
  /** How long an adaptive address must stay un-busy before an extra connection is closed (ms, >= 1). */
  readonly shrinkIdleMs: number
  /** Bound on the redirection of retries after a connection with calls in flight ends (ms, >= 0; 0 turns it off). */
  readonly replacementWaitMs: number
  /** Floor of the hung rule's threshold, and its probe period (ms, >= 0; 0 turns the rule off). */
  readonly hungAfterMs: number
  /** Decay time constant of the `ewma` latency estimates (ms, >= 1). */
  readonly ewmaDecayMs: number
}

/**
 * The defaults of {@link Options}.
 *
 * @category constants
 * @since 0.2.0
 */
export const defaultOptions: Options = {
  startWaitMs: DEFAULT_START_WAIT_MS,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  removalGraceMs: DEFAULT_REMOVAL_GRACE_MS,
  removalThreshold: 0.5,
  suspicionMs: SUSPICION_MS,
  trace: false,
  pickMode: "round_robin",
  maxStreamsPerConnection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
  shrinkIdleMs: DEFAULT_SHRINK_IDLE_MS,
  replacementWaitMs: DEFAULT_REPLACEMENT_WAIT_MS,
  hungAfterMs: DEFAULT_HUNG_AFTER_MS,
  ewmaDecayMs: DEFAULT_EWMA_DECAY_MS
}

/**
 * Channel option for the setting `startWaitMs`: bound on the
 * balanced-start wait in ms (default 250).
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { Balancer } from "grpc-anchor/core"
 * const options: grpc.ChannelOptions = { [Balancer.START_WAIT_MS_OPTION]: 100 }
 * ```
 *
 * @category settings
 * @since 0.3.0
 */
export const START_WAIT_MS_OPTION = "grpc_anchor.start_wait_ms"

/**
 * Channel option for the setting `maxConnections`: cap on one
 * channel's connections (default 4096).
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { Balancer } from "grpc-anchor/core"
 * const options: grpc.ChannelOptions = { [Balancer.MAX_CONNECTIONS_OPTION]: 256 }
 * ```
 *
 * @category settings
 * @since 0.3.0
 */
export const MAX_CONNECTIONS_OPTION = "grpc_anchor.max_connections"

/**
 * Channel option for the setting `removalGraceMs`: grace period in ms
 * for READY backends dropped by a registry mass removal (default 30000; 0
 * turns the protection off).
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { Balancer } from "grpc-anchor/core"
 * const options: grpc.ChannelOptions = { [Balancer.REMOVAL_GRACE_MS_OPTION]: 0 }
 * // 0: an update that drops every READY backend takes effect at once
 * ```
 *
 * @category settings
 * @since 0.3.0
 */
export const REMOVAL_GRACE_MS_OPTION = "grpc_anchor.removal_grace_ms"

/**
 * Channel option for the setting `maxStreamsPerConnection`: streams one
 * connection carries before an adaptive address counts it full (default
 * 100; set it to the servers' MAX_CONCURRENT_STREAMS).
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { Balancer } from "grpc-anchor/core"
 * const options: grpc.ChannelOptions = { [Balancer.MAX_STREAMS_PER_CONNECTION_OPTION]: 250 }
 * ```
 *
 * @category settings
 * @since 0.3.0
 */
export const MAX_STREAMS_PER_CONNECTION_OPTION = "grpc_anchor.max_streams_per_connection"

/**
 * Channel option for the setting `shrinkIdleMs`: ms an adaptive address
 * must stay un-busy before an extra connection is released (default 30000).
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { Balancer } from "grpc-anchor/core"
 * const options: grpc.ChannelOptions = { [Balancer.SHRINK_IDLE_MS_OPTION]: 60_000 }
 * ```
 *
 * @category settings
 * @since 0.3.0
 */
export const SHRINK_IDLE_MS_OPTION = "grpc_anchor.shrink_idle_ms"

/**
 * Channel option for the setting `hungAfterMs`: floor in ms of the hung
 * rule's threshold and its probe period (default 1000; 0 turns the rule
 * off).
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { Balancer } from "grpc-anchor/core"
 * const options: grpc.ChannelOptions = { [Balancer.HUNG_AFTER_MS_OPTION]: 0 }
 * // 0: a connection whose calls stop being answered keeps its share
 * ```
 *
 * @category settings
 * @since 0.3.0
 */
export const HUNG_AFTER_MS_OPTION = "grpc_anchor.hung_after_ms"

/**
 * Channel option for the setting `ewmaDecayMs`: decay time constant in ms
 * of the `ewma` pick mode's latency estimates (default 10000).
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { Balancer } from "grpc-anchor/core"
 * const options: grpc.ChannelOptions = { [Balancer.EWMA_DECAY_MS_OPTION]: 5_000 }
 * ```
 *
 * @category settings
 * @since 0.3.0
 */
export const EWMA_DECAY_MS_OPTION = "grpc_anchor.ewma_decay_ms"
