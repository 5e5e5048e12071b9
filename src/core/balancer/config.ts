/**
 * The balancer's options, their defaults and limits, the policy config
 * (its Schema and errors) and the connection cap.
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Expansion from "../Expansion.js"
import * as Target from "../Target.js"

/**
 * Default cap on one channel's connections (see the module doc).
 *
 * @since 0.2.0
 */
export const DEFAULT_MAX_CONNECTIONS = 4096

/**
 * Default bound on the balanced-start wait, in ms (see the module doc).
 *
 * @since 0.2.0
 */
export const DEFAULT_START_WAIT_MS = 250

/**
 * Default grace period for READY addresses removed by a mass removal, in ms.
 *
 * @since 0.2.0
 */
export const DEFAULT_REMOVAL_GRACE_MS = 30_000

/**
 * How long the siblings of a dropped connection are skipped, at most, in ms.
 *
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
 * @since 0.3.0
 */
export const DEFAULT_MAX_STREAMS_PER_CONNECTION = 100

/**
 * Default time an adaptive address must stay un-busy before one of its
 * extra connections is closed, in ms (see the module doc).
 *
 * @since 0.3.0
 */
export const DEFAULT_SHRINK_IDLE_MS = 30_000

/**
 * How calls pick a connection (see the module doc): the smooth weighted
 * round robin (the default) or the load-aware power of two choices.
 *
 * @since 0.3.0
 */
export type PickMode = Target.PickMode

/**
 * The pick modes (the target grammar's list).
 *
 * @since 0.3.0
 */
export const PICK_MODES: ReadonlyArray<PickMode> = Target.PICK_MODES

/**
 * The machine's tunables. Every field has a documented default.
 *
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
}

/**
 * The defaults of {@link Options}.
 *
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
  replacementWaitMs: DEFAULT_REPLACEMENT_WAIT_MS
}

/**
 * The JSON form of the `anchor_round_robin` policy config, every field
 * optional: `{ "connectionsPerAddress": 2, "maxConnectionsPerAddress": 8,
 * "pickMode": "least_request", "maxStreamsPerConnection": 100,
 * "shrinkIdleMs": 30000, "startWaitMs": 250, "maxConnections": 4096,
 * "removalGraceMs": 30000 }`. `maxConnectionsPerAddress` (>=
 * `connectionsPerAddress`) makes the count of addresses the resolver gave
 * no count for adaptive.
 *
 * @since 0.2.0
 */
export const PolicyConfigJson = Schema.Struct({
  connectionsPerAddress: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 256 }))),
  maxConnectionsPerAddress: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 256 }))),
  pickMode: Schema.optionalKey(Schema.Literals(Target.PICK_MODES)),
  maxStreamsPerConnection: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))),
  shrinkIdleMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 86_400_000 }))),
  startWaitMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 60_000 }))),
  maxConnections: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))),
  removalGraceMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3_600_000 })))
})

/**
 * A decoded policy config.
 *
 * @since 0.2.0
 */
export type PolicyConfig = typeof PolicyConfigJson.Type

/**
 * A policy config that does not decode: `reason` says which field and what
 * was expected.
 *
 * @since 0.2.0
 */
export class PolicyConfigError extends Data.TaggedError("PolicyConfigError")<{
  readonly input: unknown
  readonly reason: string
}> {
  override get message(): string {
    return `anchor_round_robin config ${safeJson(this.input)} is not valid: ${this.reason}`
  }
}

export const safeJson = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

export const decodeConfigJson = Schema.decodeUnknownResult(PolicyConfigJson)

/**
 * Decodes an `anchor_round_robin` config (`undefined`/`null` is `{}`).
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * Balancer.decodeConfig({ connectionsPerAddress: 2 }) // Success({ connectionsPerAddress: 2 })
 * Balancer.decodeConfig({ connectionsPerAddress: 0 }) // Failure(PolicyConfigError)
 * ```
 *
 * @since 0.2.0
 */
export const decodeConfig = (input: unknown): Result.Result<PolicyConfig, PolicyConfigError> => {
  const decoded = decodeConfigJson(input === undefined || input === null ? {} : input)
  if (Result.isFailure(decoded)) return Result.fail(new PolicyConfigError({ input, reason: decoded.failure.message }))
  const config = decoded.success
  if (config.maxConnectionsPerAddress !== undefined && config.maxConnectionsPerAddress < (config.connectionsPerAddress ?? 1)) {
    return Result.fail(
      new PolicyConfigError({
        input,
        reason: `maxConnectionsPerAddress (${config.maxConnectionsPerAddress}) is below connectionsPerAddress (${config.connectionsPerAddress ?? 1}); expected a range min..max with min <= max`
      })
    )
  }
  return Result.succeed(config)
}

/**
 * {@link decodeConfig}, throwing its error.
 *
 * @since 0.2.0
 */
export const decodeConfigUnsafe = (input: unknown): PolicyConfig =>
  Result.getOrThrowWith(decodeConfig(input), (error) => error)

/**
 * A list of addresses whose connections add up to more than the cap.
 *
 * @since 0.2.0
 */
export class ConnectionCapError extends Data.TaggedError("ConnectionCapError")<{
  readonly total: number
  readonly max: number
}> {
  override get message(): string {
    return `the target asks for ${this.total} connections, over this channel's cap of ${this.max}: lower the #N counts or the number of addresses, or raise the channel option grpc_anchor.max_connections`
  }
}

/**
 * The total number of connections of `endpoints` (duplicates added up), or a
 * {@link ConnectionCapError} when it is over `max`. For resolvers that want
 * to refuse an over-sized `pass:` target before the policy sees it.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * Balancer.checkCap([{ address: "a:1", count: 256 }], 100) // Failure(ConnectionCapError: ... 256 connections, over ... 100 ...)
 * ```
 *
 * @since 0.2.0
 */
export const checkCap = (
  endpoints: ReadonlyArray<Expansion.Weighted>,
  max: number = DEFAULT_MAX_CONNECTIONS
): Result.Result<number, ConnectionCapError> => {
  let total = 0
  for (const endpoint of endpoints) total += endpoint.count
  return total > max ? Result.fail(new ConnectionCapError({ total, max })) : Result.succeed(total)
}

/**
 * {@link checkCap}, throwing its error.
 *
 * @since 0.2.0
 */
export const checkCapUnsafe = (endpoints: ReadonlyArray<Expansion.Weighted>, max: number = DEFAULT_MAX_CONNECTIONS): number =>
  Result.getOrThrowWith(checkCap(endpoints, max), (error) => error)

// ---------------------------------------------------------------------------
// Events and outputs
