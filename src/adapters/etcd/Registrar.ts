/**
 * Publishes one backend in etcd, as Go's `endpoints.Manager.AddEndpoint` does:
 * key `${service}/${address}`, value `{"Op":0,"Addr":"<address>","Metadata":...}`,
 * attached to a lease of `ttl` seconds that is kept alive.
 *
 * It never gives up while its scope is open:
 * - lease lost (etcd down longer than the TTL, etcd wiped, the lease revoked,
 *   keep-alives failing): it grants a new lease and writes the record again,
 *   backing off with {@link retrySchedule};
 * - its key deleted from outside: it writes it back (it watches its own key);
 * - its key overwritten from outside with another value or lease: it logs a
 *   warning and leaves it (two writers of one key must not fight), taking the
 *   key back only if it is deleted later.
 *
 * Closing the scope revokes the lease, so the record disappears at once; when
 * etcd does not answer, the revoke gives up after `revokeTimeout` and the
 * record expires with its lease.
 *
 * @example
 * ```ts
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
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { Lease } from "etcd3"
import * as Address from "../../core/Address.js"
import * as EtcdRecord from "../../core/EtcdRecord.js"
import { backoff, Etcd, type EtcdError, isTransient } from "./Etcd.js"
import { repeatRounds } from "./internal/rounds.js"
import { scopedWatcher, type WatchSignal } from "./internal/watcher.js"

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
 * @since 0.1.0
 */
export class RegistrarError extends Data.TaggedError("RegistrarError")<{
  readonly reason: "InvalidService" | "InvalidAddress" | "InvalidTtl" | "InvalidMetadata"
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
  /** Bound on revoking the lease when closing (default 2 seconds). */
  readonly revokeTimeout?: Duration.DurationInput
  /**
   * Backoff between attempts (default {@link retrySchedule}). A finite one
   * bounds the retries of one write (then a new lease is granted); between
   * leases and watches, once it has ended, its last delay is kept.
   */
  readonly retrySchedule?: Schedule.Schedule<unknown>
}

/**
 * The Registrar service: one registration.
 *
 * @since 0.1.0
 */
export declare namespace Registrar {
  /**
   * @since 0.1.0
   */
  export interface Service {
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
}

/**
 * The Registrar service tag.
 *
 * @since 0.1.0
 */
export class Registrar extends Context.Tag("grpc-anchor/Registrar")<Registrar, Registrar.Service>() {}

/**
 * The backoff of the Registrar between failed attempts: from 200 ms,
 * doubling, at most 5 s apart, jittered, forever.
 *
 * @since 0.1.0
 */
export const retrySchedule: Schedule.Schedule<Duration.Duration> = backoff("200 millis", "5 seconds")

/** Why one lease's session ended (the lease is gone or unusable). */
class LeaseLost extends Data.TaggedClass("LeaseLost")<{ readonly reason: string; readonly error: EtcdError | undefined }> {}

/** The latest keep-alive of a lease. */
type Keepalive = { readonly _tag: "Failed"; readonly error: unknown } | { readonly _tag: "Succeeded" }

const hexLease = (id: string): string => BigInt(id).toString(16)

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
    if (Either.isLeft(parsed)) {
      return yield* new RegistrarError({ reason: "InvalidAddress", detail: parsed.left.message, cause: parsed.left })
    }
    const address = Address.format(parsed.right)
    const record = yield* Effect.try({
      try: () => EtcdRecord.encode(options.service, { address, metadata: options.metadata }),
      catch: (cause) =>
        new RegistrarError({ reason: "InvalidMetadata", detail: `the metadata cannot be written as JSON (${String(cause)})`, cause })
    })
    return { ttl, address, ...record }
  })

/**
 * Starts registering `options.address` under `options.service` in the scope;
 * returns at once (see `awaitRegistered`). Fails only when the inputs are
 * invalid.
 *
 * @since 0.1.0
 */
export const make = (options: RegistrarOptions): Effect.Effect<Registrar.Service, RegistrarError, Etcd | Scope.Scope> =>
  Effect.gen(function* () {
    const etcd = yield* Etcd
    const { address, key, ttl, value } = yield* validate(options)
    const schedule = options.retrySchedule ?? retrySchedule
    const revokeTimeout = Duration.decode(options.revokeTimeout ?? "2 seconds")
    const status = yield* SubscriptionRef.make<Status>({ _tag: "Registering" })
    const same = (a: Status, b: Status): boolean =>
      a._tag === b._tag &&
      (a._tag === "Registered" && b._tag === "Registered"
        ? a.leaseId === b.leaseId && a.revision === b.revision
        : a._tag === "Reconnecting" && b._tag === "Reconnecting"
        ? a.leaseId === b.leaseId && a.reason === b.reason
        : true)
    // SubscriptionRef publishes every update, even to an equal value: only set real changes.
    const setStatus = (next: Status) =>
      Effect.flatMap(SubscriptionRef.get(status), (current) => (same(current, next) ? Effect.void : SubscriptionRef.set(status, next)))
    const annotations = { service: options.service, key }

    /**
     * Writes the record under `leaseId` unless etcd already holds exactly it;
     * one transaction. Returns the revision it is true at.
     */
    const ensure = (leaseId: string) =>
      etcd
        .use(`put ${key}`, (client) =>
          client
            .if(key, "Value", "==", value)
            .and(key, "Lease", "==", leaseId)
            .else(client.put(key).value(value).lease(leaseId))
            .commit()
        )
        .pipe(Effect.map((response) => BigInt(response.header.revision)))

    /** One lease: grant it, keep the record under it, until it is lost (why is the failure). */
    const session = (attempt: number): Effect.Effect<never, LeaseLost> =>
      Effect.scoped(
        Effect.gen(function* () {
          const lost = yield* Deferred.make<never, LeaseLost>()
          // Only the latest keep-alive outcome matters: older ones are news no more.
          const keepalive = yield* Queue.sliding<Keepalive>(1)
          const lease = yield* Effect.acquireRelease(
            Effect.sync(() => {
              const lease: Lease = etcd.client.lease(ttl)
              const onLost = (cause: unknown) => {
                const error = etcd.toError(cause, "lease")
                Deferred.unsafeDone(lost, Exit.fail(new LeaseLost({ reason: `lease lost: ${error.message}`, error })))
              }
              const onFailed = (error: unknown) => Queue.unsafeOffer(keepalive, { _tag: "Failed", error })
              const onSucceeded = () => Queue.unsafeOffer(keepalive, { _tag: "Succeeded" })
              lease.on("lost", onLost)
              lease.on("keepaliveFailed", onFailed)
              lease.on("keepaliveSucceeded", onSucceeded)
              return { lease, onLost, onFailed, onSucceeded }
            }),
            ({ lease, onFailed, onLost, onSucceeded }, exit) =>
              Effect.gen(function* () {
                lease.off("keepaliveFailed", onFailed)
                lease.off("keepaliveSucceeded", onSucceeded)
                lease.off("lost", onLost)
                lease.on("lost", () => undefined)
                if (Exit.isInterrupted(exit)) {
                  // The registrar is closing: revoke, so the record goes at once.
                  // Only the promise is interruptible (so the timeout can
                  // abandon it); the finalizer itself must run to the end.
                  yield* Effect.tryPromise(() => lease.revoke()).pipe(
                    Effect.interruptible,
                    Effect.timeout(revokeTimeout),
                    Effect.catchAllCause((cause) =>
                      Effect.logWarning("revoking the lease failed; the record expires with its TTL", cause).pipe(
                        Effect.annotateLogs(annotations)
                      )
                    )
                  )
                } else {
                  // The lease is gone or unusable: stop its keep-alives. Any
                  // key still on it moves to the next lease with the next put.
                  lease.release()
                }
              })
          ).pipe(Effect.map(({ lease }) => lease))
          // Whatever the session is doing, a lost lease ends it.
          return yield* hold(lease, keepalive, attempt).pipe(Effect.raceFirst(Deferred.await(lost)))
        })
      )

    /**
     * Grants `lease` and keeps the record under it: writes it, watches the
     * key, and writes it again whenever the watch says so (or can no longer
     * be trusted); never ends on its own.
     */
    const hold = (lease: Lease, keepalive: Queue.Dequeue<Keepalive>, attempt: number) =>
      Effect.gen(function* () {
        const leaseId = yield* etcd
          .use("grant lease", () => lease.grant())
          .pipe(Effect.mapError((error) => new LeaseLost({ reason: error.message, error })))
        const leaseHex = hexLease(leaseId)
        yield* Effect.logDebug(`granted lease ${leaseHex}`).pipe(Effect.annotateLogs(annotations))

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
            const registered: Status = { _tag: "Registered", leaseId: leaseHex, revision: revision.toString() }
            yield* setStatus(registered)
            if (round === 0) {
              yield* Effect.logInfo(`registered ${address} with lease ${leaseHex}`).pipe(
                Effect.annotateLogs({ ...annotations, attempt })
              )
            }
            // A keep-alive outcome from before the write is older than what the write showed.
            yield* Queue.takeAll(keepalive)
            // Watch the key from just after the write, until something needs
            // another `ensure` (deleted, or the watch can no longer be trusted).
            const again = yield* Effect.scoped(
              Effect.gen(function* () {
                const signals = yield* Queue.unbounded<WatchSignal>()
                yield* scopedWatcher(
                  etcd,
                  `watch ${key}`,
                  (client) => client.watch().key(key).startRevision((revision + 1n).toString()).watcher(),
                  signals
                )
                // Meanwhile the keep-alives show in the status.
                yield* Queue.take(keepalive).pipe(
                  Effect.flatMap((outcome) => {
                    if (outcome._tag === "Succeeded") return setStatus(registered)
                    const error = etcd.toError(outcome.error, "keep-alive")
                    return setStatus({ _tag: "Reconnecting", leaseId: leaseHex, reason: `keep-alive failed: ${error.detail}`, error })
                  }),
                  Effect.forever,
                  Effect.forkScoped
                )
                for (;;) {
                  const signal = yield* Queue.take(signals)
                  switch (signal._tag) {
                    case "Broken":
                    case "Cancelled":
                      return signal.reason
                    case "Connected":
                      break
                    case "Data":
                      for (const event of signal.response.events) {
                        if (event.type === "Delete") return "the key was deleted from outside"
                        const ours = event.kv.value.toString("utf8") === value && event.kv.lease === leaseId
                        if (!ours && !foreignWarned) {
                          foreignWarned = true
                          yield* Effect.logWarning(
                            `${key} was overwritten by another writer; leaving it (it is taken back if deleted)`
                          ).pipe(Effect.annotateLogs({ ...annotations, lease: event.kv.lease }))
                        }
                      }
                      break
                  }
                }
              })
            )
            yield* Effect.logInfo(`re-checking ${key}: ${again}`).pipe(Effect.annotateLogs(annotations))
          })
        )
      })

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
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.void
            : Effect.logError("the registrar stopped unexpectedly", cause).pipe(Effect.annotateLogs(annotations))
        )
      )
    )

    const isRegistered = (s: Status): s is Extract<Status, { readonly _tag: "Registered" }> => s._tag === "Registered"
    return {
      service: options.service,
      address,
      key,
      value,
      status: SubscriptionRef.get(status),
      changes: status.changes,
      awaitRegistered: status.changes.pipe(
        Stream.filterMap((s): Option.Option<Effect.Effect<Extract<Status, { readonly _tag: "Registered" }>, EtcdError>> =>
          isRegistered(s)
            ? Option.some(Effect.succeed(s))
            : s._tag === "Reconnecting" && s.error !== undefined && !isTransient(s.error)
            ? Option.some(Effect.fail(s.error))
            : Option.none()
        ),
        Stream.runHead,
        Effect.flatMap(Option.match({ onNone: () => Effect.never, onSome: (outcome) => outcome }))
      )
    }
  })

/**
 * A layer that keeps `options.address` registered while it is alive.
 *
 * @since 0.1.0
 */
export const layer = (options: RegistrarOptions): Layer.Layer<Registrar, RegistrarError, Etcd> =>
  Layer.scoped(Registrar, make(options))

/**
 * A layer with options read through `Config`, e.g. {@link config}.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Config.Wrap<RegistrarOptions>
): Layer.Layer<Registrar, RegistrarError | ConfigError.ConfigError, Etcd> =>
  Layer.scoped(Registrar, Effect.flatMap(Config.unwrap(config), make))

/**
 * Options from the environment: `REGISTRAR_SERVICE`, `REGISTRAR_ADDRESS`,
 * `REGISTRAR_TTL` (seconds, default 10).
 *
 * @since 0.1.0
 */
export const config: Config.Config<RegistrarOptions> = Config.all({
  service: Config.string("REGISTRAR_SERVICE"),
  address: Config.string("REGISTRAR_ADDRESS"),
  ttl: Config.integer("REGISTRAR_TTL").pipe(Config.withDefault(10))
})
