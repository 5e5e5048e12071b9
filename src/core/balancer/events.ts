/**
 * What the balancer is told (events) and what it asks for (outputs).
 *
 * @since 0.2.0
 */
import type * as Expansion from "../Expansion.js"
import type { PickMode } from "./options.js"
import type { OverCap } from "./listing.js"

/**
 * A connection's state, by grpc-js's names.
 *
 * @category models
 * @since 0.2.0
 */
export type ConnectionState = "IDLE" | "CONNECTING" | "READY" | "TRANSIENT_FAILURE" | "SHUTDOWN"

/**
 * The state the channel reports.
 *
 * @category models
 * @since 0.2.0
 */
export type ChannelState = "CONNECTING" | "READY" | "TRANSIENT_FAILURE"

/**
 * What happened. Every event carries `now` (ms, monotonic; a time earlier
 * than one already seen counts as that one).
 *
 * - `Addresses`: a new address list (`offset`: a random whole number, the
 *   ring's start position when it was empty and the seed of the
 *   `least_request` draws; `overCap`: refuse or trim a list over the cap;
 *   `note`: the resolver's note, for messages; `pick`: the pick mode the
 *   target asks for, else the `pickMode` option). An endpoint with
 *   `maxCount` above `count` has an adaptive count `count..maxCount`.
 * - `ResolverError`: the resolver failed; the last list keeps serving.
 * - `StateChanged` / `HealthChanged`: one slot's connection.
 * - `TimerFired`: the wake-up asked for (early or late is fine).
 * - `CallsWaiting`: {@link callStarted} answered `true` (an adaptive address
 *   has every connection full and calls waiting); send it soon, outside the
 *   pick, to get the connection to open.
 *
 * @category models
 * @since 0.2.0
 */
export type Event =
  | {
    readonly _tag: "Addresses"
    readonly now: number
    readonly target: string
    readonly endpoints: ReadonlyArray<Expansion.Weighted>
    readonly overCap: OverCap
    readonly offset: number
    readonly note?: string | undefined
    readonly pick?: PickMode | undefined
  }
  | { readonly _tag: "ResolverError"; readonly now: number; readonly message: string }
  | {
    readonly _tag: "StateChanged"
    readonly now: number
    readonly slot: number
    readonly state: ConnectionState
    readonly error?: string | undefined
  }
  | { readonly _tag: "HealthChanged"; readonly now: number; readonly slot: number; readonly healthy: boolean }
  | { readonly _tag: "TimerFired"; readonly now: number }
  | { readonly _tag: "CallsWaiting"; readonly now: number }

/**
 * A slot to open: `id` names it in later events and outputs, until it is
 * removed (ids of removed slots are reused).
 *
 * @category models
 * @since 0.2.0
 */
export interface NewSlot {
  readonly id: number
  readonly address: string
  readonly index: number
}

/**
 * What to do after an event, in this order: release `remove`, open
 * `create` (then report each new connection's current state with a
 * `StateChanged` event unless it is IDLE), publish `publish` if set (the
 * channel state changed, or picks that waited should be placed again), ask
 * `connect` to connect (those still IDLE), request re-resolution if
 * `reresolve`, arm one timer for `wakeAt` (absolute; `undefined`: none
 * needed), write `trace`.
 *
 * @category models
 * @since 0.2.0
 */
export interface Output {
  readonly remove: ReadonlyArray<number>
  readonly create: ReadonlyArray<NewSlot>
  readonly connect: ReadonlyArray<number>
  readonly publish: { readonly state: ChannelState; readonly message: string | null } | undefined
  readonly reresolve: boolean
  readonly wakeAt: number | undefined
  readonly trace: ReadonlyArray<string>
}

// ---------------------------------------------------------------------------
// Internal state
