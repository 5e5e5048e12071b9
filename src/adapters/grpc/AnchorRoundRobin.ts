/**
 * The `anchor_round_robin` load-balancing policy for @grpc/grpc-js: N
 * connections per address, calls spread over the ready ones in the smooth
 * weighted order of the core.
 *
 * Every decision lives in the pure core's `Balancer` (the settings and their
 * precedence, each address's count and range, what a list over the cap
 * does, slots, sibling suspicion, the channel state, the balanced start,
 * the cap, the mass-removal grace, where retries go after a connection
 * ends); the load balancer grpc-js creates per channel
 * (`internal/loadBalancer.ts`, not exported) only forwards grpc-js events
 * to it and applies what it answers. This module is what users touch: the
 * policy's name, its channel options, its config, and {@link setup}.
 *
 * Tracing: `GRPC_TRACE=anchor_round_robin GRPC_VERBOSITY=DEBUG` logs every
 * decision through grpc-js's `experimental.trace`.
 *
 * Settings (`Balancer.SETTINGS`, decoded by `Balancer.decodeSettings`):
 * each from the policy config's field, else its channel option, else its
 * default. Channel options: {@link START_WAIT_MS_OPTION},
 * {@link MAX_CONNECTIONS_OPTION}, {@link REMOVAL_GRACE_MS_OPTION},
 * {@link MAX_STREAMS_PER_CONNECTION_OPTION}, {@link SHRINK_IDLE_MS_OPTION},
 * {@link HUNG_AFTER_MS_OPTION}, {@link EWMA_DECAY_MS_OPTION}.
 * They are read once, from the first address list a policy instance gets
 * (grpc-js makes a new instance when the channel leaves IDLE); the counts
 * of addresses the resolver gave none follow the latest config. A bad value
 * puts the channel in TRANSIENT_FAILURE with a message naming the setting.
 * The resolver's resolution (grpc-anchor's own resolvers) gives the counts,
 * the adaptive maxima, the target's pick mode (it wins over `pickMode`) and
 * what a list over the cap does (`Balancer.listing`).
 *
 * @since 0.1.0
 */
import { experimental } from "@grpc/grpc-js"
import * as Balancer from "../../core/Balancer.js"
import * as config from "./internal/config.js"
import { POLICY_NAME } from "./internal/keys.js"
import { AnchorRoundRobinLoadBalancer } from "./internal/loadBalancer.js"

/**
 * The policy's name in a service config (and its tracer name).
 *
 * @example
 * ```ts
 * import { AnchorRoundRobin } from "grpc-anchor"
 * const serviceConfig = { loadBalancingConfig: [{ [AnchorRoundRobin.TYPE_NAME]: { connectionsPerAddress: 2 } }] }
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const TYPE_NAME = POLICY_NAME

/**
 * Channel option: bound on the balanced-start wait in ms (default 250); the
 * core's `Balancer.START_WAIT_MS_OPTION`.
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { AnchorRoundRobin } from "grpc-anchor"
 * const client = new EchoClient("pass:///10.0.0.1:9080#2", grpc.credentials.createInsecure(), { [AnchorRoundRobin.START_WAIT_MS_OPTION]: 100 })
 * ```
 *
 * @category settings
 * @since 0.2.0
 */
export const START_WAIT_MS_OPTION = Balancer.START_WAIT_MS_OPTION

/**
 * Channel option: cap on one channel's connections (default 4096); a `pass:`
 * target over it fails, an etcd set over it keeps whole addresses in
 * address order while they fit. The core's `Balancer.MAX_CONNECTIONS_OPTION`.
 *
 * @category settings
 * @since 0.2.0
 */
export const MAX_CONNECTIONS_OPTION = Balancer.MAX_CONNECTIONS_OPTION

/**
 * Channel option: grace period in ms for READY backends dropped by a
 * registry mass removal (default 30000; 0 turns the protection off). The
 * core's `Balancer.REMOVAL_GRACE_MS_OPTION`.
 *
 * @category settings
 * @since 0.2.0
 */
export const REMOVAL_GRACE_MS_OPTION = Balancer.REMOVAL_GRACE_MS_OPTION

/**
 * Channel option: streams one connection carries before an adaptive address
 * (`#MIN..MAX`) counts it full (default 100; set it to the servers' HTTP/2
 * MAX_CONCURRENT_STREAMS: grpc-js does not expose the value the server
 * announces). The core's `Balancer.MAX_STREAMS_PER_CONNECTION_OPTION`.
 *
 * @category settings
 * @since 0.2.0
 */
export const MAX_STREAMS_PER_CONNECTION_OPTION = Balancer.MAX_STREAMS_PER_CONNECTION_OPTION

/**
 * Channel option: ms an adaptive address must stay un-busy before an extra
 * connection is released (default 30000); grpc-js closes it at its subchannel
 * pool's next sweep, within about 10 s. The core's
 * `Balancer.SHRINK_IDLE_MS_OPTION`.
 *
 * @category settings
 * @since 0.2.0
 */
export const SHRINK_IDLE_MS_OPTION = Balancer.SHRINK_IDLE_MS_OPTION

/**
 * Channel option: floor in ms of the hung rule's threshold and its probe
 * period (default 1000; 0 turns the rule off). The core's
 * `Balancer.HUNG_AFTER_MS_OPTION`.
 *
 * @category settings
 * @since 0.3.0
 */
export const HUNG_AFTER_MS_OPTION = Balancer.HUNG_AFTER_MS_OPTION

/**
 * Channel option: decay time constant in ms of the `ewma` pick mode's
 * latency estimates (default 10000). The core's
 * `Balancer.EWMA_DECAY_MS_OPTION`.
 *
 * @category settings
 * @since 0.3.0
 */
export const EWMA_DECAY_MS_OPTION = Balancer.EWMA_DECAY_MS_OPTION

/**
 * The policy's configuration:
 * `{ "anchor_round_robin": { "connectionsPerAddress": 2, "maxConnectionsPerAddress": 8, "pickMode": "least_request", "maxStreamsPerConnection": 100, "shrinkIdleMs": 30000, "startWaitMs": 250, "maxConnections": 4096, "removalGraceMs": 30000, "hungAfterMs": 1000, "ewmaDecayMs": 10000 } }`,
 * every field optional (`Balancer.PolicyConfigJson`, ranges and defaults in
 * `Balancer.SETTINGS`). `connectionsPerAddress` and
 * `maxConnectionsPerAddress` apply to addresses whose count the resolver did
 * not give (grpc-anchor's own resolvers always do); `pickMode` applies
 * unless the target names one; the others win over their channel options.
 *
 * @example
 * ```ts
 * import { AnchorRoundRobin } from "grpc-anchor"
 * AnchorRoundRobin.AnchorRoundRobinConfig.createFromJson({ connectionsPerAddress: 2 }).connectionsPerAddress // 2
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const AnchorRoundRobinConfig: typeof config.AnchorRoundRobinConfig = config.AnchorRoundRobinConfig

/**
 * The type of an {@link AnchorRoundRobinConfig}: `connectionsPerAddress`
 * and the other fields (`tuning`), and `config`, the whole config as the
 * core reads it.
 *
 * @example
 * ```ts
 * import { AnchorRoundRobin } from "grpc-anchor"
 * const config: AnchorRoundRobin.AnchorRoundRobinConfig = new AnchorRoundRobin.AnchorRoundRobinConfig(2, { pickMode: "least_request" })
 * config.config // { connectionsPerAddress: 2, pickMode: "least_request" }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type AnchorRoundRobinConfig = config.AnchorRoundRobinConfig

/**
 * Registers `anchor_round_robin` with the app's @grpc/grpc-js.
 *
 * @example
 * ```ts
 * import { AnchorRoundRobin } from "grpc-anchor"
 * AnchorRoundRobin.setup() // register() does this, and registers the resolvers too
 * ```
 *
 * @category registration
 * @since 0.1.0
 */
export const setup = (): void => {
  experimental.registerLoadBalancerType(TYPE_NAME, AnchorRoundRobinLoadBalancer, AnchorRoundRobinConfig)
}
