/**
 * The connection pool of one channel as a state machine: which connections
 * (slots) exist, which of them take calls, what state the channel reports,
 * and when it wants to be woken up. The `anchor_round_robin` policy feeds it
 * grpc-js events and applies what it answers; every decision is here.
 *
 * The machine does no I/O and reads no clock and no randomness: the time
 * (`now`, milliseconds on any monotonic clock) and the start offset come in
 * with the events, and the next wake-up goes out as an absolute time. It is
 * deterministic: the same events give the same outputs. So that a
 * connectivity event costs O(1) whatever the number of connections, it
 * updates its state in place: one balancer belongs to one caller, which
 * passes it to {@link step} (events) and {@link pick} (calls).
 *
 * The rules:
 *
 * - **Slots.** An address with count N has slots `address#0..N-1`, one
 *   connection each, ordered by `Rotation.slotOrder` (smooth weighted).
 *   Addresses listed twice are merged (counts added). On an address update,
 *   slots whose key is unchanged keep their connection; removed slots are
 *   released, new ones created and asked to connect.
 * - **Picks, `round_robin` (the default).** Round robin over the ring,
 *   skipping slots that are not ready (READY and healthy). A pick costs
 *   O(log32 n) (3 steps up to 32,768 connections): a hierarchical bitset
 *   finds the next ready slot. Every ready connection gets exactly the same
 *   share, so an address's share follows its count.
 * - **Picks, `least_request`.** Power of two choices: two distinct ready
 *   slots drawn uniformly (xorshift32 seeded by the first address list's
 *   `offset`: randomness is an input), the one with fewer calls in flight
 *   wins (ties: the first drawn). O(1). Uniform draws over connections
 *   keep the counts' meaning: with equal service times every connection
 *   gets the same long-run share, so an address's share follows its
 *   count; a backend that slows down accumulates calls in flight and loses
 *   the comparisons, so it gets less while it lags. Calls in flight come
 *   from {@link callStarted} / {@link callEnded} (O(1) each); a pick whose
 *   call has not started yet counts too, until {@link settlePicks} (once
 *   per event-loop turn), so a burst of picks in one turn spreads.
 *   Round robin stays the default because least_request is not never
 *   worse: it is exact (k rounds pick each ready connection k times, the
 *   order smooth), deterministic and needs no call accounting, while with
 *   equal backends least_request only matches the counts in expectation,
 *   and in bench/adaptive.ts's heterogeneous scenario least_request's p50
 *   is higher (the fast backends take the load and queue: 14.3 ms against
 *   4.4 ms) even as its p99 halves (0.43x) and its throughput quadruples
 *   (3.95x). So it is a choice per target (`?pick=least_request`) or per
 *   policy config (`pickMode`) for fleets whose backends differ or slow
 *   down.
 * - **Adaptive counts (`#MIN..MAX`, gRFC A105-like).** An endpoint with
 *   `maxCount` starts with `count` (MIN) connections. When every connection
 *   of the address carries at least `maxStreamsPerConnection` calls (the
 *   server's HTTP/2 MAX_CONCURRENT_STREAMS as configured: grpc-js does not
 *   expose the peer's SETTINGS through its public API) and a call waits for
 *   a stream, {@link callStarted} asks for a `CallsWaiting` step, which
 *   opens one more connection, up to MAX and the channel's cap. One attempt
 *   at a time: the new connection carries no call until it is READY, so the
 *   address is not "every connection full" again before then (a connection
 *   that is down blocks growth the same way). Shrinking: while an address
 *   is above MIN, a check runs every `shrinkIdleMs` (30 s); if in the
 *   period since the last check the address's calls in flight never
 *   exceeded what one connection fewer carries (`(count - 1) *
 *   maxStreamsPerConnection`) and its newest connection carries no call,
 *   that connection is closed (so an extra connection closes between one
 *   and two periods after the load fell, one per period; no flapping: it
 *   closes only when the load would fit without it). An address re-listed
 *   keeps its grown count within its new range. Extra connections are
 *   ordinary slots: in `round_robin` each takes an equal share, so a grown
 *   address's share grows with its connections (growth happens only when
 *   its connections are all full, i.e. when it lacks streams, not speed).
 * - **Keep connected.** A slot whose connection goes IDLE (dropped, or its
 *   backoff ended) is asked to connect again; grpc-js applies its backoff.
 * - **Sibling suspicion.** When one connection to an address drops, its READY
 *   siblings are skipped until the dropped one's reconnect answers (READY
 *   clears it), at most `suspicionMs` (1 s): a dying server's connections are
 *   not all seen to close at the same moment. Suspicion only steers calls
 *   away while another connection can take them (readiness fallback).
 * - **Retries after a connection ends.** A READY connection that ends while
 *   it carries calls (typically at a server's max connection age: GOAWAY)
 *   may have had its newest calls refused: a GOAWAY that crosses new streams
 *   on the wire refuses them, and grpc-js retries a refused call at once, but
 *   once only (gRFC A6 transparent retry). Those retries must not land on a
 *   connection as old as the one that ended: the same age limit may be
 *   closing it too, its GOAWAY not read yet, and a second refusal fails the
 *   call. grpc-js makes them within the event-loop turn that reads the
 *   GOAWAY, before other sockets are read. So the next picks of that turn
 *   (until {@link settlePicks}), as many as the ended connection carried
 *   calls, go to a *fresh* connection: one opened (its connect attempt
 *   began) at most a third of the ended connection's life ago. That is the
 *   pick itself when it is fresh, else the newest connection of its
 *   address, else the newest of the pool. gRPC servers jitter their age
 *   limit by ±10%, and a client sees a life late by the time it takes to
 *   read the GOAWAY (hundreds of ms when its event loop is starved), so a
 *   connection a third as old as one just closed stays clear of its own
 *   limit for read delays up to about 1.6 times the limit. With none (the pool's connections all opened together
 *   and reach their age together), such a pick returns -1: grpc-js queues
 *   the call, and picks it again when the channel state is published, which
 *   happens as soon as a fresh connection is READY; those picks are
 *   redirected too. Redirection stops once the replacement of every ended
 *   connection has answered (READY or failed) and the next wake-up has come,
 *   at most `replacementWaitMs` (1 s) after the last end. Later calls are
 *   not redirected, so the shares barely move: a redirected pick also stays
 *   with its address when it can.
 * - **Channel state.** READY when a connection is ready (after the start
 *   rule); else CONNECTING while a connection that has not failed since its
 *   last READY is connecting; else TRANSIENT_FAILURE. A connection that
 *   failed stays "failed" through its reconnect attempts until it is READY
 *   again (sticky, as in grpc-js's `pick_first` children of `round_robin`),
 *   so once every connection has failed the channel stays TRANSIENT_FAILURE,
 *   and calls without `waitForReady` fail at once, until one is READY: no
 *   CONNECTING on each backoff cycle.
 * - **Balanced start.** The channel reports READY only when every first
 *   connection attempt has settled (READY or failed) or `startWaitMs` has
 *   passed since the first addresses arrived, whichever is first, so a burst
 *   of calls made at construction follows the counts instead of all going
 *   to the first connection up. Default 250 ms: a loopback or in-datacenter
 *   connect plus TLS handshake settles in a few ms to tens of ms, a
 *   cross-region one in ~3 round trips (~150-250 ms); past that, waiting for
 *   a slow or black-holed address would delay every first call more than
 *   an unbalanced first burst costs.
 * - **Bounded size.** At most `maxConnections` slots (default 4,096: far
 *   above any sane pool, e.g. 1,000 backends `#4`, and well below the 8,192
 *   sockets that froze the event loop for seconds, or a default 65,536
 *   ulimit). Over it, an update marked `overCap: "fail"` (a `pass:` target,
 *   fixed by its author) is refused with {@link ConnectionCapError}; one
 *   marked `"keepFirst"` (an etcd set) keeps whole addresses in ascending
 *   address order while they fit, and traces the ones it left out.
 * - **Registry mass expiry.** When one update would remove more than
 *   `removalThreshold` (half) of the addresses that have a READY connection,
 *   the removed READY addresses are kept (still picked) for `removalGraceMs`
 *   (30 s) or until they are listed again: an etcd that lost its leases
 *   (restart past the TTL, hung, wiped) must not take every live backend
 *   away at once (in the spirit of Envoy's panic threshold). Removing half
 *   or fewer of them (one backend out of several) takes effect at once.
 *   Addresses without a READY connection are always removed at once. The
 *   kept addresses count against `maxConnections`: the new list takes its
 *   connections first (nothing would bring back an address left out of it
 *   when the grace ends), and the kept ones that no longer fit beside it
 *   are released at once (those that fit are kept in ascending address
 *   order), traced.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * const b = Balancer.make()
 * const out = Balancer.step(b, { _tag: "Addresses", now: 0, target: "pass:///a:1#2", endpoints: [{ address: "a:1", count: 2 }], overCap: "fail", offset: 0 })
 * // out.create: two slots to open; out.connect: both; out.publish: CONNECTING
 * for (const slot of out.create) Balancer.step(b, { _tag: "StateChanged", now: 5, slot: slot.id, state: "READY" })
 * Balancer.state(b) // "READY"
 * Balancer.pick(b) // a slot id
 * ```
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Expansion from "./Expansion.js"
import * as Rotation from "./Rotation.js"
import * as Target from "./Target.js"

// ---------------------------------------------------------------------------
// Options, limits, config
// ---------------------------------------------------------------------------

/**
 * Default cap on one channel's connections (see the module doc).
 *
 * @since 0.2.0
 */
export const DEFAULT_MAX_CONNECTIONS = 4096

/**
 * Default bound on the balanced-start wait, in ms (see the module doc).
 *
 * @since 0.2.0
 */
export const DEFAULT_START_WAIT_MS = 250

/**
 * Default grace period for READY addresses removed by a mass removal, in ms.
 *
 * @since 0.2.0
 */
export const DEFAULT_REMOVAL_GRACE_MS = 30_000

/**
 * How long the siblings of a dropped connection are skipped, at most, in ms.
 *
 * @since 0.2.0
 */
export const SUSPICION_MS = 1_000

/**
 * Default bound on how long retries are redirected after a connection with
 * calls in flight ends, in ms (see the module doc). A reconnect answers in a
 * few ms to tens of ms, but a busy process reads its sockets late: 1 s, as
 * {@link SUSPICION_MS}, covers that. Only picks that find no fresh
 * connection wait, and only until one is READY.
 *
 * @since 0.3.0
 */
export const DEFAULT_REPLACEMENT_WAIT_MS = 1_000

/**
 * Default stream limit assumed per connection when deciding that an
 * adaptive address is saturated (grpc-js does not expose the server's HTTP/2
 * `MAX_CONCURRENT_STREAMS` through its public API; 100 is what most servers
 * announce, e.g. Go's grpc and Envoy; grpc-js servers announce no limit
 * unless `grpc.max_concurrent_streams` is set).
 *
 * @since 0.3.0
 */
export const DEFAULT_MAX_STREAMS_PER_CONNECTION = 100

/**
 * Default time an adaptive address must stay un-busy before one of its
 * extra connections is closed, in ms (see the module doc).
 *
 * @since 0.3.0
 */
export const DEFAULT_SHRINK_IDLE_MS = 30_000

/**
 * How calls pick a connection (see the module doc): the smooth weighted
 * round robin (the default) or the load-aware power of two choices.
 *
 * @since 0.3.0
 */
export type PickMode = Target.PickMode

/**
 * The pick modes (the target grammar's list).
 *
 * @since 0.3.0
 */
export const PICK_MODES: ReadonlyArray<PickMode> = Target.PICK_MODES

/**
 * The machine's tunables. Every field has a documented default.
 *
 * @since 0.2.0
 */
export interface Options {
  /** Bound on the balanced-start wait (ms, >= 0; 0 serves at the first READY). */
  readonly startWaitMs: number
  /** Cap on the number of connections (slots), >= 1. */
  readonly maxConnections: number
  /** How long READY addresses dropped by a mass removal are kept (ms, >= 0; 0 disables). */
  readonly removalGraceMs: number
  /** The share (0..1) of READY addresses an update may remove at once before the grace applies. */
  readonly removalThreshold: number
  /** How long siblings of a dropped connection are skipped, at most (ms). */
  readonly suspicionMs: number
  /** Build trace lines (off by default: they cost allocations on every event). */
  readonly trace: boolean
  /** The pick mode when the address list names none. */
  readonly pickMode: PickMode
  /** Streams one connection is assumed to carry at once (>= 1): the saturation point of adaptive counts. */
  readonly maxStreamsPerConnection: number
  /** How long an adaptive address must stay un-busy before an extra connection is closed (ms, >= 1). */
  readonly shrinkIdleMs: number
  /** Bound on the redirection of retries after a connection with calls in flight ends (ms, >= 0; 0 turns it off). */
  readonly replacementWaitMs: number
}

/**
 * The defaults of {@link Options}.
 *
 * @since 0.2.0
 */
export const defaultOptions: Options = {
  startWaitMs: DEFAULT_START_WAIT_MS,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  removalGraceMs: DEFAULT_REMOVAL_GRACE_MS,
  removalThreshold: 0.5,
  suspicionMs: SUSPICION_MS,
  trace: false,
  pickMode: "round_robin",
  maxStreamsPerConnection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
  shrinkIdleMs: DEFAULT_SHRINK_IDLE_MS,
  replacementWaitMs: DEFAULT_REPLACEMENT_WAIT_MS
}

/**
 * The JSON form of the `anchor_round_robin` policy config, every field
 * optional: `{ "connectionsPerAddress": 2, "maxConnectionsPerAddress": 8,
 * "pickMode": "least_request", "maxStreamsPerConnection": 100,
 * "shrinkIdleMs": 30000, "startWaitMs": 250, "maxConnections": 4096,
 * "removalGraceMs": 30000 }`. `maxConnectionsPerAddress` (>=
 * `connectionsPerAddress`) makes the count of addresses the resolver gave
 * no count for adaptive.
 *
 * @since 0.2.0
 */
export const PolicyConfigJson = Schema.Struct({
  connectionsPerAddress: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 256 }))),
  maxConnectionsPerAddress: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 256 }))),
  pickMode: Schema.optionalKey(Schema.Literals(Target.PICK_MODES)),
  maxStreamsPerConnection: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))),
  shrinkIdleMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 86_400_000 }))),
  startWaitMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 60_000 }))),
  maxConnections: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))),
  removalGraceMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3_600_000 })))
})

/**
 * A decoded policy config.
 *
 * @since 0.2.0
 */
export type PolicyConfig = typeof PolicyConfigJson.Type

/**
 * A policy config that does not decode: `reason` says which field and what
 * was expected.
 *
 * @since 0.2.0
 */
export class PolicyConfigError extends Data.TaggedError("PolicyConfigError")<{
  readonly input: unknown
  readonly reason: string
}> {
  override get message(): string {
    return `anchor_round_robin config ${safeJson(this.input)} is not valid: ${this.reason}`
  }
}

const safeJson = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

const decodeConfigJson = Schema.decodeUnknownResult(PolicyConfigJson)

/**
 * Decodes an `anchor_round_robin` config (`undefined`/`null` is `{}`).
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * Balancer.decodeConfig({ connectionsPerAddress: 2 }) // Success({ connectionsPerAddress: 2 })
 * Balancer.decodeConfig({ connectionsPerAddress: 0 }) // Failure(PolicyConfigError)
 * ```
 *
 * @since 0.2.0
 */
export const decodeConfig = (input: unknown): Result.Result<PolicyConfig, PolicyConfigError> => {
  const decoded = decodeConfigJson(input === undefined || input === null ? {} : input)
  if (Result.isFailure(decoded)) return Result.fail(new PolicyConfigError({ input, reason: decoded.failure.message }))
  const config = decoded.success
  if (config.maxConnectionsPerAddress !== undefined && config.maxConnectionsPerAddress < (config.connectionsPerAddress ?? 1)) {
    return Result.fail(
      new PolicyConfigError({
        input,
        reason: `maxConnectionsPerAddress (${config.maxConnectionsPerAddress}) is below connectionsPerAddress (${config.connectionsPerAddress ?? 1}); expected a range min..max with min <= max`
      })
    )
  }
  return Result.succeed(config)
}

/**
 * {@link decodeConfig}, throwing its error.
 *
 * @since 0.2.0
 */
export const unsafeDecodeConfig = (input: unknown): PolicyConfig =>
  Result.getOrThrowWith(decodeConfig(input), (error) => error)

/**
 * A list of addresses whose connections add up to more than the cap.
 *
 * @since 0.2.0
 */
export class ConnectionCapError extends Data.TaggedError("ConnectionCapError")<{
  readonly total: number
  readonly max: number
}> {
  override get message(): string {
    return `the target asks for ${this.total} connections, over this channel's cap of ${this.max}: lower the #N counts or the number of addresses, or raise the channel option grpc_anchor.max_connections`
  }
}

/**
 * The total number of connections of `endpoints` (duplicates added up), or a
 * {@link ConnectionCapError} when it is over `max`. For resolvers that want
 * to refuse an over-sized `pass:` target before the policy sees it.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * Balancer.checkCap([{ address: "a:1", count: 256 }], 100) // Failure(ConnectionCapError: ... 256 connections, over ... 100 ...)
 * ```
 *
 * @since 0.2.0
 */
export const checkCap = (
  endpoints: ReadonlyArray<Expansion.Weighted>,
  max: number = DEFAULT_MAX_CONNECTIONS
): Result.Result<number, ConnectionCapError> => {
  let total = 0
  for (const endpoint of endpoints) total += endpoint.count
  return total > max ? Result.fail(new ConnectionCapError({ total, max })) : Result.succeed(total)
}

/**
 * {@link checkCap}, throwing its error.
 *
 * @since 0.2.0
 */
export const unsafeCheckCap = (endpoints: ReadonlyArray<Expansion.Weighted>, max: number = DEFAULT_MAX_CONNECTIONS): number =>
  Result.getOrThrowWith(checkCap(endpoints, max), (error) => error)

// ---------------------------------------------------------------------------
// Events and outputs
// ---------------------------------------------------------------------------

/**
 * A connection's state, by grpc-js's names.
 *
 * @since 0.2.0
 */
export type ConnectionState = "IDLE" | "CONNECTING" | "READY" | "TRANSIENT_FAILURE" | "SHUTDOWN"

/**
 * The state the channel reports.
 *
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
 * @since 0.2.0
 */
export type Event =
  | {
    readonly _tag: "Addresses"
    readonly now: number
    readonly target: string
    readonly endpoints: ReadonlyArray<Expansion.Weighted>
    readonly overCap: "fail" | "keepFirst"
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
// ---------------------------------------------------------------------------

/** A set of ring positions with O(log32 n) next-at-or-after search. */
class Bits {
  /** levels[0] holds one bit per position; levels[l + 1] one bit per word of levels[l]. */
  readonly levels: Array<Uint32Array>
  constructor(readonly size: number) {
    this.levels = []
    let bits = Math.max(size, 1)
    for (;;) {
      const words = (bits + 31) >>> 5
      this.levels.push(new Uint32Array(words))
      if (words === 1) break
      bits = words
    }
  }

  add(i: number, cost: Counter): void {
    for (let l = 0; l < this.levels.length; l++) {
      cost.work++
      const level = this.levels[l]!
      const w = i >>> 5
      const before = level[w]!
      level[w] = before | (1 << (i & 31))
      if (before !== 0) return
      i = w
    }
  }

  delete(i: number, cost: Counter): void {
    for (let l = 0; l < this.levels.length; l++) {
      cost.work++
      const level = this.levels[l]!
      const w = i >>> 5
      const after = level[w]! & ~(1 << (i & 31))
      level[w] = after
      if (after !== 0) return
      i = w
    }
  }

  /** The first member >= i, or -1. */
  next(i: number, l = 0): number {
    const level = this.levels[l]
    if (level === undefined) return -1
    const w = i >>> 5
    if (w >= level.length) return -1
    const m = level[w]! & (-1 << (i & 31))
    if (m !== 0) return (w << 5) + ctz(m)
    const j = this.next(w + 1, l + 1)
    return j < 0 ? -1 : (j << 5) + ctz(level[j]!)
  }
}

const ctz = (x: number): number => 31 - Math.clz32(x & -x)

interface Counter {
  work: number
}

/** A slot's state as the channel rollup counts it. */
type Eff = 0 | 1 | 2
const Eff = { Connecting: 0, Ready: 1, Failed: 2 } as const

class AddressState {
  /** Slots by index (the address's current count). */
  slots: Array<Slot> = []
  /** The count range: `count` (current) stays within min..max. */
  min: number
  max: number
  /** Calls in flight on the address's slots. */
  inFlight = 0
  /** Slots with inFlight >= the stream limit. */
  full = 0
  /** Slots with inFlight > the stream limit (calls waiting for a stream). */
  over = 0
  /** In flight went over what one connection fewer could carry since the last shrink check. */
  busy = false
  /** Queued for a `CallsWaiting` step. */
  growWanted = false
  /** The pending shrink check; 0: none. */
  shrinkAt = 0
  /** Connected (READY and healthy) slots. */
  connected = 0
  /** Siblings of a dropped connection are suspect until then; 0: none. */
  suspectUntil = 0
  /** Generation of the suspicion deadline, so stale wake-ups do nothing. */
  suspicionGen = 0
  /** Kept beyond the listed addresses until then (mass removal grace); 0: listed. */
  retainedUntil = 0
  constructor(readonly address: string, public count: number) {
    this.min = count
    this.max = count
  }
}

class Slot {
  pos = 0
  raw: ConnectionState = "IDLE"
  healthy = true
  /** Failed since its last READY: counts as failed while it reconnects. */
  sticky = false
  /** Its first attempt settled (READY or failed). */
  settled = false
  /** Created during the start phase: the start waits for it. */
  inStart = false
  suspect = false
  /** When its connection last became READY (the READY list's order). */
  readyAt = 0
  /** When its current connection attempt began (CONNECTING); -Infinity: none seen since its last READY. */
  attemptAt = Number.NEGATIVE_INFINITY
  /**
   * Its connection's start, as the server's age limit counts it: the start of
   * the attempt that made it READY (a slow connect must not make an old
   * connection look young), or when it was seen READY if no attempt was seen
   * (a subchannel another channel had connected).
   */
  openedAt = Number.NEGATIVE_INFINITY
  /** Neighbours in the pool's list of READY connections, oldest to newest (see `BalancerImpl.newest`). */
  older: Slot | undefined = undefined
  newer: Slot | undefined = undefined
  /** Its connection ended with calls in flight in redirection window `awaitedIn`: its replacement is awaited. */
  awaitedIn = 0
  eff: Eff = Eff.Connecting
  connected = false
  pickable = false
  /** Calls in flight (started and not ended), as the caller reports them. */
  inFlight = 0
  /** least_request picks of this slot not yet started (see {@link settlePicks}). */
  pending = 0
  /** Index in the dense list of pickable (pIdx) / connected (cIdx) slots; -1: not in it. */
  pIdx = -1
  cIdx = -1
  constructor(readonly id: number, readonly address: AddressState, readonly index: number, readonly key: string) {}
}

interface Deadline {
  readonly at: number
  readonly kind: "suspicion" | "retention" | "start" | "shrink" | "redirect" | "settled"
  readonly address: AddressState | undefined
  readonly gen: number
  /** Push order: breaks ties between kinds as one sorted queue would. */
  readonly seq: number
}

/**
 * The pending deadlines of one kind. Each kind uses a fixed delay (the
 * options never change) and time never goes back (a start deadline is
 * pushed once), so pushes arrive in time order: appending keeps it sorted.
 */
class DeadlineQueue {
  items: Array<Deadline> = []
  /** First entry not yet taken. */
  head = 0
}

/**
 * One channel's pool. Opaque: create with {@link make}, drive with
 * {@link step}, read with {@link pick}, {@link state}, {@link slots}.
 *
 * @since 0.2.0
 */
export interface Balancer {
  readonly [TypeId]: typeof TypeId
}

/**
 * Brands {@link Balancer} values.
 *
 * @since 0.2.0
 */
export const TypeId: unique symbol = Symbol.for("grpc-anchor/Balancer")

class BalancerImpl implements Balancer, Counter {
  readonly [TypeId]: typeof TypeId = TypeId
  work = 0
  now = Number.NEGATIVE_INFINITY
  /** Ids of removed slots, reused so `byId` stays dense under churn. */
  freeIds: Array<number> = []
  target = "(unknown target)"
  note = ""
  lastError: string | null = null
  /** Why the pool is empty: no addresses, a resolver error, a refused list. */
  emptyReason: string | null = null
  ring: Array<Slot> = []
  /** Slots by id (an array: a connectivity event looks its slot up at any pool size without hashing). */
  byId: Array<Slot | undefined> = [undefined]
  addresses = new Map<string, AddressState>()
  connectedBits = new Bits(0)
  pickableBits = new Bits(0)
  nConnected = 0
  nPickable = 0
  nConnecting = 0
  cursor = 0
  /** The start phase is over: READY may be reported. */
  serving = false
  startDeadline = 0
  unsettled = 0
  state: ChannelState = "CONNECTING"
  publishedState: ChannelState | undefined
  publishedReason: string | null = null
  /** One queue per kind (see {@link DeadlineQueue}); the wake-up is the earliest live head. */
  deadlines: ReadonlyArray<DeadlineQueue> = Array.from({ length: 6 }, () => new DeadlineQueue())
  deadlineSeq = 0
  /** The pick mode in force (the last address list's, else the option). */
  pickMode: PickMode
  /** Dense lists of the pickable and connected slots, for uniform draws. */
  pickableList: Array<Slot> = []
  connectedList: Array<Slot> = []
  /** xorshift32 state of the least_request draws (seeded by the first address list's offset). */
  rng = 0x9e3779b9
  seeded = false
  /** Slots given pending picks since the last settlePicks (a slot once per pick). */
  pendingSlots: Array<Slot> = []
  /** Addresses queued for growth by callStarted. */
  growQueue: Array<AddressState> = []
  /** Connections across all addresses (the cap applies to growth too). */
  total = 0
  /** The newest READY connection: the tail of the READY list, in the order they became READY. */
  newest: Slot | undefined = undefined
  /** A redirection window is open: from a connection's end with calls in flight to its replacement's answer. */
  redirecting = false
  /**
   * Picks of this event-loop turn still to place on fresh connections: the
   * retries of the calls that connections ended this turn carried (grpc-js
   * retries a refused call within the turn that reads the GOAWAY). Dropped
   * by {@link settlePicks}.
   */
  redirect = 0
  /** Picks that returned -1 since the channel state was last published (grpc-js queued their calls). */
  queuedCalls = 0
  /** Picks still to come that grpc-js makes again for the calls queued before the last publish. */
  replay = 0
  /** A connection is fresh when it was opened (see `Slot.openedAt`) at or after this time. */
  freshAfter = Number.NEGATIVE_INFINITY
  /** The current redirection window (counts up; slots awaited in an older one are not awaited). */
  window = 1
  /** Ended connections of this window whose replacement has not answered yet. */
  awaiting = 0
  /** Generation of the window's deadlines: each end pushes a later bound, so older ones are stale. */
  redirectGen = 0
  /** A pick waited for a fresh connection since the channel state was last published. */
  queued = false
  constructor(readonly options: Options) {
    this.pickMode = options.pickMode
  }
}

/** Shared by every output that has nothing in a list; frozen, never pushed to. */
const NONE = Object.freeze([]) as unknown as Array<never>

/** Per-step scratch, turned into the {@link Output}; arrays are allocated on first use (most events fill none). */
class Out {
  remove: Array<number> = NONE
  create: Array<NewSlot> = NONE
  connect: Array<number> = NONE
  reresolve = false
  /** Publish the channel state again, unchanged, so that picks that waited are placed. */
  republish = false
  trace: Array<string> = NONE
  constructor(readonly tracing: boolean) {}
  log(line: () => string): void {
    if (this.tracing) {
      if (this.trace === NONE) this.trace = []
      this.trace.push(line())
    }
  }
  pushRemove(id: number): void {
    if (this.remove === NONE) this.remove = []
    this.remove.push(id)
  }
  pushCreate(slot: NewSlot): void {
    if (this.create === NONE) this.create = []
    this.create.push(slot)
  }
  pushConnect(id: number): void {
    if (this.connect === NONE) this.connect = []
    this.connect.push(id)
  }
}

// ---------------------------------------------------------------------------
// Construction and reads
// ---------------------------------------------------------------------------

/**
 * A balancer with no slots; `options` override {@link defaultOptions}.
 *
 * @throws RangeError when an option is out of range (a defect in the caller;
 * decode outside input with {@link decodeConfig} first).
 *
 * @since 0.2.0
 */
export const make = (options: Partial<Options> = {}): Balancer => {
  const merged: Options = { ...defaultOptions, ...options }
  const check = (name: keyof Options, ok: boolean) => {
    if (!ok) throw new RangeError(`Balancer option ${name} is out of range: ${String(merged[name])}`)
  }
  check("startWaitMs", Number.isFinite(merged.startWaitMs) && merged.startWaitMs >= 0)
  check("maxConnections", Number.isSafeInteger(merged.maxConnections) && merged.maxConnections >= 1)
  check("removalGraceMs", Number.isFinite(merged.removalGraceMs) && merged.removalGraceMs >= 0)
  check("removalThreshold", merged.removalThreshold >= 0 && merged.removalThreshold <= 1)
  check("suspicionMs", Number.isFinite(merged.suspicionMs) && merged.suspicionMs >= 0)
  check("pickMode", PICK_MODES.includes(merged.pickMode))
  check("maxStreamsPerConnection", Number.isSafeInteger(merged.maxStreamsPerConnection) && merged.maxStreamsPerConnection >= 1)
  check("shrinkIdleMs", Number.isFinite(merged.shrinkIdleMs) && merged.shrinkIdleMs >= 1)
  check("replacementWaitMs", Number.isFinite(merged.replacementWaitMs) && merged.replacementWaitMs >= 0)
  return new BalancerImpl(merged)
}

const impl = (b: Balancer): BalancerImpl => b as BalancerImpl

const slotOf = (b: BalancerImpl, id: number): Slot | undefined =>
  Number.isInteger(id) && id > 0 ? b.byId[id] : undefined

/**
 * The next call's slot id, or -1 when the channel is not READY or the call
 * must wait (queue) for a fresh connection (see "Retries after a connection
 * ends" in the module doc; the channel publishes its state again when it
 * may be picked).
 * `round_robin`: the next ready slot of the ring, O(log32 n).
 * `least_request`: of two ready slots drawn at random, the one with fewer
 * calls in flight, O(1). A pick redirected to a fresh connection costs up
 * to O(its address's count) more. Allocation-free.
 *
 * @since 0.2.0
 */
export const pick = (balancer: Balancer): number => {
  const b = impl(balancer)
  // After a publish grpc-js first picks again, at once, every call it queued: those come first.
  const again = b.replay > 0
  if (again) b.replay--
  let id = b.state !== "READY" ? -1 : b.pickMode === "least_request" ? pickLeastRequest(b) : pickRoundRobin(b)
  if (id >= 0 && b.redirecting && (again || b.redirect > 0)) {
    // A retry of this turn, or a call that waited (it may be one): to a fresh connection.
    if (!again) b.redirect--
    id = redirected(b, b.byId[id]!)
  }
  if (id < 0) b.queuedCalls++
  return id
}

const pickRoundRobin = (b: BalancerImpl): number => {
  const bits = b.nPickable > 0 ? b.pickableBits : b.nConnected > 0 ? b.connectedBits : undefined
  if (bits === undefined) return -1
  let p = bits.next(b.cursor)
  if (p < 0) p = bits.next(0)
  b.cursor = p + 1 === b.ring.length ? 0 : p + 1
  return b.ring[p]!.id
}

/**
 * A redirected pick: `slot` when it is fresh, else the newest connection of
 * its address, else the newest of the pool, when fresh; else -1: the call
 * waits, and is redirected again when grpc-js picks it again after the next
 * publish.
 */
const redirected = (b: BalancerImpl, slot: Slot): number => {
  let target: Slot | undefined = slot.openedAt >= b.freshAfter ? slot : undefined
  if (target === undefined) {
    for (const sibling of slot.address.slots) {
      if (sibling.connected && sibling.openedAt >= b.freshAfter && (target === undefined || sibling.openedAt > target.openedAt)) {
        target = sibling
      }
    }
  }
  // The pool's newest first. A connection opened at or after `freshAfter` became READY then or
  // later too, so the walk stops at the first one READY before.
  for (let s = b.newest; target === undefined && s !== undefined && s.readyAt >= b.freshAfter; s = s.older) {
    if (s.connected && s.openedAt >= b.freshAfter) target = s
  }
  if (target === undefined) {
    b.queued = true
    return -1
  }
  if (target !== slot && slot.pending > 0) {
    // least_request counted the pick on `slot` until its call starts: move it.
    slot.pending--
    target.pending++
    b.pendingSlots.push(target)
  }
  return target.id
}

/** xorshift32: a whole number 0..2^32-1. */
const draw = (b: BalancerImpl): number => {
  let x = b.rng
  x ^= x << 13
  x ^= x >>> 17
  x ^= x << 5
  b.rng = x >>> 0
  return b.rng
}

const pickLeastRequest = (b: BalancerImpl): number => {
  const list = b.nPickable > 0 ? b.pickableList : b.connectedList
  const n = list.length
  if (n === 0) return -1
  if (n === 1) return list[0]!.id
  // Two distinct slots, uniform: the second draw skips the first's index.
  const i = Math.floor((draw(b) / 4294967296) * n)
  let j = Math.floor((draw(b) / 4294967296) * (n - 1))
  if (j >= i) j++
  const first = list[i]!
  const second = list[j]!
  // Picks not yet started count too: a burst of picks in one turn must not all see the same counts.
  const chosen = second.inFlight + second.pending < first.inFlight + first.pending ? second : first
  chosen.pending++
  b.pendingSlots.push(chosen)
  return chosen.id
}

/**
 * Ends an event-loop turn: call it once per turn after picks or connectivity
 * events (e.g. from `setImmediate`). It forgets the `least_request` picks
 * whose calls never started (grpc-js starts a picked call after its
 * credentials resolve, so {@link callStarted} follows a pick by a few
 * microtasks, and a call may be re-picked or fail before it starts; until a
 * call starts, its pick counts as in flight on its slot, so picks made in
 * one burst spread instead of all seeing the same counts), and the picks
 * left to redirect after a connection ended (grpc-js made the retries of
 * its refused calls within the turn). O(picks since the last call).
 *
 * @since 0.3.0
 */
export const settlePicks = (balancer: Balancer): void => {
  const b = impl(balancer)
  b.redirect = 0
  b.replay = 0
  const list = b.pendingSlots
  if (list.length === 0) return
  for (let i = 0; i < list.length; i++) list[i]!.pending = 0
  list.length = 0
}

/**
 * Counts a call started on slot `id` (the slot a pick returned; grpc-js's
 * `onCallStarted`). O(1). Returns `true` when the slot's address has an
 * adaptive count below its maximum, every one of its connections carries at
 * least `maxStreamsPerConnection` calls and some call waits for a stream:
 * then send a `CallsWaiting` event (soon, not from inside the pick) to open
 * one more connection. Call it only for a slot still in the pool: after a
 * slot's `remove`, drop its calls' events (its counts went with it).
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * const b = Balancer.make({ startWaitMs: 0, maxStreamsPerConnection: 1 })
 * const [slot] = Balancer.step(b, { _tag: "Addresses", now: 0, target: "pass:///a:1#1..2", endpoints: [{ address: "a:1", count: 1, maxCount: 2 }], overCap: "fail", offset: 0 }).create
 * Balancer.step(b, { _tag: "StateChanged", now: 1, slot: slot!.id, state: "READY" })
 * Balancer.callStarted(b, Balancer.pick(b)) // false: one call, one stream
 * Balancer.callStarted(b, Balancer.pick(b)) // true: a call waits
 * Balancer.step(b, { _tag: "CallsWaiting", now: 2 }).create // [{ id, address: "a:1", index: 1 }]
 * ```
 *
 * @since 0.3.0
 */
export const callStarted = (balancer: Balancer, id: number): boolean => {
  const b = impl(balancer)
  const slot = slotOf(b, id)
  if (slot === undefined) return false
  const limit = b.options.maxStreamsPerConnection
  const address = slot.address
  if (slot.pending > 0) slot.pending--
  const n = ++slot.inFlight
  address.inFlight++
  if (n === limit) address.full++
  else if (n === limit + 1) address.over++
  if (address.count > address.min && address.inFlight > (address.count - 1) * limit) address.busy = true
  if (
    address.max > address.count && !address.growWanted && address.full === address.count && address.over > 0 &&
    b.total < b.options.maxConnections
  ) {
    address.growWanted = true
    b.growQueue.push(address)
    return true
  }
  return false
}

/**
 * Counts the end of a call {@link callStarted} counted (grpc-js's
 * `onCallEnded`). O(1); never goes below zero.
 *
 * @since 0.3.0
 */
export const callEnded = (balancer: Balancer, id: number): void => {
  const b = impl(balancer)
  const slot = slotOf(b, id)
  if (slot === undefined || slot.inFlight === 0) return
  const limit = b.options.maxStreamsPerConnection
  const n = slot.inFlight--
  const address = slot.address
  address.inFlight--
  if (n === limit) address.full--
  else if (n === limit + 1) address.over--
}

/**
 * The pick mode in force: the last address list's `pick`, else the
 * `pickMode` option.
 *
 * @since 0.3.0
 */
export const pickMode = (balancer: Balancer): PickMode => impl(balancer).pickMode

/**
 * The channel state the balancer reports now.
 *
 * @since 0.2.0
 */
export const state = (balancer: Balancer): ChannelState => impl(balancer).state

/**
 * Why calls fail while the channel is TRANSIENT_FAILURE: the target, what is
 * wrong and the last connection error.
 *
 * @since 0.2.0
 */
export const failureMessage = (balancer: Balancer): string => {
  const b = impl(balancer)
  if (b.ring.length === 0) return b.emptyReason ?? `anchor_round_robin: no addresses for ${b.target}`
  return `anchor_round_robin: no ready connection to ${b.target} (${b.ring.length} connections failing; last error: ${b.lastError ?? "none"})`
}

/**
 * One slot as seen from outside.
 *
 * @since 0.2.0
 */
export interface SlotView {
  readonly id: number
  readonly address: string
  readonly index: number
  readonly state: ConnectionState
  readonly healthy: boolean
  /** Takes calls now (ready, not skipped by suspicion, or the fallback). */
  readonly pickable: boolean
  /** Calls in flight, as reported by {@link callStarted} and {@link callEnded}. */
  readonly inFlight: number
}

/**
 * The slots in ring (pick) order. O(n): for stats and tests, not per event.
 *
 * @since 0.2.0
 */
export const slots = (balancer: Balancer): ReadonlyArray<SlotView> => {
  const b = impl(balancer)
  const fallback = b.nPickable === 0
  return b.ring.map((slot) => ({
    id: slot.id,
    address: slot.address.address,
    index: slot.index,
    state: slot.raw,
    healthy: slot.healthy,
    pickable: fallback ? slot.connected : slot.pickable,
    inFlight: slot.inFlight
  }))
}

/**
 * Whether `address` has slots in the pool (listed, or kept by the
 * mass-removal grace). O(1).
 *
 * @since 0.2.0
 */
export const hasAddress = (balancer: Balancer, address: string): boolean => impl(balancer).addresses.has(address)

/**
 * Units of work done so far by events (bitset levels touched, slots
 * visited). Tests use it to check that a connectivity event costs the same
 * at any pool size.
 *
 * @since 0.2.0
 */
export const work = (balancer: Balancer): number => impl(balancer).work

// ---------------------------------------------------------------------------
// Slot bookkeeping (O(log32 n) per call)
// ---------------------------------------------------------------------------

/** Recomputes a slot's derived flags from its raw state and moves the counters and bitsets. */
const refresh = (b: BalancerImpl, slot: Slot): void => {
  const listed = slot.newer !== undefined || b.newest === slot
  if (slot.raw === "READY" && !listed) {
    // Its connection became READY now: the newest (raw READY, so a health flap keeps its age).
    slot.readyAt = b.now
    slot.openedAt = slot.attemptAt === Number.NEGATIVE_INFINITY ? b.now : slot.attemptAt
    slot.attemptAt = Number.NEGATIVE_INFINITY
    slot.older = b.newest
    if (b.newest !== undefined) b.newest.newer = slot
    b.newest = slot
  } else if (slot.raw !== "READY" && listed) unlinkReady(b, slot)
  const connected = slot.raw === "READY" && slot.healthy
  let eff: Eff
  if (connected) {
    slot.sticky = false
    eff = Eff.Ready
  } else if (slot.raw === "IDLE" || slot.raw === "CONNECTING") {
    eff = slot.sticky ? Eff.Failed : Eff.Connecting
  } else {
    slot.sticky = true
    eff = Eff.Failed
  }
  if (!slot.settled && eff !== Eff.Connecting) {
    slot.settled = true
    if (slot.inStart) {
      slot.inStart = false
      b.unsettled--
    }
  }
  if (slot.eff !== eff) {
    if (slot.eff === Eff.Connecting) b.nConnecting--
    if (eff === Eff.Connecting) b.nConnecting++
    slot.eff = eff
  }
  if (slot.connected !== connected) {
    slot.connected = connected
    if (connected) {
      b.nConnected++
      slot.address.connected++
      b.connectedBits.add(slot.pos, b)
      slot.cIdx = listAdd(b.connectedList, slot, slot.cIdx)
    } else {
      b.nConnected--
      slot.address.connected--
      b.connectedBits.delete(slot.pos, b)
      slot.cIdx = listDelete(b.connectedList, slot.cIdx, "c")
    }
  }
  const pickable = connected && !slot.suspect
  if (slot.pickable !== pickable) {
    slot.pickable = pickable
    if (pickable) {
      b.nPickable++
      b.pickableBits.add(slot.pos, b)
      slot.pIdx = listAdd(b.pickableList, slot, slot.pIdx)
    } else {
      b.nPickable--
      b.pickableBits.delete(slot.pos, b)
      slot.pIdx = listDelete(b.pickableList, slot.pIdx, "p")
    }
  }
}

/** Takes a slot out of the pool's READY list (O(1)). */
const unlinkReady = (b: BalancerImpl, slot: Slot): void => {
  if (slot.newer !== undefined) slot.newer.older = slot.older
  else b.newest = slot.older
  if (slot.older !== undefined) slot.older.newer = slot.newer
  slot.older = undefined
  slot.newer = undefined
}

/** Appends `slot` to a dense list (O(1)); returns its index. */
const listAdd = (list: Array<Slot>, slot: Slot, at: number): number => {
  if (at >= 0) return at
  list.push(slot)
  return list.length - 1
}

/** Removes index `at` from a dense list by moving the last slot there (O(1)); returns -1. */
const listDelete = (list: Array<Slot>, at: number, which: "p" | "c"): number => {
  if (at < 0) return -1
  const last = list.pop()!
  if (at < list.length) {
    list[at] = last
    if (which === "p") last.pIdx = at
    else last.cIdx = at
  }
  return -1
}

/** Takes a slot out of every counter (before it is removed). */
const forget = (b: BalancerImpl, slot: Slot): void => {
  if (slot.eff === Eff.Connecting) b.nConnecting--
  if (slot.connected) {
    b.nConnected--
    slot.address.connected--
  }
  if (slot.pickable) b.nPickable--
  if (slot.inStart) b.unsettled--
  slot.cIdx = listDelete(b.connectedList, slot.cIdx, "c")
  slot.pIdx = listDelete(b.pickableList, slot.pIdx, "p")
  if (slot.newer !== undefined || b.newest === slot) unlinkReady(b, slot)
  if (slot.awaitedIn === b.window) answered(b, slot)
  // The slot's calls leave the address's counts with it.
  const limit = b.options.maxStreamsPerConnection
  const address = slot.address
  address.inFlight -= slot.inFlight
  if (slot.inFlight >= limit) address.full--
  if (slot.inFlight > limit) address.over--
  slot.inFlight = 0
  b.byId[slot.id] = undefined
  b.freeIds.push(slot.id)
}

const KIND_QUEUE = { start: 0, suspicion: 1, retention: 2, shrink: 3, redirect: 4, settled: 5 } as const

const pushDeadline = (b: BalancerImpl, deadline: Omit<Deadline, "seq">): void => {
  // One FIFO queue per kind, each in time order (see DeadlineQueue): a push
  // is an append, whatever the number of other deadlines pending.
  b.work++
  b.deadlines[KIND_QUEUE[deadline.kind]]!.items.push({ ...deadline, seq: b.deadlineSeq++ })
}

/**
 * The queue whose head is due first (ties: the earlier push), dropping stale
 * heads on the way (each entry is dropped once: amortized O(1) per push).
 */
const earliest = (b: BalancerImpl): DeadlineQueue | undefined => {
  let best: DeadlineQueue | undefined
  for (const queue of b.deadlines) {
    while (queue.head < queue.items.length && stale(b, queue.items[queue.head]!)) {
      b.work++
      queue.head++
    }
    if (queue.head === queue.items.length) continue
    const d = queue.items[queue.head]!
    if (best === undefined) best = queue
    else {
      const e = best.items[best.head]!
      if (d.at < e.at || (d.at === e.at && d.seq < e.seq)) best = queue
    }
  }
  return best
}

const nextWake = (b: BalancerImpl): number | undefined => {
  const queue = earliest(b)
  compact(b)
  return queue === undefined ? undefined : queue.items[queue.head]!.at
}

const stale = (b: BalancerImpl, d: Deadline): boolean => {
  switch (d.kind) {
    case "start":
      return b.serving
    case "suspicion":
      return d.address!.suspicionGen !== d.gen || b.addresses.get(d.address!.address) !== d.address
    case "retention":
      return d.address!.retainedUntil !== d.at || b.addresses.get(d.address!.address) !== d.address
    case "shrink":
      return d.address!.shrinkAt !== d.at || b.addresses.get(d.address!.address) !== d.address
    case "redirect":
    case "settled":
      return d.gen !== b.redirectGen
  }
}

const compact = (b: BalancerImpl): void => {
  for (const queue of b.deadlines) {
    if (queue.head > 64 && queue.head * 2 > queue.items.length) {
      queue.items = queue.items.slice(queue.head)
      queue.head = 0
    }
  }
}

// ---------------------------------------------------------------------------
// The channel state
// ---------------------------------------------------------------------------

const computeState = (b: BalancerImpl): ChannelState => {
  if (b.ring.length === 0) return "TRANSIENT_FAILURE"
  if (b.nConnected > 0) return b.serving ? "READY" : "CONNECTING"
  if (b.nConnecting > 0) return "CONNECTING"
  return "TRANSIENT_FAILURE"
}

const endStartIfSettled = (b: BalancerImpl, out: Out): void => {
  if (!b.serving && b.ring.length > 0 && b.unsettled === 0) {
    b.serving = true
    if (out.tracing) out.log(() => `start: every first connection attempt settled; serving`)
  }
}

const finish = (b: BalancerImpl, out: Out): Output => {
  endStartIfSettled(b, out)
  const next = computeState(b)
  // An empty pool republishes when its reason changes (a resolver error after "no addresses").
  const reason = next === "TRANSIENT_FAILURE" && b.ring.length === 0 ? b.emptyReason ?? "" : null
  let publish: Output["publish"]
  if (next !== b.publishedState || reason !== b.publishedReason || (out.republish && next === "READY")) {
    // grpc-js picks every queued call again when the state is published.
    b.replay = b.queuedCalls
    b.queuedCalls = 0
    b.queued = false
    const message = next === "TRANSIENT_FAILURE" ? failureMessage(b) : null
    publish = { state: next, message }
    const previous = b.publishedState ?? "IDLE"
    if (out.tracing) out.log(() => `channel ${previous} -> ${next}${message !== null ? `: ${message}` : ""}`)
    b.publishedState = next
    b.publishedReason = reason
  }
  b.state = next
  return {
    remove: out.remove,
    create: out.create,
    connect: out.connect,
    publish,
    reresolve: out.reresolve,
    wakeAt: nextWake(b),
    trace: out.trace
  }
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/**
 * Applies one event and returns what to do (see {@link Output}). A
 * connectivity event (`StateChanged`, `HealthChanged`) costs
 * O(log32 n) amortised plus the address's own count (<= 256), whatever the
 * number of slots; an `Addresses` event costs O(n log n) (the new ring).
 * Events for unknown slot ids are ignored. An id names one slot from its
 * `create` to its `remove`; a later slot may get the same id (ids are
 * reused so lookups stay dense), so send no event for a removed slot.
 *
 * @since 0.2.0
 */
export const step = (balancer: Balancer, event: Event): Output => {
  const b = impl(balancer)
  if (event.now > b.now) b.now = event.now
  const out = new Out(b.options.trace)
  switch (event._tag) {
    case "Addresses":
      onAddresses(b, event, out)
      break
    case "ResolverError":
      if (b.ring.length === 0) {
        b.emptyReason = `anchor_round_robin: ${b.target}: ${event.message}`
        if (out.tracing) out.log(() => `resolver error with no addresses: ${event.message}`)
      } else {
        if (out.tracing) out.log(() => `resolver error, keeping ${b.ring.length} connections: ${event.message}`)
      }
      break
    case "StateChanged":
      onState(b, event.slot, event.state, event.error, out)
      break
    case "HealthChanged": {
      const slot = slotOf(b, event.slot)
      if (slot !== undefined && slot.healthy !== event.healthy) {
        slot.healthy = event.healthy
        refresh(b, slot)
        if (out.tracing) out.log(() => `${slot.key} ${event.healthy ? "healthy" : "unhealthy (ejected)"}`)
      }
      break
    }
    case "TimerFired":
      onTimer(b, out)
      break
    case "CallsWaiting":
      onCallsWaiting(b, out)
      break
  }
  return finish(b, out)
}

/** Grows each queued address by one connection if it is still saturated (one attempt at a time). */
const onCallsWaiting = (b: BalancerImpl, out: Out): void => {
  const queue = b.growQueue
  if (queue.length === 0) return
  b.growQueue = []
  let grown = false
  let total = b.total
  for (const address of queue) {
    address.growWanted = false
    if (b.addresses.get(address.address) !== address) continue
    // Re-checked: calls may have ended since callStarted asked.
    if (address.max <= address.count || address.full !== address.count || address.over === 0) continue
    if (total >= b.options.maxConnections) {
      if (out.tracing) out.log(() => `${address.address}: saturated, but the channel is at its cap of ${b.options.maxConnections} connections`)
      continue
    }
    address.count++
    total++
    grown = true
    if (out.tracing) out.log(() => `${address.address}: every connection carries >= ${b.options.maxStreamsPerConnection} calls and ${address.inFlight} are in flight; opening connection ${address.count} of at most ${address.max}`)
    armShrink(b, address)
  }
  if (grown) rebuildRing(b, currentCounts(b), out, 0)
}

/** The addresses as they are now (current counts and ranges), in pool order. */
const currentCounts = (b: BalancerImpl): Array<Wanted> => {
  const list: Array<Wanted> = []
  for (const address of b.addresses.values()) {
    list.push({ address: address.address, count: address.count, min: address.min, max: address.max })
  }
  return list
}

/** Schedules the next shrink check of an address above its minimum, if none is pending. */
const armShrink = (b: BalancerImpl, address: AddressState): void => {
  if (address.shrinkAt !== 0 || address.count <= address.min) return
  address.busy = false
  address.shrinkAt = b.now + b.options.shrinkIdleMs
  pushDeadline(b, { at: address.shrinkAt, kind: "shrink", address, gen: 0 })
}

const onState = (b: BalancerImpl, id: number, next: ConnectionState, error: string | undefined, out: Out): void => {
  const slot = slotOf(b, id)
  if (slot === undefined) return
  const previous = slot.raw
  const wasConnected = slot.connected
  slot.raw = next
  if (next === "CONNECTING" && previous !== "CONNECTING") slot.attemptAt = b.now
  else if (next === "TRANSIENT_FAILURE" || next === "SHUTDOWN") slot.attemptAt = Number.NEGATIVE_INFINITY
  if (next === "TRANSIENT_FAILURE" && error) b.lastError = error
  refresh(b, slot)
  if (out.tracing) out.log(() => `${slot.key} ${previous} -> ${next}${error ? ` (${error})` : ""}`)
  const address = slot.address
  if (wasConnected && !slot.connected) {
    out.reresolve = true
    if (b.options.suspicionMs > 0) {
      let suspected = 0
      for (const sibling of address.slots) {
        b.work++
        if (sibling !== slot && sibling.connected) {
          if (!sibling.suspect) {
            sibling.suspect = true
            refresh(b, sibling)
          }
          suspected++
        }
      }
      if (suspected > 0) {
        address.suspectUntil = b.now + b.options.suspicionMs
        const gen = ++address.suspicionGen
        pushDeadline(b, { at: address.suspectUntil, kind: "suspicion", address, gen })
        if (out.tracing) out.log(() => `${address.address}: skipping ${suspected} sibling connection(s) for up to ${b.options.suspicionMs} ms`)
      }
    }
  }
  if (previous === "READY" && next !== "READY" && slot.inFlight > 0 && b.options.replacementWaitMs > 0) {
    redirectRetries(b, slot, out)
  }
  if (slot.awaitedIn === b.window && (next === "READY" || next === "TRANSIENT_FAILURE" || next === "SHUTDOWN")) {
    answered(b, slot)
    if (out.tracing) out.log(() => `${slot.key}: the replacement answered ${next}; ${b.awaiting} still awaited`)
  }
  // A fresh connection for the picks that waited for one.
  if (slot.connected && !wasConnected && b.queued && b.redirecting) out.republish = true
  if (next === "READY" && address.suspectUntil !== 0) {
    // The address answers new connections: its other connections are fine.
    clearSuspicion(b, address)
    if (out.tracing) out.log(() => `${address.address}: reconnected; siblings used again`)
  }
  if (next === "IDLE") {
    // Keep every slot connected, as grpc-js's round_robin does (it connects an IDLE child at once);
    // grpc-js applies its backoff between attempts. So no slot waits for the channel's exitIdle.
    out.pushConnect(slot.id)
  }
}

/** A fresh connection is at most 1 / FRESH_SHARE as old as the one that ended (see the module doc). */
const FRESH_SHARE = 3

/**
 * `slot`'s connection ended with calls in flight: the next picks of this
 * turn, as many as it carried calls (grpc-js retries the refused ones at
 * once), go to connections opened at most a third of its life ago; the
 * window (that threshold, for calls that wait) lasts until its replacement
 * answers.
 */
const redirectRetries = (b: BalancerImpl, slot: Slot, out: Out): void => {
  const life = b.now - slot.openedAt
  const after = b.now - life / FRESH_SHARE
  if (after > b.freshAfter) b.freshAfter = after
  b.redirecting = true
  b.redirect += slot.inFlight
  if (slot.awaitedIn !== b.window) {
    slot.awaitedIn = b.window
    b.awaiting++
  }
  pushDeadline(b, { at: b.now + b.options.replacementWaitMs, kind: "redirect", address: undefined, gen: ++b.redirectGen })
  if (out.tracing) {
    out.log(() => `${slot.key} ended after ${Math.round(life)} ms with ${slot.inFlight} call(s) in flight: the next ${b.redirect} pick(s) go to connections opened at most ${Math.round(b.now - b.freshAfter)} ms ago (or wait for one) until its replacement answers`)
  }
}

/** `slot`'s replacement answered (or it was removed): the window ends at the next wake-up once none is awaited. */
const answered = (b: BalancerImpl, slot: Slot): void => {
  slot.awaitedIn = 0
  b.awaiting--
  // The next wake-up, not now: the picks that waited are placed on the new connection first.
  if (b.awaiting === 0 && b.redirecting) pushDeadline(b, { at: b.now, kind: "settled", address: undefined, gen: b.redirectGen })
}

/** The redirection window ends: picks go their own way again (those that waited are placed again). */
const endRedirect = (b: BalancerImpl, out: Out, why: string): void => {
  const left = b.redirect
  b.redirecting = false
  b.redirect = 0
  b.replay = 0
  b.freshAfter = Number.NEGATIVE_INFINITY
  b.awaiting = 0
  b.window++
  b.redirectGen++
  if (b.queued) out.republish = true
  if (out.tracing) out.log(() => `retries no longer redirected (${why}; ${left} pick(s) of the turn not redirected)`)
}

const clearSuspicion = (b: BalancerImpl, address: AddressState): void => {
  address.suspectUntil = 0
  address.suspicionGen++
  for (const sibling of address.slots) {
    b.work++
    if (sibling.suspect) {
      sibling.suspect = false
      refresh(b, sibling)
    }
  }
}

const onTimer = (b: BalancerImpl, out: Out): void => {
  const expired = new Set<AddressState>()
  let shrunk = false
  for (;;) {
    // Stale heads are dropped by earliest: the head it returns is live.
    const queue = earliest(b)
    if (queue === undefined || queue.items[queue.head]!.at > b.now) break
    const d = queue.items[queue.head++]!
    switch (d.kind) {
      case "start":
        b.serving = true
        if (out.tracing) out.log(() => `start: waited ${b.options.startWaitMs} ms (${b.unsettled} first attempt(s) unsettled); serving`)
        break
      case "redirect":
        endRedirect(b, out, `no answer within ${b.options.replacementWaitMs} ms`)
        break
      case "settled":
        endRedirect(b, out, "every replacement answered")
        break
      case "suspicion":
        clearSuspicion(b, d.address!)
        if (out.tracing) out.log(() => `${d.address!.address}: suspicion lapsed`)
        break
      case "retention":
        d.address!.retainedUntil = 0
        expired.add(d.address!)
        if (out.tracing) out.log(() => `${d.address!.address}: removal grace over; removed`)
        break
      case "shrink": {
        const address = d.address!
        address.shrinkAt = 0
        if (address.count <= address.min) break
        const last = address.slots[address.count - 1]
        // Busy: calls in flight went over what one connection fewer carries during the period, or are now.
        if (address.busy || address.inFlight > (address.count - 1) * b.options.maxStreamsPerConnection) {
          if (out.tracing) out.log(() => `${address.address}: busy in the last ${b.options.shrinkIdleMs} ms; keeping ${address.count} connections`)
        } else if (last !== undefined && last.inFlight > 0) {
          if (out.tracing) out.log(() => `${address.address}: connection ${address.count} still carries ${last.inFlight} call(s); keeping it`)
        } else {
          address.count--
          shrunk = true
          if (out.tracing) out.log(() => `${address.address}: not busy for ${b.options.shrinkIdleMs} ms; closing connection ${address.count + 1} (${address.count} left, at least ${address.min})`)
        }
        armShrink(b, address)
        break
      }
    }
  }
  compact(b)
  if (shrunk && expired.size === 0) rebuildRing(b, currentCounts(b), out, 0)
  if (expired.size > 0) {
    const rest: Array<Wanted> = []
    for (const address of b.addresses.values()) {
      if (!expired.has(address)) rest.push({ address: address.address, count: address.count, min: address.min, max: address.max })
    }
    rebuildRing(b, rest, out, 0)
    if (b.ring.length === 0) b.emptyReason = `anchor_round_robin: no addresses for ${b.target}${b.note ? ` (${b.note})` : ""}`
  }
}

const onAddresses = (b: BalancerImpl, event: Extract<Event, { _tag: "Addresses" }>, out: Out): void => {
  // Merge duplicates (counts and maxima added), first-appearance order.
  const merged = new Map<string, number>()
  const maxima = new Map<string, number>()
  for (const endpoint of event.endpoints) {
    if (!Number.isSafeInteger(endpoint.count) || endpoint.count < 0) {
      throw new RangeError(`the count of ${endpoint.address} must be a whole number >= 0, got ${endpoint.count}`)
    }
    const maxCount = endpoint.maxCount ?? endpoint.count
    if (!Number.isSafeInteger(maxCount) || maxCount < endpoint.count) {
      throw new RangeError(`the maxCount of ${endpoint.address} must be a whole number >= its count ${endpoint.count}, got ${maxCount}`)
    }
    if (endpoint.count > 0) {
      merged.set(endpoint.address, (merged.get(endpoint.address) ?? 0) + endpoint.count)
      maxima.set(endpoint.address, (maxima.get(endpoint.address) ?? 0) + maxCount)
    }
  }
  let total = 0
  for (const count of merged.values()) total += count
  const max = b.options.maxConnections
  if (total > max) {
    if (event.overCap === "fail") {
      // A refused list changes nothing (target, note, pick mode, seed): the last list keeps serving.
      const error = new ConnectionCapError({ total, max })
      if (out.tracing) out.log(() => `refused: ${error.message}`)
      if (b.ring.length === 0) b.emptyReason = `anchor_round_robin: ${event.target}: ${error.message}`
      return
    }
    const kept = new Map<string, number>()
    const dropped: Array<string> = []
    let used = 0
    for (const address of [...merged.keys()].sort()) {
      const count = merged.get(address)!
      if (dropped.length === 0 && used + count <= max) {
        kept.set(address, count)
        used += count
      } else dropped.push(address)
    }
    if (out.tracing) out.log(() => `over the cap of ${max} connections (${total} asked): kept ${kept.size} addresses in address order, left out ${dropped.length}: ${dropped.slice(0, 20).join(",")}${dropped.length > 20 ? ",..." : ""}`)
    merged.clear()
    // Keep the resolver's order among the kept ones.
    for (const endpoint of event.endpoints) {
      const count = kept.get(endpoint.address)
      if (count !== undefined && !merged.has(endpoint.address)) merged.set(endpoint.address, count)
    }
  }

  b.target = event.target
  b.note = event.note ?? ""
  const mode = event.pick ?? b.options.pickMode
  if (mode !== b.pickMode) {
    if (out.tracing) out.log(() => `pick mode ${b.pickMode} -> ${mode}`)
    b.pickMode = mode
  }
  if (!b.seeded) {
    b.seeded = true
    // xorshift32 must not start at 0.
    b.rng = (mod(event.offset, 4294967296) ^ 0x9e3779b9) >>> 0 || 1
  }

  // Mass-removal grace: READY addresses the update would drop.
  let readyAddresses = 0
  let alreadyRetained = 0
  const newlyRemoved: Array<AddressState> = []
  for (const address of b.addresses.values()) {
    if (merged.has(address.address)) {
      address.retainedUntil = 0
      if (address.connected > 0) readyAddresses++
      continue
    }
    if (address.connected === 0) continue
    readyAddresses++
    if (address.retainedUntil !== 0) alreadyRetained++
    else newlyRemoved.push(address)
  }
  const removing = newlyRemoved.length + alreadyRetained
  const grace = b.options.removalGraceMs > 0 && newlyRemoved.length > 0 &&
    removing > b.options.removalThreshold * readyAddresses
  if (grace) {
    const until = b.now + b.options.removalGraceMs
    for (const address of newlyRemoved) {
      address.retainedUntil = until
      pushDeadline(b, { at: until, kind: "retention", address, gen: 0 })
    }
    if (out.tracing) out.log(() => `mass removal: the update drops ${removing} of ${readyAddresses} addresses with READY connections; keeping ${newlyRemoved.map((a) => a.address).join(",")} for ${b.options.removalGraceMs} ms`)
  }
  const next: Array<Wanted> = []
  for (const [address, min] of merged) {
    const max = maxima.get(address)!
    const existing = b.addresses.get(address)
    // An adaptive address keeps the connections it grew to (re-resolution repeats the same list).
    const count = existing === undefined ? min : Math.min(max, Math.max(min, existing.count))
    next.push({ address, count, min, max })
  }
  for (const address of b.addresses.values()) {
    if (!merged.has(address.address) && address.retainedUntil !== 0) {
      next.push({ address: address.address, count: address.count, min: address.min, max: address.max })
    }
  }
  let wanted = 0
  for (const w of next) wanted += w.count
  if (wanted > max) {
    // Grown connections kept over a new list must not take the pool over its cap: back to the minimums.
    for (let i = 0; i < next.length; i++) next[i] = { ...next[i]!, count: next[i]!.min }
    wanted = 0
    for (const w of next) wanted += w.count
  }
  if (wanted > max) {
    // Still over: the listed ones fit by themselves (trimmed above), so the addresses kept by the
    // grace give way, keeping in ascending address order those that still fit. The list comes
    // first: it is what serves after the grace (nothing would bring back an address left out of it
    // when the grace ends), and an update that needs the room brings new backends, i.e. a
    // replacement whose old servers are going away, not the lease loss the grace is for.
    const keptByGrace = next.splice(merged.size)
    let used = wanted
    for (const w of keptByGrace) used -= w.count
    const fits = new Set<string>()
    const released: Array<string> = []
    for (const w of [...keptByGrace].sort((x, y) => (x.address < y.address ? -1 : 1))) {
      if (used + w.count <= max) {
        fits.add(w.address)
        used += w.count
      } else released.push(w.address)
    }
    for (const w of keptByGrace) if (fits.has(w.address)) next.push(w)
    if (out.tracing) out.log(() => `over the cap of ${max} connections with the addresses kept by the grace: released now ${released.join(",")}`)
  }
  rebuildRing(b, next, out, event.offset)
  for (const address of b.addresses.values()) armShrink(b, address)
  if (b.ring.length === 0) {
    b.emptyReason = `anchor_round_robin: no addresses for ${b.target}${b.note ? ` (${b.note})` : ""}`
    b.lastError = b.emptyReason
  } else {
    b.emptyReason = null
    if (!b.serving && b.startDeadline === 0) {
      if (b.options.startWaitMs <= 0) b.serving = true
      else {
        b.startDeadline = b.now + b.options.startWaitMs
        pushDeadline(b, { at: b.startDeadline, kind: "start", address: undefined, gen: 0 })
      }
    }
  }
}

/** An address's current count and its range, as the ring is built from. */
interface Wanted {
  readonly address: string
  readonly count: number
  readonly min: number
  readonly max: number
}

/** Builds the ring for `weighted` (merged, counts > 0), diffing slots by key. O(n log n). */
const rebuildRing = (b: BalancerImpl, weighted: ReadonlyArray<Wanted>, out: Out, offset: number): void => {
  const order = Rotation.slotOrder(weighted)
  const oldRing = b.ring
  const current = oldRing[b.cursor]
  const wanted = new Map<string, number>()
  for (const w of weighted) wanted.set(w.address, w.count)

  // Release removed slots and addresses.
  for (const [name, address] of b.addresses) {
    const count = wanted.get(name) ?? 0
    while (address.slots.length > count) {
      const slot = address.slots.pop()!
      forget(b, slot)
      out.pushRemove(slot.id)
      if (out.tracing) out.log(() => `release ${slot.key}`)
    }
    if (count === 0) b.addresses.delete(name)
    else address.count = count
  }
  const ring: Array<Slot> = new Array(order.length)
  const startPhase = !b.serving
  for (let p = 0; p < order.length; p++) {
    const key = order[p]!
    let address = b.addresses.get(key.address)
    if (address === undefined) {
      address = new AddressState(key.address, wanted.get(key.address)!)
      b.addresses.set(key.address, address)
    }
    let slot = address.slots[key.index]
    if (slot === undefined) {
      // Slots of an address are created in index order (the order lists each address's indices ascending).
      slot = new Slot(b.freeIds.pop() ?? b.byId.length, address, key.index, `${key.address}#${key.index}`)
      address.slots[key.index] = slot
      b.byId[slot.id] = slot
      b.nConnecting++
      if (startPhase) {
        slot.inStart = true
        b.unsettled++
      }
      out.pushCreate({ id: slot.id, address: key.address, index: key.index })
      out.pushConnect(slot.id)
      if (out.tracing) out.log(() => `create ${slot!.key}`)
    }
    slot.pos = p
    ring[p] = slot
  }
  for (const w of weighted) {
    const address = b.addresses.get(w.address)!
    address.min = w.min
    address.max = w.max
  }
  b.ring = ring
  b.total = ring.length
  b.connectedBits = new Bits(ring.length)
  b.pickableBits = new Bits(ring.length)
  let pickable = 0
  let connected = 0
  b.pickableList = []
  b.connectedList = []
  for (const slot of ring) {
    slot.cIdx = -1
    slot.pIdx = -1
    if (slot.connected) {
      connected++
      b.connectedBits.add(slot.pos, b)
      slot.cIdx = listAdd(b.connectedList, slot, -1)
    }
    if (slot.pickable) {
      pickable++
      b.pickableBits.add(slot.pos, b)
      slot.pIdx = listAdd(b.pickableList, slot, -1)
    }
  }
  b.nConnected = connected
  b.nPickable = pickable
  // The round robin continues at the slot it would have tried next.
  if (oldRing.length === 0) {
    b.cursor = ring.length === 0 ? 0 : mod(offset, ring.length)
  } else if (current !== undefined && b.byId[current.id] === current) {
    b.cursor = current.pos
  } else {
    b.cursor = ring.length === 0 ? 0 : b.cursor % ring.length
  }
}

const mod = (a: number, n: number): number => {
  const r = Number.isFinite(a) ? Math.trunc(a) % n : 0
  return r < 0 ? r + n : r
}
