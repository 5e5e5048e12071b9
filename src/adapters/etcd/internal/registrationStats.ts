/**
 * The registry of live registrations (`Registrar`), for metrics: per
 * registration, its lease re-grants, re-puts, moves onto a new lease and
 * the time of its last successful keep-alive. The registrar keeps the
 * counters as it goes and tracks its record from start to stop; metrics
 * read them at collection time. Internal.
 *
 * The hook only: `Registrar` is being split into parts on its own branch,
 * which wires these counters (`track` at start, `untrack` in its
 * finalizer, the fields as its loop re-grants, re-puts and moves).
 */

/** One live registration of `address` under `service`. */
export class RegistrationStats {
  /** Leases granted again after the first (the old one expired or was revoked). */
  regrants = 0
  /** Puts of the record again on the same lease (deleted or overwritten from outside, or after a relist). */
  reputs = 0
  /** Moves of the record onto a new lease. */
  moves = 0
  /** When the last keep-alive succeeded, ms since the epoch; 0: none yet. */
  lastKeepAlive = 0
  constructor(readonly service: string, readonly address: string) {}
}

const live = new Set<RegistrationStats>()

export const track = (registration: RegistrationStats): void => {
  live.add(registration)
}

export const untrack = (registration: RegistrationStats): void => {
  live.delete(registration)
}

/** The live registrations now. */
export const registrations = (): ReadonlyArray<RegistrationStats> => [...live]
