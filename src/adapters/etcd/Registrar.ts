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
 * its own number of connections (`{"grpc_anchor.connections": 4}` in its
 * `Metadata`, see `EtcdRecord.withConnections`), overriding the `#N` of
 * `etcd:///svc#N` for this backend, e.g. a bigger machine. **Go interop:**
 * any record whose `Metadata` is a JSON object crashes Go's etcd resolver
 * under `round_robin` (`hash of unhashable type map[string]interface {}`,
 * etcd-io/etcd#19700), so in a fleet with Go clients leave `connections`
 * (and object metadata) off; a Go client on a service name containing `/`
 * also needs `grpc.WithAuthority`.
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
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Address from "../../core/Address.js"
import * as EtcdRecord from "../../core/EtcdRecord.js"
import type * as Target from "../../core/Target.js"
import { backoff, Etcd, type EtcdError, isTransient } from "./Etcd.js"
import { repeatRounds } from "./internal/rounds.js"

/**
 * Where the registration stands.
 * - `Registering`: the first attempt, no record written yet (later attempts
 *   report `Reconnecting`).
 * - `Registered`: the record is in etcd under lease `leaseId` (hex, as etcdctl
 *   prints it), written or confirmed at `revision`.
 * - `Reconnecting`: etcd is not answering or the lease was lost; `leaseId` is
 *   the lease still hoped for, if any; `reason` says why.
 * - `Closed`: the scope closed and the lease was revoked (or given up on).
 *
 * @example
 * ```ts
 * import { Registrar } from "grpc-anchor"
 * const describe = (status: Registrar.Status) => (status._tag === "Registered" ? `lease ${status.leaseId}` : status._tag)
 * ```
 *
 * @since 0.1.0
 */
export type Status =
  | { readonly _tag: "Registering" }
  | { readonly _tag: "Registered"; readonly leaseId: string; readonly revision: string }
  | {
      readonly _tag: "Reconnecting"
      readonly leaseId: string | undefined
      readonly reason: string
      /** The etcd error behind it, when there was one. */
      readonly error: EtcdError | undefined
    }
  | { readonly _tag: "Closed" }

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
 * What to register.
 *
 * @example
 * ```ts
 * import { Registrar } from "grpc-anchor"
 * const options: Registrar.RegistrarOptions = { service: "billing", address: "10.0.0.7:9080", ttl: 10, metadata: { zone: "a" } }
 * ```
 *
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
 * @since 0.1.0
 */
export class Registrar extends Context.Service<Registrar, Registrar.Shape>()("grpc-anchor/Registrar") {}

/**
 * The Registrar's backoff between failed attempts for a lease of `ttl`
 * seconds: from 100 ms, doubling, at most min(TTL / 4, 1 s) apart, jittered,
 * forever. Well below the TTL, so that a record etcd lost (or a lease etcd
 * restored) is written again within about a second of etcd answering.
 *
 * @example
 * ```ts
 * import { Registrar } from "grpc-anchor"
 * const options = { service: "billing", address: "10.0.0.7:9080", ttl: 2, retrySchedule: Registrar.retryScheduleFor(2) }
 * ```
 *
 * @since 0.3.0
 */
export const retryScheduleFor = (ttl: number): Schedule.Schedule<Duration.Duration> =>
  backoff("100 millis", Duration.millis(Math.max(50, Math.min(1_000, (ttl * 1_000) / 4))))

/**
 * The Registrar's default backoff for a TTL of 4 s or more:
 * {@link retryScheduleFor}, from 100 ms, doubling, at most 1 s apart.
 *
 * @example
 * ```ts
 * import { Registrar } from "grpc-anchor"
 * const options = { service: "billing", address: "10.0.0.7:9080", retrySchedule: Registrar.retrySchedule }
 * ```
 *
 * @since 0.1.0
 */
export const retrySchedule: Schedule.Schedule<Duration.Duration> = retryScheduleFor(10)

/** Why one lease's session ended (the lease is gone or unusable). */
class LeaseLost extends Data.TaggedClass("LeaseLost")<{ readonly reason: string; readonly error: EtcdError | undefined }> {}

const hexLease = (id: bigint): string => id.toString(16)

const validate = (options: RegistrarOptions) =>
  Effect.gen(function* () {
    if (options.service.length === 0) {
      return yield* new RegistrarError({ reason: "InvalidService", detail: "the service name is empty" })
    }
    const ttl = options.ttl ?? 10
    if (!Number.isInteger(ttl) || ttl < 1) {
      return yield* new RegistrarError({ reason: "InvalidTtl", detail: `the TTL must be a whole number of seconds >= 1, got ${ttl}` })
    }
    const parsed = Address.parse(options.address)
    if (Result.isFailure(parsed)) {
      return yield* new RegistrarError({ reason: "InvalidAddress", detail: parsed.failure.message, cause: parsed.failure })
    }
    const address = Address.format(parsed.success)
    let metadata = options.metadata
    if (options.connections !== undefined) {
      const withCount = EtcdRecord.withConnections(metadata, options.connections)
      if (Result.isFailure(withCount)) {
        return yield* new RegistrarError({ reason: "InvalidConnections", detail: withCount.failure.message, cause: withCount.failure })
      }
      metadata = withCount.success
    }
    const record = yield* Effect.try({
      try: () => EtcdRecord.encode(options.service, { address, metadata }),
      catch: (cause) =>
        new RegistrarError({ reason: "InvalidMetadata", detail: `the metadata cannot be written as JSON (${String(cause)})`, cause })
    })
    return { ttl, address, ...record }
  })

const same = (a: Status, b: Status): boolean =>
  a._tag === b._tag &&
  (a._tag === "Registered" && b._tag === "Registered"
    ? a.leaseId === b.leaseId && a.revision === b.revision
    : a._tag === "Reconnecting" && b._tag === "Reconnecting"
    ? a.leaseId === b.leaseId && a.reason === b.reason
    : true)

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
 * @since 0.1.0
 */
export const make = (options: RegistrarOptions): Effect.Effect<Registrar.Shape, RegistrarError, Etcd | Scope.Scope> =>
  Effect.gen(function* () {
    const etcd = yield* Etcd
    const { address, key, ttl, value } = yield* validate(options)
    const schedule = options.retrySchedule ?? retryScheduleFor(ttl)
    const revokeTimeout = Duration.fromInputUnsafe(options.revokeTimeout ?? "2 seconds")
    const status = yield* SubscriptionRef.make<Status>({ _tag: "Registering" })
    // SubscriptionRef publishes every update, even to an equal value: only set real changes.
    const setStatus = (next: Status) =>
      Effect.flatMap(SubscriptionRef.get(status), (current) => (same(current, next) ? Effect.void : SubscriptionRef.set(status, next)))
    const annotations = { service: options.service, key }
    /** Leases given up on whose revoke is still due. */
    const abandoned = new Set<bigint>()

    /**
     * Writes the record under `leaseId` unless etcd already holds exactly it;
     * one transaction. Returns the revision it is true at.
     */
    const ensure = (leaseId: bigint) =>
      etcd
        .txn(`put ${key}`, {
          compare: [
            { key, result: "EQUAL", target: "VALUE", value },
            { key, result: "EQUAL", target: "LEASE", lease: leaseId }
          ],
          success: [],
          failure: [{ request_put: { key, value, lease: leaseId } }]
        })
        .pipe(Effect.map((response) => response.header.revision))

    /**
     * Revokes the leases given up on, once the record is under `current`: a
     * lease etcd restored after a restart would otherwise live on (nobody
     * keeps it alive) and, had the record not moved, expire with it. Bounded;
     * one that fails is tried again after the next write.
     */
    // One revoke round at a time: a round started while another still waits
    // on etcd (up to revokeTimeout a lease) would send the same revokes again.
    let revoking = false
    const revokeAbandoned = (current: bigint) =>
      Effect.suspend(() => {
        if (revoking) return Effect.void
        revoking = true
        return revokeRound(current).pipe(Effect.ensuring(Effect.sync(() => {
          revoking = false
        })))
      })
    const revokeRound = (current: bigint) =>
      Effect.forEach(
        [...abandoned].filter((id) => id !== current),
        (id) =>
          etcd.leaseRevoke(id).pipe(
            Effect.timeout(revokeTimeout),
            Effect.matchCauseEffect({
              onSuccess: () => Effect.sync(() => abandoned.delete(id)),
              onFailure: (cause) => {
                const error = Cause.findErrorOption(cause)
                // NotFound: etcd had already dropped it, nothing left to do.
                if (Option.isSome(error) && error.value._tag === "EtcdError" && error.value.reason === "NotFound") {
                  return Effect.sync(() => abandoned.delete(id))
                }
                return Effect.logDebug(`revoking abandoned lease ${hexLease(id)} failed; trying again later`, cause)
              }
            })
          ),
        { discard: true }
      )

    /** One lease: grant it, keep the record under it, until it is lost (why is the failure). */
    const session = (attempt: number): Effect.Effect<never, LeaseLost> =>
      Effect.scoped(
        Effect.gen(function* () {
          const lost = yield* Deferred.make<never, LeaseLost>()
          /** The status while the record is known to be under this lease. */
          let registered: Status | undefined
          const lease = yield* Effect.acquireRelease(
            etcd.leaseGrant(ttl).pipe(Effect.mapError((error) => new LeaseLost({ reason: error.message, error }))),
            (lease, exit) =>
              Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
                ? // The registrar is closing: revoke, so the record goes at once.
                  // Only the request is interruptible (so the timeout can
                  // abandon it); the finalizer itself must run to the end.
                  etcd.leaseRevoke(lease.id).pipe(
                    Effect.interruptible,
                    Effect.timeout(revokeTimeout),
                    Effect.catchCause((cause) =>
                      Effect.logWarning("revoking the lease failed; the record expires with its TTL", cause).pipe(
                        Effect.annotateLogs(annotations)
                      )
                    )
                  )
                : // The lease is gone or unusable. Any key still on it moves to
                  // the next lease with the next put, after which the lease is
                  // revoked (etcd may still hold it).
                  Effect.sync(() => abandoned.add(lease.id))
          )
          const leaseId = lease.id
          const leaseHex = hexLease(leaseId)
          yield* Effect.logDebug(`granted lease ${leaseHex}`).pipe(Effect.annotateLogs(annotations))
          // The keep-alives: loss ends the session, failures and renewals show in the status.
          yield* etcd.keepAlive(leaseId, ttl).pipe(
            Stream.runForEach((event) => {
              switch (event._tag) {
                case "Lost":
                  return Deferred.fail(lost, new LeaseLost({ reason: `lease lost: ${event.error.message}`, error: event.error }))
                case "Failing":
                  return registered === undefined
                    ? Effect.void
                    : setStatus({ _tag: "Reconnecting", leaseId: leaseHex, reason: `keep-alive failed: ${event.error.detail}`, error: event.error })
                case "Alive":
                  return registered === undefined ? Effect.void : setStatus(registered)
              }
            }),
            Effect.forkScoped
          )

          // Whatever the session is doing, a lost lease ends it.
          const hold = Effect.gen(function* () {
            /** Retries `ensure` while etcd is away, until the lease is found gone. */
            const ensureWhileAlive = ensure(leaseId).pipe(
              Effect.tapError((error) => setStatus({ _tag: "Reconnecting", leaseId: leaseHex, reason: error.message, error })),
              Effect.retry({ schedule, while: (error) => error.reason !== "NotFound" }),
              Effect.mapError((error) => new LeaseLost({ reason: `lease lost: ${error.message}`, error }))
            )

            let foreignWarned = false
            // A watch that ends right after it started (a stream etcd keeps
            // breaking while unary calls work) must not spin.
            return yield* repeatRounds(schedule, "1 second", (round) =>
              Effect.gen(function* () {
                const revision = yield* ensureWhileAlive
                const now: Status = { _tag: "Registered", leaseId: leaseHex, revision: revision.toString() }
                registered = now
                yield* setStatus(now)
                if (round === 0) {
                  yield* Effect.logInfo(`registered ${address} with lease ${leaseHex}`).pipe(Effect.annotateLogs({ ...annotations, attempt }))
                }
                if (abandoned.size > 0) yield* Effect.forkScoped(revokeAbandoned(leaseId))
                // Watch the key from just after the write, until something
                // needs another `ensure` (deleted, or the watch can no longer be trusted).
                const again = yield* etcd.watch(`watch ${key}`, { key, startRevision: revision + 1n }).pipe(
                  Stream.mapEffect((signal): Effect.Effect<Option.Option<string>> => {
                    switch (signal._tag) {
                      case "Cancelled":
                        return Effect.succeed(Option.some(signal.reason))
                      case "Connected":
                        return Effect.succeed(
                          signal.revision < revision ? Option.some(`etcd's revision went back (restored or wiped)`) : Option.none()
                        )
                      case "Data":
                        return Effect.gen(function* () {
                          for (const event of signal.events) {
                            if (event.type === "DELETE") return Option.some("the key was deleted from outside")
                            const ours = event.kv.value.toString("utf8") === value && event.kv.lease === leaseId
                            if (!ours && !foreignWarned) {
                              foreignWarned = true
                              yield* Effect.logWarning(`${key} was overwritten by another writer; leaving it (it is taken back if deleted)`).pipe(
                                Effect.annotateLogs({ ...annotations, lease: hexLease(event.kv.lease) })
                              )
                            }
                          }
                          return Option.none()
                        })
                    }
                  }),
                  Stream.filter(Option.isSome),
                  Stream.runHead,
                  Effect.map(Option.match({ onNone: () => "the watch ended", onSome: (why) => why.value }))
                )
                yield* Effect.logInfo(`re-checking ${key}: ${again}`).pipe(Effect.annotateLogs(annotations))
              })
            )
          })
          return yield* hold.pipe(Effect.raceFirst(Deferred.await(lost)))
        })
      )

    // Session after session; a lease that lived a while is re-granted at
    // once, quick failures back off.
    const loop = repeatRounds(schedule, Duration.seconds(ttl), (n) =>
      Effect.gen(function* () {
        const attempt = n + 1
        const { error, reason } = yield* Effect.flip(session(attempt))
        yield* setStatus({ _tag: "Reconnecting", leaseId: undefined, reason, error })
        yield* (error !== undefined && !isTransient(error) ? Effect.logError : Effect.logWarning)(
          `registration of ${address} interrupted: ${reason}; retrying`
        ).pipe(Effect.annotateLogs({ ...annotations, attempt }))
      })
    )

    // Added before the fork, so it runs after the loop (and its revoke) is done.
    yield* Effect.addFinalizer(() => SubscriptionRef.set(status, { _tag: "Closed" }))
    yield* Effect.forkScoped(
      loop.pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.void
            : Effect.logError("the registrar stopped unexpectedly", cause).pipe(Effect.annotateLogs(annotations))
        )
      )
    )

    type Registered = Extract<Status, { readonly _tag: "Registered" }>
    return {
      service: options.service,
      address,
      key,
      value,
      status: SubscriptionRef.get(status),
      changes: SubscriptionRef.changes(status),
      awaitRegistered: SubscriptionRef.changes(status).pipe(
        Stream.filter((s) => s._tag === "Registered" || (s._tag === "Reconnecting" && s.error !== undefined && !isTransient(s.error))),
        Stream.runHead,
        Effect.flatMap(
          Option.match({
            onNone: () => Effect.never,
            onSome: (s): Effect.Effect<Registered, EtcdError> =>
              s._tag === "Registered" ? Effect.succeed(s) : Effect.fail((s as Extract<Status, { _tag: "Reconnecting" }>).error!)
          })
        )
      )
    }
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
