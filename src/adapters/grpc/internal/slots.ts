/**
 * The policy's per-slot objects: a slot's subchannel with its listeners and
 * its prebuilt pick result, the one picker, and the state names shared with
 * the core. Internal.
 */
import { connectivityState as ConnectivityState, experimental, Metadata, status as Status } from "@grpc/grpc-js"
import * as Address from "../../../core/Address.js"
import * as Balancer from "../../../core/Balancer.js"

const { PickResultType } = experimental

/** grpc-js's connectivity states by the core's names. */
export const STATES: Record<ConnectivityState, Balancer.ConnectionState> = {
  [ConnectivityState.IDLE]: "IDLE",
  [ConnectivityState.CONNECTING]: "CONNECTING",
  [ConnectivityState.READY]: "READY",
  [ConnectivityState.TRANSIENT_FAILURE]: "TRANSIENT_FAILURE",
  [ConnectivityState.SHUTDOWN]: "SHUTDOWN"
}

/** The core's channel states as grpc-js's. */
export const CHANNEL_STATES: Record<Balancer.ChannelState, ConnectivityState> = {
  CONNECTING: ConnectivityState.CONNECTING,
  READY: ConnectivityState.READY,
  TRANSIENT_FAILURE: ConnectivityState.TRANSIENT_FAILURE
}

/** The core's key of a grpc-js address (`Address.format` text, or `unix:PATH`). */
export const subchannelAddressKey = (address: experimental.SubchannelAddress): string =>
  "host" in address ? Address.format({ host: address.host, port: address.port }) : `unix:${address.path}`

/** What a slot and the picker need from the policy. */
export interface Owner {
  readonly balancer: Balancer.Balancer | undefined
  readonly entries: ReadonlyArray<SlotEntry | undefined>
  /** least_request or ewma: picks count as in flight until their call starts or the turn ends. */
  readonly loadAware: boolean
  /** ewma: each pick carries its own trackers (its call's start time). */
  readonly ewma: boolean
  /** Calls read the clock: the hung rule is on or the mode is ewma (else the balancer keeps its latest time). */
  readonly timed: boolean
  /** Trace lines are on: the turn is ended after picks and call ends, to write them. */
  readonly tracing: boolean
  /** The clock of the balancer's events and the call trackers. */
  readonly now: () => number
  readonly settleScheduled: boolean
  scheduleSettle(): void
  callsWaiting(): void
  onStateChange(entry: SlotEntry, state: ConnectivityState, errorMessage: string | undefined): void
  onHealthChange(entry: SlotEntry, healthy: boolean): void
}

/**
 * Statuses a client makes up when the server did not answer (its deadline
 * passed, it cancelled, the connection failed): a call that ends with one
 * is not an answer for the hung rule.
 */
const answered = (code: Status): boolean =>
  code !== Status.DEADLINE_EXCEEDED && code !== Status.CANCELLED && code !== Status.UNAVAILABLE

/** One connection slot and the subchannel that carries it. */
export class SlotEntry {
  /** No longer one of the policy's slots: its events are ignored. */
  released = false
  picked = 0
  readonly onCallStarted = () => {
    this.started(this.owner.timed ? this.owner.now() : undefined)
  }
  readonly onCallEnded = (code: Status) => {
    this.ended(code, this.owner.timed ? this.owner.now() : undefined, undefined)
  }
  started(now: number | undefined): void {
    // A released slot's id may already name another slot: its calls are not the balancer's any more.
    if (!this.released) {
      const balancer = this.owner.balancer
      if (balancer !== undefined && Balancer.callStarted(balancer, this.id, now)) this.owner.callsWaiting()
    }
  }
  ended(code: Status, now: number | undefined, latencyMs: number | undefined): void {
    if (!this.released) {
      const balancer = this.owner.balancer
      if (balancer !== undefined) {
        Balancer.callEnded(balancer, this.id, now, answered(code), latencyMs)
        if (this.owner.tracing && !this.owner.settleScheduled) this.owner.scheduleSettle()
      }
    }
  }
  readonly onState: experimental.ConnectivityStateListener
  readonly onHealth: experimental.HealthListener
  /** Built once: grpc-js only reads pick results, and this is the hot path. */
  readonly pickResult: experimental.PickResult

  constructor(
    readonly id: number,
    /** Its address's key (for metrics: picks per address). */
    readonly address: string,
    readonly subchannel: experimental.SubchannelInterface,
    private readonly owner: Owner
  ) {
    this.onState = (_subchannel, _previous, next, _keepalive, errorMessage) => owner.onStateChange(this, next, errorMessage)
    this.onHealth = (healthy) => owner.onHealthChange(this, healthy)
    this.pickResult = {
      pickResultType: PickResultType.COMPLETE,
      subchannel,
      status: null,
      onCallStarted: this.onCallStarted,
      onCallEnded: this.onCallEnded
    }
  }
}

/** An `ewma` pick: its own trackers, which remember when the call started (the latency sample). */
const timedPick = (entry: SlotEntry, now: () => number): experimental.PickResult => {
  let startedAt = Number.NaN
  return {
    pickResultType: PickResultType.COMPLETE,
    subchannel: entry.subchannel,
    status: null,
    onCallStarted: () => {
      startedAt = now()
      entry.started(startedAt)
    },
    onCallEnded: (code: Status) => {
      const at = now()
      entry.ended(code, at, at - startedAt)
    }
  }
}

const QUEUE: experimental.PickResult = { pickResultType: PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null }

/**
 * The one picker of a policy instance: it reads the live balancer, so it
 * never picks a released slot and needs no replacement when readiness
 * changes. Not READY: calls queue while CONNECTING and fail with the
 * balancer's failure message (target and last error) in TRANSIENT_FAILURE
 * (grpc-js queues them instead when they ask for `waitForReady`). READY: a
 * call also queues while the balancer waits for a fresh connection to place
 * the retries of a connection that just ended on; the balancer then
 * publishes the state again, and grpc-js picks the queued calls again.
 */
export class AnchorPicker implements experimental.Picker {
  constructor(private readonly owner: Owner) {}

  pick(): experimental.PickResult {
    const owner = this.owner
    const balancer = owner.balancer
    if (balancer === undefined) return QUEUE
    // No clock read here: the balancer's time is that of the latest call start or end (fresh
    // under load; picks find hung connections and probes a little later when calls are rare).
    const id = Balancer.pick(balancer)
    if (id >= 0) {
      const entry = owner.entries[id]!
      entry.picked++
      // A load-aware pick counts as in flight until its call starts, at most until the turn ends.
      if ((owner.loadAware || owner.tracing) && !owner.settleScheduled) owner.scheduleSettle()
      return owner.ewma ? timedPick(entry, owner.now) : entry.pickResult
    }
    if (Balancer.state(balancer) !== "TRANSIENT_FAILURE") return QUEUE
    return {
      pickResultType: PickResultType.TRANSIENT_FAILURE,
      subchannel: null,
      status: { code: Status.UNAVAILABLE, details: Balancer.failureMessage(balancer), metadata: new Metadata() },
      onCallStarted: null,
      onCallEnded: null
    }
  }
}
