/**
 * The channel-option and resolver-attribute keys by which grpc-anchor's
 * resolvers, its policy and its Effect layer talk to each other through
 * grpc-js. Internal: not exported from the package.
 */
import { experimental } from "@grpc/grpc-js"
import type * as Balancer from "../../../core/Balancer.js"
import type * as Target from "../../../core/Target.js"

/** The policy's name in a service config and its tracer name (`AnchorRoundRobin.TYPE_NAME`). */
export const POLICY_NAME = "anchor_round_robin"

/**
 * grpc-js drops keys with this prefix from subchannel arguments, so values
 * under it reach the policy (resolver attributes are merged into the options
 * the policy sees) without making otherwise equal subchannels unequal.
 */
const INTERNAL = experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX

/** Resolver attribute carrying a {@link Resolution}. */
export const RESOLUTION_KEY = `${INTERNAL}.grpc_anchor.resolution`

/** Channel option carrying a {@link StatsSink} (set by AnchoredChannel). */
export const STATS_KEY = `${INTERNAL}.grpc_anchor.stats`

/**
 * Channel option carrying the Effect context (services, logger, config
 * provider, tracer) an AnchoredChannel was made in; the `etcd` resolver runs
 * its watch in it. Its presence also means "made by AnchoredChannel": such a
 * channel never falls back to `register({ etcd })` or `ETCD_ENDPOINTS`.
 */
export const CONTEXT_KEY = `${INTERNAL}.grpc_anchor.context`

/** Channel option carrying the `Etcd` service (of an AnchoredChannel's context) for the `etcd` resolver. */
export const ETCD_CLIENT_KEY = `${INTERNAL}.grpc_anchor.etcd_client`

/**
 * Subchannel argument that makes each connection slot its own subchannel:
 * grpc-js shares one subchannel among equal (address, arguments, credentials).
 */
export const SLOT_KEY = "grpc_anchor.slot"

/** The grpc-js option a user sets to fix the TLS name for every connection. */
export const SSL_TARGET_NAME_OVERRIDE = "grpc.ssl_target_name_override"

/** What a grpc-anchor resolver tells the policy beside the address list. */
export interface Resolution {
  /** The channel target, for error messages. */
  readonly target: string
  /**
   * Connections per address (`Address.format` text) to start with: the
   * target's `#N` (or `#MIN` of `#MIN..MAX`), or an etcd record's own count.
   * Only the addresses of the client's subset (`?subset=K`) are listed;
   * absent addresses get the policy config's default.
   */
  readonly counts: ReadonlyMap<string, number>
  /**
   * Per address, the most connections an adaptive count (`#MIN..MAX`) may
   * grow to; absent (or not above the count) means the count is fixed.
   */
  readonly maxCounts?: ReadonlyMap<string, number>
  /** The target's `?pick=`; absent when the target names none (the policy config's `pickMode` applies). */
  readonly pick?: Target.PickMode
  /**
   * What a list over the channel's cap does: `"fail"` for a `pass:` target
   * (its author fixes the counts), `"keepFirst"` for an etcd set (it keeps
   * serving). A resolver that is not grpc-anchor's says nothing: the core's
   * `Balancer.DEFAULT_OVER_CAP` applies.
   */
  readonly overCap: Balancer.OverCap
  /** TLS server name per address, when it differs from the address's host. */
  readonly serverNames: ReadonlyMap<string, string>
  /**
   * With `?subset=K`: the backends chosen now, and the moves so far
   * (`Subset.moves` summed over the resolver's lists), for metrics.
   */
  readonly subset?: SubsetState
}

/** A resolver's subset for metrics: its size now and the moves so far. */
export interface SubsetState {
  readonly size: number
  readonly moves: number
}

export const isResolution = (u: unknown): u is Resolution =>
  typeof u === "object" && u !== null && "target" in u && "counts" in u && (u as Resolution).counts instanceof Map
