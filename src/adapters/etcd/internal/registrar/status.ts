/**
 * Where a registration stands, as a `SubscriptionRef` of `Status` that only
 * publishes real changes, and what is derived from it (`awaitRegistered`).
 * Internal to the Registrar, but for the `Status` type it re-exports.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { type EtcdError, isTransient } from "../../Etcd.js"

/**
 * Where the registration stands (re-exported by the public `Registrar`
 * module).
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

/** The `Registered` status. */
export type Registered = Extract<Status, { readonly _tag: "Registered" }>
type Reconnecting = Extract<Status, { readonly _tag: "Reconnecting" }>

/** A registration's status cell. */
export interface StatusCell {
  readonly get: Effect.Effect<Status>
  /** The current status, then every change. */
  readonly changes: Stream.Stream<Status>
  /** Sets `next` unless it says the same as the current status (a renewal is no change). */
  readonly set: (next: Status) => Effect.Effect<void>
  /** The first `Registered`, or the first error retrying cannot fix. */
  readonly awaitRegistered: Effect.Effect<Registered, EtcdError>
}

/** Whether two statuses say the same (a `Reconnecting`'s error object aside). */
export const same = (a: Status, b: Status): boolean =>
  a._tag === b._tag &&
  (a._tag === "Registered" && b._tag === "Registered"
    ? a.leaseId === b.leaseId && a.revision === b.revision
    : a._tag === "Reconnecting" && b._tag === "Reconnecting"
    ? a.leaseId === b.leaseId && a.reason === b.reason
    : true)

const refused = (status: Status): status is Reconnecting & { readonly error: EtcdError } =>
  status._tag === "Reconnecting" && status.error !== undefined && !isTransient(status.error)

/** A status cell starting at `Registering`. */
export const makeStatus: Effect.Effect<StatusCell> = Effect.gen(function* () {
  const ref = yield* SubscriptionRef.make<Status>({ _tag: "Registering" })
  const changes = SubscriptionRef.changes(ref)
  return {
    get: SubscriptionRef.get(ref),
    changes,
    // SubscriptionRef publishes every set, even of an equal value: only set real changes.
    set: (next) => SubscriptionRef.updateSome(ref, (current) => (same(current, next) ? Option.none() : Option.some(next))),
    awaitRegistered: changes.pipe(
      Stream.filter((s) => s._tag === "Registered" || refused(s)),
      Stream.runHead,
      Effect.flatMap(
        Option.match({
          onNone: () => Effect.never,
          onSome: (s): Effect.Effect<Registered, EtcdError> =>
            s._tag === "Registered" ? Effect.succeed(s) : refused(s) ? Effect.fail(s.error) : Effect.never
        })
      )
    )
  }
})
