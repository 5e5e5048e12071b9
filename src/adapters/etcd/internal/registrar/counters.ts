/**
 * A registration's counters (`Registrar.Counters`): what happened to its
 * leases and record since it started, kept in a `Ref` for metrics to read.
 * The steps are pure functions of the tally; the `Ref` and the clock read
 * are in {@link makeCounters}. Internal to the Registrar, but for the
 * `Counters` type it re-exports.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"

/**
 * A registration's counts since it started (re-exported by the public
 * `Registrar` module), for metrics and health checks
 * (plain numbers, never reset):
 * - `leaseRegrants`: leases granted after the first, one for each lease lost
 *   (expired, revoked, wiped) or given up on and replaced;
 * - `recordReputs`: writes of the record after it was first in etcd, each
 *   one because etcd no longer held it exactly (the key deleted or
 *   overwritten then deleted, etcd wiped, a new lease); a check that finds
 *   it in place writes nothing and counts nothing;
 * - `leaseMoves`: times the record was confirmed under another lease than
 *   the one it was last under, i.e. reached a new lease (each a re-put too,
 *   even when the answer etcd gave was to a repeated request that found the
 *   record already written: a request can reach etcd twice);
 * - `lastKeepAliveMillis`: when etcd last renewed the lease (the `Clock`'s
 *   epoch milliseconds), `undefined` before the first renewal.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registrar } from "grpc-anchor"
 * const churn = Registrar.Registrar.use((registrar) =>
 *   Effect.map(registrar.counters, (c: Registrar.Counters) => c.leaseRegrants + c.recordReputs)
 * )
 * ```
 *
 * @since 0.3.0
 */
export interface Counters {
  readonly leaseRegrants: number
  readonly recordReputs: number
  readonly leaseMoves: number
  readonly lastKeepAliveMillis: number | undefined
}

/** The counters and what the next step needs to know of the past. */
export interface Tally {
  readonly counters: Counters
  /** Whether a lease was ever granted. */
  readonly granted: boolean
  /** The lease the record was last confirmed under, if it ever was. */
  readonly recordLease: bigint | undefined
}

/** Nothing happened yet. */
export const initial: Tally = {
  counters: { leaseRegrants: 0, recordReputs: 0, leaseMoves: 0, lastKeepAliveMillis: undefined },
  granted: false,
  recordLease: undefined
}

/** A lease was granted: every grant after the first is a re-grant. */
export const granted = (tally: Tally): Tally => ({
  ...tally,
  counters: tally.granted ? { ...tally.counters, leaseRegrants: tally.counters.leaseRegrants + 1 } : tally.counters,
  granted: true
})

/**
 * The record is confirmed under `lease`; `put` says whether this write put
 * it (etcd did not already hold it exactly). A put after the record was
 * first confirmed is a re-put; a confirmation under another lease than the
 * last is a move, and a re-put whatever `put` says: the record under a new
 * lease was written anew, and `put` is false when the answer came from a
 * copy of the request (hedged, or retried after a lost answer) that found
 * the first copy's write in place.
 */
export const confirmed = (tally: Tally, lease: bigint, put: boolean): Tally => {
  const before = tally.recordLease
  if (before === undefined) return { ...tally, recordLease: lease }
  return {
    ...tally,
    counters: {
      ...tally.counters,
      recordReputs: tally.counters.recordReputs + (put || before !== lease ? 1 : 0),
      leaseMoves: tally.counters.leaseMoves + (before === lease ? 0 : 1)
    },
    recordLease: lease
  }
}

/** etcd renewed the lease at `now` (epoch milliseconds). */
export const alive = (tally: Tally, now: number): Tally => ({ ...tally, counters: { ...tally.counters, lastKeepAliveMillis: now } })

/** The counters of one registration, updated by its parts. */
export interface CounterCell {
  readonly get: Effect.Effect<Counters>
  /** The counters now, read outside any fiber (metrics read them at collection time). */
  readonly getUnsafe: () => Counters
  readonly granted: Effect.Effect<void>
  readonly confirmed: (lease: bigint, put: boolean) => Effect.Effect<void>
  /** Records a renewal at the `Clock`'s current time. */
  readonly alive: Effect.Effect<void>
}

/** Counters starting at zero. */
export const makeCounters: Effect.Effect<CounterCell> = Effect.map(Ref.make(initial), (ref) => ({
  get: Effect.map(Ref.get(ref), (tally) => tally.counters),
  getUnsafe: () => Ref.getUnsafe(ref).counters,
  granted: Ref.update(ref, granted),
  confirmed: (lease, put) => Ref.update(ref, (tally) => confirmed(tally, lease, put)),
  alive: Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(ref, (tally) => alive(tally, now)))
}))
