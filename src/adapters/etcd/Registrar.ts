/**
 * Publishes one backend in etcd, as Go's `endpoints.Manager.AddEndpoint` does:
 * key `${service}/${address}`, value `{"Op":0,"Addr":"<address>","Metadata":...}`,
 * attached to a lease of `ttl` seconds that is kept alive.
 *
 * It never gives up while its scope is open, and puts the record back as
 * soon as etcd answers again:
 * - lease lost (etcd down or hung longer than the TTL, etcd wiped, the lease
 *   revoked, keep-alives failing): it grants a new lease and writes the record
 *   again, retrying with a capped backoff well below the TTL (see
 *   {@link retryScheduleFor}); a lease is only taken as lost when etcd says
 *   so, so a lease etcd restored after a restart is simply kept;
 * - a lease given up on while etcd may still hold it (its grant or write
 *   failed half-way): the record is moved to the new lease in one write and
 *   the abandoned lease is then revoked, so it cannot expire later and take
 *   the record with it;
 * - a member of the cluster that dies, hangs or is cut off from its peers:
 *   requests, the key's watch and the lease's keep-alives move to another
 *   member within `Etcd`'s member timeout, well within the TTL;
 * - its key deleted from outside: it writes it back (it watches its own key);
 * - its key overwritten from outside with another value or lease: it logs a
 *   warning and leaves it (two writers of one key must not fight), taking the
 *   key back only if it is deleted later.
 *
 * Closing the scope revokes the lease, so the record disappears at once; when
 * etcd does not answer, the revoke gives up after `revokeTimeout` and the
 * record expires with its lease. Warnings go through Effect's logger.
 *
 * With `connections` (`4`, `"4"` or `"2..8"`), the record asks clients for
 * its own number of connections, overriding the `#N` of `etcd:///svc#N` for
 * this backend; see `RegistrarOptions.connections` for Go interop. (A Go
 * client on a service name containing `/` needs `grpc.WithAuthority`.)
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd, Registrar } from "grpc-anchor"
 * const program = Effect.gen(function* () {
 *   const registrar = yield* Registrar.make({ service: "my-service", address: "10.0.0.1:9080" })
 *   yield* registrar.awaitRegistered
 *   yield* Effect.never
 * }).pipe(Effect.scoped, Effect.provide(Etcd.layerConfig(Etcd.config)))
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Target from "../../core/Target.js"
import { Etcd, type EtcdError } from "./Etcd.js"
import { makeAbandoned } from "./internal/registrar/abandoned.js"
import { type Counters, makeCounters } from "./internal/registrar/counters.js"
import { track as trackRegistration, untrack as untrackRegistration } from "./internal/registrationStats.js"
import { check } from "./internal/registrar/record.js"
import { retryScheduleFor } from "./internal/registrar/retry.js"
import { keepRegistered } from "./internal/registrar/session.js"
import { makeStatus, type Status } from "./internal/registrar/status.js"

export type { Counters } from "./internal/registrar/counters.js"
export { retrySchedule, retryScheduleFor } from "./internal/registrar/retry.js"
export type { Status } from "./internal/registrar/status.js"

/**
 * The Registrar service's shape: one registration.
 *
 * @since 0.1.0
 */
export declare namespace Registrar {
  /**
   * What a Registrar offers.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { Registrar } from "grpc-anchor"
   * const leaseId = Registrar.Registrar.use((registrar) => Effect.map(registrar.awaitRegistered, (s) => s.leaseId))
   * ```
   *
   * @since 0.3.0
   */
  export interface Shape {
    readonly service: string
    /** The canonical address. */
    readonly address: string
    /** The etcd key, `${service}/${address}`. */
    readonly key: string
    /** The exact value written. */
    readonly value: string
    /** The current status. */
    readonly status: Effect.Effect<Status>
    /** The current status, then every change. */
    readonly changes: Stream.Stream<Status>
    /**
     * Waits until the record is in etcd (returns at once when it is). Fails
     * with the etcd error when an attempt failed for a reason retrying cannot
     * fix (credentials, permissions, bad arguments); the registrar itself
     * keeps trying, more slowly, while its scope is open.
     */
    readonly awaitRegistered: Effect.Effect<Extract<Status, { readonly _tag: "Registered" }>, EtcdError>
    /**
     * What happened to the leases and the record so far (see
     * {@link Counters}); read it as often as needed, it costs a `Ref` read.
     *
     * @since 0.3.0
     */
    readonly counters: Effect.Effect<Counters>
  }
  /**
   * The former name of {@link Shape}.
   *
   * @deprecated use `Registrar.Shape`
   * @since 0.1.0
   */
  export type Service = Shape
}

/**
 * The Registrar service: one registration, kept while the layer lives.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Etcd, Registrar } from "grpc-anchor"
 * const RegistrarLive = Registrar.layer({ service: "billing", address: "10.0.0.7:9080" }).pipe(
 *   Layer.provide(Etcd.layerConfig(Etcd.config))
 * )
 * const program = Effect.flatMap(Registrar.Registrar, (registrar) => registrar.awaitRegistered)
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Registrar extends Context.Service<Registrar, Registrar.Shape>()("grpc-anchor/Registrar") {}

/**
 * What to register.
 *
 * @example
 * ```ts
 * import { Registrar } from "grpc-anchor"
 * const options: Registrar.RegistrarOptions = { service: "billing", address: "10.0.0.7:9080", ttl: 10, metadata: { zone: "a" } }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface RegistrarOptions {
  readonly service: string
  /** `host:port`; written in canonical form (see Address.format). */
  readonly address: string
  /** Lease TTL in whole seconds (default 10). */
  readonly ttl?: number
  /** JSON data stored as the record's `Metadata` (default null). */
  readonly metadata?: unknown
  /**
   * This backend's own connection count for clients, overriding their
   * target's `#N`: a whole number 1..256 (`4` or `"4"`) or a count range
   * (`"2..8"`, adaptive), written into the metadata as
   * `{"grpc_anchor.connections": 4}` (the metadata must then be an object or
   * null). Breaks Go clients of the service under `round_robin`
   * (etcd-io/etcd#19700): leave it off in fleets with Go clients.
   */
  readonly connections?: number | string | Target.CountRange
  /** Bound on revoking the lease when closing (default 2 seconds; a number is milliseconds). */
  readonly revokeTimeout?: Duration.Input
  /**
   * Backoff between attempts (default {@link retryScheduleFor} the TTL). A
   * finite one bounds the retries of one write (then a new lease is
   * granted); between leases and watches, once it has ended, its last delay
   * is kept.
   */
  readonly retrySchedule?: Schedule.Schedule<unknown>
}

/**
 * A registration that cannot start: the inputs are wrong.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registrar } from "grpc-anchor"
 * const checked = Registrar.make({ service: "billing", address: "no-port" }).pipe(
 *   Effect.catchTag("RegistrarError", (error) => Effect.logError(error.reason, error.message))
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class RegistrarError extends Data.TaggedError("RegistrarError")<{
  readonly reason: "InvalidService" | "InvalidAddress" | "InvalidTtl" | "InvalidMetadata" | "InvalidConnections"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `cannot register: ${this.detail}`
  }
}

/**
 * Starts registering `options.address` under `options.service` in the scope;
 * returns at once (see `awaitRegistered`). Fails only when the inputs are
 * invalid.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd, Registrar } from "grpc-anchor"
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const registrar = yield* Registrar.make({ service: "billing", address: "10.0.0.7:9080", ttl: 5 })
 *     yield* registrar.awaitRegistered
 *   })
 * ).pipe(Effect.provide(Etcd.layer({ hosts: "127.0.0.1:2379" })))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: RegistrarOptions): Effect.Effect<Registrar.Shape, RegistrarError, Etcd | Scope.Scope> =>
  Effect.gen(function* () {
    const checked = check(options)
    if (Result.isFailure(checked)) return yield* new RegistrarError(checked.failure)
    const record = checked.success
    const etcd = yield* Etcd
    const revokeTimeout = Duration.fromInputUnsafe(options.revokeTimeout ?? "2 seconds")
    const annotations = { service: options.service, key: record.key }
    const status = yield* makeStatus
    const counters = yield* makeCounters
    // Metrics read the counters at collection time while the registrar lives.
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const source = { service: options.service, address: record.address, counters: counters.getUnsafe }
        trackRegistration(source)
        return source
      }),
      (source) => Effect.sync(() => untrackRegistration(source))
    )
    const abandoned = yield* makeAbandoned(etcd, revokeTimeout, annotations)
    const schedule = options.retrySchedule ?? retryScheduleFor(record.ttl)
    const registration = { etcd, record, schedule, revokeTimeout, annotations, status, counters, abandoned }
    // Added before the fork, so it runs after the sessions (and their revoke) are done.
    yield* Effect.addFinalizer(() => status.set({ _tag: "Closed" }))
    yield* Effect.forkScoped(
      keepRegistered(registration).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.void
            : Effect.logError("the registrar stopped unexpectedly", cause).pipe(Effect.annotateLogs(annotations))
        )
      )
    )
    const { address, key, value } = record
    const { awaitRegistered, changes } = status
    return { service: options.service, address, key, value, status: status.get, changes, awaitRegistered, counters: counters.get }
  })

/**
 * A layer that keeps `options.address` registered while it is alive.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Etcd, Registrar } from "grpc-anchor"
 * const RegistrarLive = Registrar.layer({ service: "billing", address: "10.0.0.7:9080", ttl: 10 }).pipe(
 *   Layer.provide(Etcd.layer({ hosts: "127.0.0.1:2379" }))
 * )
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: RegistrarOptions): Layer.Layer<Registrar, RegistrarError, Etcd> => Layer.effect(Registrar, make(options))

/**
 * A layer with options read through `Config`, e.g. {@link config}.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Etcd, Registrar } from "grpc-anchor"
 * const RegistrarLive = Registrar.layerConfig(Registrar.config).pipe(Layer.provide(Etcd.layerConfig(Etcd.config)))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Wrap<RegistrarOptions>
): Layer.Layer<Registrar, RegistrarError | Config.ConfigError, Etcd> => Layer.effect(Registrar, Effect.flatMap(Config.unwrap(config), make))

/**
 * Options from the environment: `REGISTRAR_SERVICE`, `REGISTRAR_ADDRESS`,
 * `REGISTRAR_TTL` (whole seconds, default 10), and optionally
 * `REGISTRAR_CONNECTIONS` (`4` or `2..8`: see `connections`; checked when
 * the registrar starts).
 *
 * @example
 * ```ts
 * import { Registrar } from "grpc-anchor"
 * const RegistrarLive = Registrar.layerConfig(Registrar.config)
 * ```
 *
 * @category config
 * @since 0.1.0
 */
export const config: Config.Config<RegistrarOptions> = Config.all({
  service: Config.String("REGISTRAR_SERVICE"),
  address: Config.String("REGISTRAR_ADDRESS"),
  ttl: Config.Int("REGISTRAR_TTL").pipe(Config.withDefault(10)),
  connections: Config.option(Config.String("REGISTRAR_CONNECTIONS"))
}).pipe(
  Config.map(({ connections, ...rest }): RegistrarOptions =>
    Option.isSome(connections) ? { ...rest, connections: connections.value } : rest
  )
)
