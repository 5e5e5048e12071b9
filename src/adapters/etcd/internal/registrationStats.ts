/**
 * The registry of live registrations (`Registrar`), for metrics: each
 * registrar tracks its counters here from start to stop (lease re-grants,
 * re-puts, moves onto a new lease, the last successful keep-alive: see
 * `Registrar.Counters`); metrics read them at collection time. Internal.
 */
import type { Counters } from "./registrar/counters.js"

/** One live registration of `address` under `service`, and how to read its counters now. */
export interface RegistrationSource {
  readonly service: string
  readonly address: string
  readonly counters: () => Counters
}

const live = new Set<RegistrationSource>()

export const track = (registration: RegistrationSource): void => {
  live.add(registration)
}

export const untrack = (registration: RegistrationSource): void => {
  live.delete(registration)
}

/** The live registrations now. */
export const registrations = (): ReadonlyArray<RegistrationSource> => [...live]
