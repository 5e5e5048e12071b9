/**
 * The registry of live registrations (`Registrar`), for metrics: each
 * registrar tracks its counters here from start to stop (lease re-grants,
 * re-puts, moves onto a new lease, the last successful keep-alive: see
 * `Registrar.Counters`); metrics read them at collection time. Internal.
 */
import * as LiveSet from "../../internal/liveSet.js"
import type { Counters } from "./registrar/counters.js"

/** One live registration of `address` under `service`, and how to read its counters now. */
export interface RegistrationSource {
  readonly service: string
  readonly address: string
  readonly counters: () => Counters
}

const live = LiveSet.make<RegistrationSource>()

export const { track, untrack } = live

/** The live registrations now. */
export const registrations = live.all
