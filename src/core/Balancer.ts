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
 * - **Picks, `ewma`** (since 0.3.0). Power of two choices as
 *   `least_request` (same draws, same pending picks), but the cost is a
 *   peak-EWMA latency estimate x (calls in flight + 1), as Finagle's and
 *   linkerd's peak EWMA and go-zero's p2c_ewma: a backend that is slow
 *   but accepts any number of calls holds more calls, not fewer picks, so
 *   counting calls says little; latency says it. The estimate (see
 *   `balancer/ewma.ts`): a call slower than it replaces it, faster ones
 *   blend in by the time since the previous sample (at least 1/16), it
 *   decays toward 0 while the connection gets no calls (time constant
 *   `ewmaDecayMs`, 10 s: the way back), a connection without an answered
 *   call yet costs a penalty (the pool's typical latency, 100 ms before any
 *   sample, raised by the age of its waiting call up to 4x), one sample
 *   counts at most 4 x max(estimate, typical), and a call that ended
 *   unanswered counts as that slowest sample, only to raise it. Samples come
 *   from {@link callEnded}'s `latencyMs` (the policy allocates one small
 *   pick result per call in this mode to remember its start: grpc-js's
 *   trackers carry no call identity; deriving latency from calls in flight
 *   over time instead (Little's law) gives per-answer samples whose spread
 *   equals their mean, which a peak estimator turns into its worst one).
 *   Every connection is a candidate: at equal latency an address's share
 *   follows its count.
 * - **Hung connections** (since 0.3.0, every mode, on unless `hungAfterMs`
 *   is 0). A connection takes no new call when, of the calls started on it
 *   since it last answered one (`callEnded` with `answered`), the second has
 *   waited the threshold T = max(`hungAfterMs` (1 s), 8 x the mean latency
 *   of the other address that answered last, by Little's law), a later one
 *   started at least T/2 after the second, and another address answered a
 *   call after the second started. Checked on the slots a pick lands on
 *   (O(1); a connection found hung is skipped and the pick goes on). Long
 *   streams do not trip it: a lone stream is one call, streams opened back
 *   to back start together, and a unary call placed on the connection
 *   meanwhile is answered and resets its count. It comes back at its next
 *   answer; while it has no call in flight (or once avoided 10
 *   `hungAfterMs`), every `hungAfterMs` a probe round gives it the next
 *   picks: 1, then 2, ... up to 8 while none is answered or ends
 *   unanswered (which starts them over at 1), so a connection avoided
 *   wrongly because it got only streams gets a unary call within a few
 *   rounds. While it is not connected (health false) its probes stop; they
 *   resume `hungAfterMs` after it is connected again. Readiness fallback as
 *   for suspicion. Counted ({@link avoidances}, `SlotView.avoided`) and
 *   traced (lines returned by {@link settlePicks}).
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
 *   keeps its grown count within its new range; one kept only by the
 *   mass-removal grace (below) does not grow. Extra connections are
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
import * as Schema from "effect/Schema"
import { SETTINGS } from "./balancer/config.js"
import { defaultOptions, type Options } from "./balancer/options.js"
import { type Balancer, BalancerImpl } from "./balancer/state.js"

// The machine lives in ./balancer/, one concern a file: options (the
// machine's options, defaults and channel option names), config (the settings, their Schemas and
// precedence), cap (the cap check), listing (a resolver's answer as an
// Addresses event), events (inputs and outputs), bits
// (the bitset), deadlines (the wake-up queues), state (the pool), slots (the
// counters), picking, leastRequest and ewma (picks), hung (the hung rule), adaptive (call accounting,
// grow and shrink), replacement (retries after a connection ends),
// admission (a new list: trim, cap, grace), ring (its rebuild), step (the
// events), view (reads). This facade is the public API.

export {
  DEFAULT_EWMA_DECAY_MS,
  DEFAULT_HUNG_AFTER_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_STREAMS_PER_CONNECTION,
  DEFAULT_REMOVAL_GRACE_MS,
  DEFAULT_REPLACEMENT_WAIT_MS,
  DEFAULT_SHRINK_IDLE_MS,
  DEFAULT_START_WAIT_MS,
  defaultOptions,
  EWMA_DECAY_MS_OPTION,
  HUNG_AFTER_MS_OPTION,
  MAX_CONNECTIONS_OPTION,
  MAX_STREAMS_PER_CONNECTION_OPTION,
  type Options,
  PICK_MODES,
  type PickMode,
  REMOVAL_GRACE_MS_OPTION,
  SHRINK_IDLE_MS_OPTION,
  START_WAIT_MS_OPTION,
  SUSPICION_MS
} from "./balancer/options.js"
export {
  decodeConfig,
  decodeConfigUnsafe,
  decodeSettings,
  defaultSettings,
  optionsOf,
  type PolicyConfig,
  PolicyConfigError,
  PolicyConfigJson,
  SETTINGS,
  SettingError,
  type Settings,
  SettingsInput
} from "./balancer/config.js"
export { checkCap, checkCapUnsafe, ConnectionCapError } from "./balancer/cap.js"
export { DEFAULT_OVER_CAP, type Hints, type Listing, listing, type OverCap } from "./balancer/listing.js"
export type { ChannelState, ConnectionState, Event, NewSlot, Output } from "./balancer/events.js"
export { type Balancer, TypeId } from "./balancer/state.js"
export { pick, settlePicks } from "./balancer/picking.js"
export { callEnded, callStarted } from "./balancer/adaptive.js"
export {
  type AddressMetrics,
  avoidances,
  failureMessage,
  hasAddress,
  metrics,
  pickMode,
  type PoolMetrics,
  type SlotView,
  slots,
  state,
  work
} from "./balancer/view.js"
export { step } from "./balancer/step.js"

/**
 * A balancer with no slots; `options` override {@link defaultOptions}.
 *
 * @throws RangeError when an option is out of range (a defect in the caller;
 * decode outside input with {@link decodeConfig} first).
 *
 * @category constructors
 * @since 0.2.0
 */
export const make = (options: Partial<Options> = {}): Balancer => {
  const merged: Options = { ...defaultOptions, ...options }
  const check = (name: keyof Options, ok: boolean) => {
    if (!ok) throw new RangeError(`Balancer option ${name} is out of range: ${String(merged[name])}`)
  }
  // The settings' ranges are their Schemas' (one source of truth with decodeSettings).
  for (const name of ["startWaitMs", "maxConnections", "removalGraceMs", "pickMode", "maxStreamsPerConnection", "shrinkIdleMs", "hungAfterMs", "ewmaDecayMs"] as const) {
    check(name, Schema.is(SETTINGS[name].schema as Schema.Top)(merged[name]))
  }
  check("removalThreshold", merged.removalThreshold >= 0 && merged.removalThreshold <= 1)
  check("suspicionMs", Number.isFinite(merged.suspicionMs) && merged.suspicionMs >= 0)
  check("replacementWaitMs", Number.isFinite(merged.replacementWaitMs) && merged.replacementWaitMs >= 0)
  return new BalancerImpl(merged)
}
