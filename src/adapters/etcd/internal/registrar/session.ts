/**
 * A registration's leases, one session at a time. A session grants a lease,
 * puts the record under it (one transaction, only when etcd does not
 * already hold it exactly), keeps the lease alive, watches the key to put
 * it back, and ends when etcd says the lease is lost; {@link keepRegistered}
 * then starts the next. Internal to the Registrar.
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { type Etcd, type EtcdError, isTransient } from "../../Etcd.js"
import { repeatRounds } from "../rounds.js"
import type { Abandoned } from "./abandoned.js"
import type { CounterCell } from "./counters.js"
import type { Checked } from "./record.js"
import type { Registered, Status, StatusCell } from "./status.js"

/** Why one lease's session ended (the lease is gone or unusable). */
export class LeaseLost extends Data.TaggedClass("LeaseLost")<{ readonly reason: string; readonly error: EtcdError | undefined }> {}

/** What the sessions of one registration share. */
export interface Registration {
  readonly etcd: Etcd.Shape
  readonly record: Checked
  /** Backoff between failed attempts (see `RegistrarOptions.retrySchedule`). */
  readonly schedule: Schedule.Schedule<unknown>
  readonly revokeTimeout: Duration.Duration
  /** Log annotations: the service and the key. */
  readonly annotations: Record<string, unknown>
  readonly status: StatusCell
  readonly counters: CounterCell
  readonly abandoned: Abandoned
}

const hexLease = (id: bigint): string => id.toString(16)

/**
 * Writes the record under `lease` unless etcd already holds exactly it; one
 * transaction. Returns the revision it is true at and whether it wrote.
 */
const ensure = ({ etcd, record: { key, value } }: Registration, lease: bigint) =>
  etcd
    .txn(`put ${key}`, {
      compare: [
        { key, result: "EQUAL", target: "VALUE", value },
        { key, result: "EQUAL", target: "LEASE", lease }
      ],
      success: [],
      failure: [{ request_put: { key, value, lease } }]
    })
    .pipe(Effect.map((response) => ({ revision: response.header.revision, put: !response.succeeded })))

/**
 * Watches the key from just after `revision` until something needs another
 * `ensure`; returns why (the key deleted, or the watch can no longer be
 * trusted). A value another writer put is left, with one warning a session.
 */
const untilRecheck = (r: Registration, lease: bigint, revision: bigint, warned: Ref.Ref<boolean>): Effect.Effect<string> => {
  const { key, value } = r.record
  return r.etcd.watch(`watch ${key}`, { key, startRevision: revision + 1n }).pipe(
    Stream.mapEffect((signal): Effect.Effect<Option.Option<string>> => {
      switch (signal._tag) {
        case "Cancelled":
          return Effect.succeed(Option.some(signal.reason))
        case "Connected":
          return Effect.succeed(signal.revision < revision ? Option.some(`etcd's revision went back (restored or wiped)`) : Option.none())
        case "Data":
          return Effect.gen(function* () {
            for (const event of signal.events) {
              if (event.type === "DELETE") return Option.some("the key was deleted from outside")
              const ours = event.kv.value.toString("utf8") === value && event.kv.lease === lease
              if (!ours && !(yield* Ref.getAndSet(warned, true))) {
                yield* Effect.logWarning(`${key} was overwritten by another writer; leaving it (it is taken back if deleted)`).pipe(
                  Effect.annotateLogs({ ...r.annotations, lease: hexLease(event.kv.lease) })
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
}

/**
 * The lease of a session, granted in its scope. Released when the
 * registrar closes, it is revoked (bounded), so the record goes at once;
 * released because it is gone or unusable, it is abandoned: any key still on
 * it moves to the next lease with the next put, after which it is revoked
 * (etcd may still hold it).
 */
const grant = (r: Registration) =>
  Effect.acquireRelease(
    r.etcd.leaseGrant(r.record.ttl).pipe(Effect.mapError((error) => new LeaseLost({ reason: error.message, error }))),
    (lease, exit) =>
      Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
        ? // Only the request is interruptible (so the timeout can abandon
          // it); the finalizer itself must run to the end.
          r.etcd.leaseRevoke(lease.id).pipe(
            Effect.interruptible,
            Effect.timeout(r.revokeTimeout),
            Effect.catchCause((cause) =>
              Effect.logWarning("revoking the lease failed; the record expires with its TTL", cause).pipe(Effect.annotateLogs(r.annotations))
            )
          )
        : r.abandoned.add(lease.id)
  )

/** One lease: grant it, keep the record under it, until it is lost (why is the failure). */
export const session = (r: Registration, attempt: number): Effect.Effect<never, LeaseLost> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { key, address, ttl } = r.record
      const lost = yield* Deferred.make<never, LeaseLost>()
      /** The status while the record is known to be under this lease. */
      const registered = yield* Ref.make(Option.none<Registered>())
      const leaseId = (yield* grant(r)).id
      const leaseHex = hexLease(leaseId)
      yield* r.counters.granted
      yield* Effect.logDebug(`granted lease ${leaseHex}`).pipe(Effect.annotateLogs(r.annotations))
      // The keep-alives: loss ends the session, failures and renewals show in the status.
      yield* r.etcd.keepAlive(leaseId, ttl).pipe(
        Stream.runForEach((event) => {
          switch (event._tag) {
            case "Lost":
              return Deferred.fail(lost, new LeaseLost({ reason: `lease lost: ${event.error.message}`, error: event.error }))
            case "Failing": {
              const failing: Status = { _tag: "Reconnecting", leaseId: leaseHex, reason: `keep-alive failed: ${event.error.detail}`, error: event.error }
              return Effect.flatMap(Ref.get(registered), (now) => (Option.isNone(now) ? Effect.void : r.status.set(failing)))
            }
            case "Alive":
              return r.counters.alive.pipe(
                Effect.andThen(Ref.get(registered)),
                Effect.flatMap((now) => (Option.isNone(now) ? Effect.void : r.status.set(now.value)))
              )
          }
        }),
        Effect.forkScoped
      )

      /** Retries `ensure` while etcd is away, until the lease is found gone. */
      const ensureWhileAlive = ensure(r, leaseId).pipe(
        Effect.tapError((error) => r.status.set({ _tag: "Reconnecting", leaseId: leaseHex, reason: error.message, error })),
        Effect.retry({ schedule: r.schedule, while: (error) => error.reason !== "NotFound" }),
        Effect.mapError((error) => new LeaseLost({ reason: `lease lost: ${error.message}`, error }))
      )
      const warned = yield* Ref.make(false)
      // A watch that ends right after it started (a stream etcd keeps
      // breaking while unary calls work) must not spin.
      const hold = repeatRounds(r.schedule, "1 second", (round) =>
        Effect.gen(function* () {
          const { put, revision } = yield* ensureWhileAlive
          // Counted before the status says so, so that whoever sees `Registered` sees the counts too.
          yield* r.counters.confirmed(leaseId, put)
          const now: Registered = { _tag: "Registered", leaseId: leaseHex, revision: revision.toString() }
          yield* Ref.set(registered, Option.some(now))
          yield* r.status.set(now)
          if (round === 0) {
            yield* Effect.logInfo(`registered ${address} with lease ${leaseHex}`).pipe(Effect.annotateLogs({ ...r.annotations, attempt }))
          } else {
            yield* Effect.logDebug(put ? `put ${key} back` : `${key} is in place`).pipe(Effect.annotateLogs(r.annotations))
          }
          if ((yield* r.abandoned.pending).size > 0) yield* Effect.forkScoped(r.abandoned.revokeExcept(leaseId))
          const again = yield* untilRecheck(r, leaseId, revision, warned)
          yield* Effect.logInfo(`re-checking ${key}: ${again}`).pipe(Effect.annotateLogs(r.annotations))
        })
      )
      // Whatever the session is doing, a lost lease ends it.
      return yield* hold.pipe(Effect.raceFirst(Deferred.await(lost)))
    })
  )

/**
 * Session after session, while the scope is open; a lease that lived a
 * TTL or longer is re-granted at once, quick failures back off.
 */
export const keepRegistered = (r: Registration): Effect.Effect<never> =>
  repeatRounds(r.schedule, Duration.seconds(r.record.ttl), (n) =>
    Effect.gen(function* () {
      const attempt = n + 1
      const { error, reason } = yield* Effect.flip(session(r, attempt))
      yield* r.status.set({ _tag: "Reconnecting", leaseId: undefined, reason, error })
      yield* (error !== undefined && !isTransient(error) ? Effect.logError : Effect.logWarning)(
        `registration of ${r.record.address} interrupted: ${reason}; retrying`
      ).pipe(Effect.annotateLogs({ ...r.annotations, attempt }))
    })
  )
