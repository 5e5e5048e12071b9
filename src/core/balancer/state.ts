/** The machine's state: addresses, slots, the pool, and the per-step output scratch. */
import { Bits, type Counter } from "./bits.js"
import type { Options, PickMode } from "./options.js"
import { DeadlineQueue } from "./deadlines.js"
import type { ChannelState, ConnectionState, NewSlot } from "./events.js"

/** A slot's state as the channel rollup counts it. */
export type Eff = 0 | 1 | 2
export const Eff = { Connecting: 0, Ready: 1, Failed: 2 } as const

export class AddressState {
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
  /**
   * The hung rule's view of the address's latency (Little's law, no call
   * identity needed): `area` integrates calls in flight over time (ms x
   * calls) up to `areaAt`; each answer's sample is the area since the
   * previous answer (`areaMark`), and `latency` averages the samples (ms;
   * 0: no answer yet).
   */
  area = 0
  areaAt = 0
  areaMark = 0
  latency = 0
  /** When the grace began to keep it (`now` of that update); meaningful while `retainedUntil` is set. */
  retainedSince = 0
  /** Connections opened by adaptive growth, and closed by the shrink check, since the address joined the pool (metrics). */
  grown = 0
  shrunk = 0
  constructor(readonly address: string, public count: number) {
    this.min = count
    this.max = count
  }
}

export class Slot {
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
  /** least_request and ewma picks of this slot not yet started (see {@link settlePicks}). */
  pending = 0
  /** Hung rule: calls started since its last answer, when the second of them started, when the latest did. */
  waiting = 0
  /** When the first of the calls started since its last answer started (`ewma`'s penalty of an unmeasured connection). */
  firstFrom = 0
  secondFrom = 0
  lastStart = 0
  /** Avoided by the hung rule (not pickable) until one of its calls is answered; since then. */
  hung = false
  hungSince = 0
  /** Times the hung rule avoided it (a counter for metrics). */
  avoided = 0
  /** Hung: calls its next probe round lets through (1, 2, ... up to `HUNG_PROBE_BURST`), and those left of the current round. */
  probeBurst = 1
  probeLeft = 0
  /** Generation of its pending probe (see `hung.ts`): stale probes do nothing. */
  probeGen = 0
  /** ewma: the peak-EWMA latency estimate (ms) as of `ewmaAt`; it decays toward 0 from then on. */
  ewma = 0
  ewmaAt = 0
  /** ewma: an answered call measured it since it became READY (else it costs the penalty, see `ewma.ts`). */
  sampled = false
  /** Index in the dense list of pickable (pIdx) / connected (cIdx) slots; -1: not in it. */
  pIdx = -1
  cIdx = -1
  constructor(readonly id: number, readonly address: AddressState, readonly index: number, readonly key: string) {}
}

/**
 * One channel's pool. Opaque: create with {@link make}, drive with
 * {@link step}, read with {@link pick}, {@link state}, {@link slots}.
 *
 * @category models
 * @since 0.2.0
 */
export interface Balancer {
  readonly [TypeId]: typeof TypeId
}

/**
 * Brands {@link Balancer} values.
 *
 * @category symbols
 * @since 0.2.0
 */
export const TypeId: unique symbol = Symbol.for("grpc-anchor/Balancer")

export class BalancerImpl implements Balancer, Counter {
  readonly [TypeId]: typeof TypeId = TypeId
  work = 0
  now = Number.NEGATIVE_INFINITY
  /** Ids of removed slots, reused so `byId` stays dense under churn. */
  freeIds: Array<number> = []
  target = "(unknown target)"
  /** An address list was accepted (`target` is the resolver's). */
  listed = false
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
  /** The two most recent answers from distinct addresses: the latest (1) and the latest of another address (2). */
  answer1At = Number.NEGATIVE_INFINITY
  answer1: AddressState | undefined = undefined
  answer2At = Number.NEGATIVE_INFINITY
  answer2: AddressState | undefined = undefined
  /** Slots avoided by the hung rule now, and their probes: a FIFO in time order (fixed delay). */
  nHung = 0
  probes: Array<{ readonly slot: Slot; readonly at: number; readonly gen: number }> = []
  probeHead = 0
  /** The hung slot whose probe round is under way (its `probeLeft` more picks), if any. */
  probing: Slot | undefined = undefined
  /** Times the hung rule avoided a connection, over the balancer's life. */
  avoidances = 0
  /** ewma: the pool's typical call latency (ms, a time-weighted average of the samples; 0: none yet) as of `typicalAt`. */
  typical = 0
  typicalAt = 0
  /** Trace lines of picks and call ends (they have no output): taken by {@link settlePicks}. */
  notes: Array<string> = []
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
  /** Addresses of the last accepted list left out by the cap (metrics). */
  trimmed = 0
  constructor(readonly options: Options) {
    this.pickMode = options.pickMode
  }
}

/** Shared by every output that has nothing in a list; frozen, never pushed to. */
export const NONE = Object.freeze([]) as unknown as Array<never>

/** Per-step scratch, turned into the {@link Output}; arrays are allocated on first use (most events fill none). */
export class Out {
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

export const impl = (b: Balancer): BalancerImpl => b as BalancerImpl

export const slotOf = (b: BalancerImpl, id: number): Slot | undefined =>
  Number.isInteger(id) && id > 0 ? b.byId[id] : undefined

export const mod = (a: number, n: number): number => {
  const r = Number.isFinite(a) ? Math.trunc(a) % n : 0
  return r < 0 ? r + n : r
}
