/**
 * The leases a registration gave up on while etcd may still hold them (a
 * grant or write failed half-way, keep-alives gave out): they are revoked
 * once the record is under a newer lease. A lease etcd restored after a
 * restart would otherwise live on (nobody keeps it alive) and, had the
 * record not moved, expire with it. Internal to the Registrar.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Semaphore from "effect/Semaphore"
import type { Etcd } from "../../Etcd.js"

/** The abandoned leases of one registration. */
export interface Abandoned {
  /** Gives up on `lease`: it is revoked by a later {@link Abandoned.revokeExcept}. */
  readonly add: (lease: bigint) => Effect.Effect<void>
  /** The leases still to revoke. */
  readonly pending: Effect.Effect<ReadonlySet<bigint>>
  /**
   * Revokes every pending lease but `current` (the one the record is
   * under), each bounded by the revoke timeout. A lease revoked, or that
   * etcd no longer has, leaves the set; one that failed stays for the next
   * round. Does nothing while another round runs (it would send the same
   * revokes again).
   */
  readonly revokeExcept: (current: bigint) => Effect.Effect<void>
}

const removed = (lease: bigint) => (set: ReadonlySet<bigint>): ReadonlySet<bigint> => {
  const next = new Set(set)
  next.delete(lease)
  return next
}

/** An empty set of abandoned leases, revoked through `etcd`. */
export const makeAbandoned = (
  etcd: Etcd.Shape,
  revokeTimeout: Duration.Duration,
  annotations: Record<string, unknown>
): Effect.Effect<Abandoned> =>
  Effect.gen(function* () {
    const leases = yield* Ref.make<ReadonlySet<bigint>>(new Set())
    const round = yield* Semaphore.make(1)

    const revoke = (lease: bigint) =>
      etcd.leaseRevoke(lease).pipe(
        Effect.timeout(revokeTimeout),
        // A lease etcd no longer has counts as revoked (`leaseRevoke` takes NotFound as done).
        Effect.matchCauseEffect({
          onSuccess: () => Ref.update(leases, removed(lease)),
          onFailure: (cause) =>
            Effect.logDebug(`revoking abandoned lease ${lease.toString(16)} failed; trying again later`, cause).pipe(
              Effect.annotateLogs(annotations)
            )
        })
      )

    return {
      add: (lease) => Ref.update(leases, (set) => new Set(set).add(lease)),
      pending: Ref.get(leases),
      revokeExcept: (current) =>
        Ref.get(leases).pipe(
          Effect.flatMap((set) => Effect.forEach([...set].filter((lease) => lease !== current), revoke, { discard: true })),
          Semaphore.withPermitsIfAvailable(round, 1),
          Effect.asVoid
        )
    }
  })
