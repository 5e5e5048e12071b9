/**
 * The `anchor_round_robin` load balancer that grpc-js creates per channel
 * (and again after the channel leaves IDLE); `AnchorRoundRobin.setup`
 * registers it. Every decision lives in the pure core's `Balancer`: this
 * class only forwards grpc-js events to it (with the time) and applies what
 * it answers: subchannels to create, release or connect, the channel state
 * to publish, one timer, trace lines. What stays here is event-loop
 * mechanics the core cannot see: where a turn ends (for
 * `Balancer.settlePicks`), and how many grpc-js subchannels to open per turn
 * (see {@link OPENINGS_PER_TURN}). Its slots and picker are in `slots.ts`,
 * the pacing of openings in `pacer.ts`.
 *
 * Calls are counted through each pick's `onCallStarted` / `onCallEnded`
 * (O(1) each), with the time (`performance.now()`, read twice per call while the hung rule is on or in `ewma` mode)
 * and, at the end, whether the server answered (the hung rule). In `ewma`
 * mode each pick returns its own small result that remembers when its call
 * started, so the end gives the call's latency: one allocation per call,
 * in that mode only (grpc-js's trackers carry no call identity; the other
 * modes share one result per connection and allocate nothing).
 *
 * Internal: not exported from the package (tests and benchmarks construct it
 * from this path).
 */
import {
  connectivityState as ConnectivityState,
  experimental,
  logVerbosity,
  type ChannelOptions
} from "@grpc/grpc-js"
import * as Result from "effect/Result"
import * as Balancer from "../../../core/Balancer.js"
import type * as Expansion from "../../../core/Expansion.js"
import type { ConnectionStats } from "../Stats.js"
import { AnchorRoundRobinConfig } from "./config.js"
import { isResolution, POLICY_NAME, RESOLUTION_KEY, SLOT_KEY, SSL_TARGET_NAME_OVERRIDE, STATS_KEY, type Resolution, type SubsetState } from "./keys.js"
import { Pacer } from "./pacer.js"
import { AnchorPicker, CHANNEL_STATES, type Owner, SlotEntry, STATES, subchannelAddressKey } from "./slots.js"
import { type PoolSample, type PoolSource, type StatsSink, type StatsSource, track, untrack } from "./stats.js"

type ChannelControlHelper = experimental.ChannelControlHelper
type Endpoint = experimental.Endpoint
type SubchannelAddress = experimental.SubchannelAddress
const TRACING = (() => {
  const wanted = (process.env.GRPC_TRACE ?? "").split(",").map((s) => s.trim())
  return (wanted.includes(POLICY_NAME) || wanted.includes("all")) && !wanted.includes(`-${POLICY_NAME}`)
})()

const trace = (line: string): void => experimental.trace(logVerbosity.DEBUG, POLICY_NAME, line)

/**
 * Subchannels created plus connections started per event-loop turn, at most.
 * Not a decision of the pool (the core says which connections to open, and
 * every one of them is opened): it paces grpc-js calls over event-loop
 * turns, which only the adapter has. Each costs grpc-js up to ~1 ms (its
 * subchannel pool compares options with every subchannel of the address; a
 * connect opens a socket), so a pool of thousands is opened (and
 * reconnected after a backoff wave) over many turns instead of stalling
 * the event loop for seconds. Pools up to this size open synchronously.
 */
const OPENINGS_PER_TURN = 16
/**
 * The load balancer of one channel. The members `Owner` lists (the
 * balancer, the slots, the pick-mode flags, the event callbacks) are for its
 * slots and picker.
 */
export class AnchorRoundRobinLoadBalancer implements experimental.LoadBalancer, StatsSource, Owner {
  /** Created on the first address list, with the config and options it brings. */
  balancer: Balancer.Balancer | undefined
  /** Live slots by the balancer's ids (dense: the balancer reuses ids). */
  readonly entries: Array<SlotEntry | undefined> = []
  private readonly picker = new AnchorPicker(this)
  private sink: StatsSink | undefined
  private destroyed = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private timerAt = Number.NaN
  /** Slots to open and connections to start, paced by {@link OPENINGS_PER_TURN}. */
  private readonly pacer = new Pacer(OPENINGS_PER_TURN, (slot) => this.open(slot), (id) => this.connect(id))
  private growScheduled = false
  /** What `open` needs per address of the pool: grpc-js's address, and the subchannel arguments. */
  private readonly addresses = new Map<string, SubchannelAddress>()
  private subchannelArgs: (address: SubchannelAddress, slot: Expansion.Slot) => ChannelOptions = () => ({})
  private readonly random: () => number
  /** The clock of the balancer's events and the call trackers. */
  readonly now: () => number
  /** Picks of released connections, per address still in the pool (metrics: picks only go up). */
  private readonly releasedPicks = new Map<string, number>()
  /** The last resolution's subset (metrics). */
  private subset: SubsetState | undefined
  /** This policy in the registry of live policies (metrics read it at collection time). */
  private readonly source: PoolSource = { sample: () => this.sample() }

  constructor(
    private readonly helper: ChannelControlHelper,
    options: { readonly random?: () => number; readonly now?: () => number } = {}
  ) {
    this.random = options.random ?? Math.random
    this.now = options.now ?? (() => performance.now())
  }

  updateAddressList(
    endpointList: experimental.StatusOr<Array<Endpoint>>,
    lbConfig: experimental.TypedLoadBalancingConfig,
    channelOptions: ChannelOptions,
    resolutionNote: string
  ): boolean {
    if (!(lbConfig instanceof AnchorRoundRobinConfig)) return false
    if (this.destroyed) return true
    const resolution: Resolution | undefined = isResolution(channelOptions[RESOLUTION_KEY])
      ? channelOptions[RESOLUTION_KEY]
      : undefined
    this.attachSink(channelOptions[STATS_KEY])
    this.subset = resolution?.subset

    const settings = Balancer.decodeSettings(lbConfig.config, channelOptions)
    if (Result.isFailure(settings)) {
      const details = `${POLICY_NAME}: ${settings.failure.message}`
      this.helper.updateState(ConnectivityState.TRANSIENT_FAILURE, new experimental.UnavailablePicker({ details }), details)
      return true
    }
    if (this.balancer === undefined) {
      this.balancer = Balancer.make({ ...Balancer.optionsOf(settings.success), trace: TRACING })
      track(this.source)
      this.hungRule = settings.success.hungAfterMs > 0
    }
    // A resolver that is not grpc-anchor's does not pass the target through.
    const target = resolution?.target ?? "the channel's target"
    if (!endpointList.ok) {
      // Keep serving the last good list; fail only when there is none.
      this.feed({ _tag: "ResolverError", now: this.now(), message: endpointList.error.details })
      return true
    }

    // The grpc-js address behind each address key, for `open`.
    const keys: Array<string> = []
    for (const endpoint of endpointList.value) {
      for (const address of endpoint.addresses) {
        const key = subchannelAddressKey(address)
        keys.push(key)
        this.addresses.set(key, address)
      }
    }
    const userServerName = channelOptions[SSL_TARGET_NAME_OVERRIDE] as string | undefined
    this.subchannelArgs = (address, slot) => {
      const args: ChannelOptions = { ...channelOptions, [SLOT_KEY]: slot.index }
      // Each connection checks the TLS name of its own address, unless the user fixed one for all.
      if (userServerName === undefined && "host" in address) {
        args[SSL_TARGET_NAME_OVERRIDE] = resolution?.serverNames.get(slot.address) ?? address.host
      }
      return args
    }

    this.feed({
      _tag: "Addresses",
      now: this.now(),
      target,
      ...Balancer.listing(keys, resolution, settings.success),
      offset: Math.floor(this.random() * 2 ** 31),
      note: resolutionNote
    })
    // The pool decides which addresses stay (the new list, and dropped ones
    // under the mass-removal grace): keep grpc-js's address of those only.
    const balancer = this.balancer
    if (balancer !== undefined) {
      for (const key of this.addresses.keys()) if (!Balancer.hasAddress(balancer, key)) this.addresses.delete(key)
      for (const key of this.releasedPicks.keys()) if (!Balancer.hasAddress(balancer, key)) this.releasedPicks.delete(key)
    }
    return true
  }

  /** Called by a slot's connectivity listener. */
  onStateChange(entry: SlotEntry, state: ConnectivityState, errorMessage: string | undefined): void {
    if (this.destroyed || entry.released) return
    this.feed({ _tag: "StateChanged", now: this.now(), slot: entry.id, state: STATES[state], error: errorMessage })
    // A connection that ended redirects the retries grpc-js makes in this turn, not later calls.
    if (!this.settleScheduled) this.scheduleSettle()
  }

  /** Called by a slot's health watcher (outlier detection). */
  onHealthChange(entry: SlotEntry, healthy: boolean): void {
    if (this.destroyed || entry.released) return
    this.feed({ _tag: "HealthChanged", now: this.now(), slot: entry.id, healthy })
  }

  /** A settlePicks is scheduled for the end of this turn. */
  settleScheduled = false
  private settleTurn: ReturnType<typeof setImmediate> | undefined

  /** The pick mode in force is least_request or ewma (read on every pick; updated with each step). */
  loadAware = false
  /** The pick mode in force is ewma: picks carry their own timed trackers. */
  ewma = false
  /** The hung rule is on (`hungAfterMs` > 0). */
  private hungRule = true
  /** Calls read the clock (the hung rule is on, or the mode is ewma); else they skip it. */
  timed = true
  /** Trace lines are on: the turn is ended after picks and call ends, to write them. */
  readonly tracing = TRACING

  /**
   * Ends the balancer's event-loop turn on the next one: least_request picks
   * count as in flight until their calls start, at most until then, and
   * retries are redirected only in the turn their connection ended.
   */
  scheduleSettle(): void {
    const balancer = this.balancer
    if (balancer === undefined) return
    this.settleScheduled = true
    this.settleTurn = setImmediate(() => {
      this.settleScheduled = false
      this.settleTurn = undefined
      if (this.balancer !== undefined) for (const line of Balancer.settlePicks(this.balancer)) trace(line)
    })
  }

  /**
   * A call found every connection of an adaptive address full: grow on the
   * next microtask, outside grpc-js's pick and call start.
   */
  callsWaiting(): void {
    if (this.growScheduled || this.destroyed) return
    this.growScheduled = true
    queueMicrotask(() => {
      this.growScheduled = false
      this.feed({ _tag: "CallsWaiting", now: this.now() })
    })
  }

  /** Steps the balancer and applies its output. */
  private feed(event: Balancer.Event): void {
    const balancer = this.balancer
    if (balancer === undefined || this.destroyed) return
    this.apply(Balancer.step(balancer, event))
  }

  private apply(out: Balancer.Output): void {
    if (this.balancer !== undefined) {
      const mode = Balancer.pickMode(this.balancer)
      this.loadAware = mode !== "round_robin"
      this.ewma = mode === "ewma"
      this.timed = this.hungRule || this.ewma
    }
    for (const line of out.trace) trace(line)
    for (const id of out.remove) {
      this.pacer.cancel(id)
      const entry = this.entries[id]
      if (entry !== undefined) {
        this.entries[id] = undefined
        this.release(entry)
      }
    }
    for (const slot of out.create) this.pacer.create(slot)
    for (const id of out.connect) this.pacer.connectSoon(id)
    if (out.publish !== undefined && !this.destroyed) {
      this.helper.updateState(CHANNEL_STATES[out.publish.state], this.picker, out.publish.message)
    }
    if (out.reresolve) this.helper.requestReresolution()
    this.arm(out.wakeAt)
    this.sink?.changed()
    this.pacer.drain()
  }

  /** Starts a slot's connection if it is IDLE; whether it did. */
  private connect(id: number): boolean {
    const entry = this.entries[id]
    if (entry === undefined || entry.subchannel.getConnectivityState() !== ConnectivityState.IDLE) return false
    entry.subchannel.startConnecting()
    return true
  }

  private open(slot: Balancer.NewSlot): void {
    const address = this.addresses.get(slot.address)!
    const subchannel = this.helper.createSubchannel(address, this.subchannelArgs(address, slot))
    const entry = new SlotEntry(slot.id, slot.address, subchannel, this)
    this.entries[slot.id] = entry
    subchannel.ref()
    subchannel.addConnectivityStateListener(entry.onState)
    subchannel.addHealthStateWatcher(entry.onHealth)
    this.helper.addChannelzChild(subchannel.getChannelzRef())
    // A new subchannel may be shared and already connected: tell the balancer.
    const state = subchannel.getConnectivityState()
    if (state !== ConnectivityState.IDLE) this.onStateChange(entry, state, undefined)
    if (!subchannel.isHealthy()) this.onHealthChange(entry, false)
  }

  /**
   * One timer for the balancer's next wake-up; it never keeps the process
   * alive. A wake-up that moved later keeps the armed timer (firing early is
   * harmless: the balancer answers with the next one), so timers are not
   * re-armed on every event.
   */
  private arm(at: number | undefined): void {
    if (at === undefined || this.destroyed) return
    if (this.timer !== undefined && this.timerAt <= at) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timerAt = at
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.timerAt = Number.NaN
      this.feed({ _tag: "TimerFired", now: Math.max(this.now(), at) })
    }, Math.max(0, Math.ceil(at - this.now())))
    this.timer.unref?.()
  }

  private release(entry: SlotEntry): void {
    entry.released = true
    if (entry.picked > 0) this.releasedPicks.set(entry.address, (this.releasedPicks.get(entry.address) ?? 0) + entry.picked)
    entry.subchannel.removeConnectivityStateListener(entry.onState)
    entry.subchannel.removeHealthStateWatcher(entry.onHealth)
    this.helper.removeChannelzChild(entry.subchannel.getChannelzRef())
    // New calls go elsewhere at once; calls in flight on it finish. grpc-js's
    // subchannel pool holds its own reference and closes the connection at
    // its next sweep (every 10 s) unless a slot takes it up again.
    entry.subchannel.unref()
  }

  private attachSink(candidate: unknown): void {
    const sink = candidate as StatsSink | undefined
    if (sink === this.sink) return
    this.sink?.detach(this)
    this.sink = sink !== undefined && typeof sink.attach === "function" ? sink : undefined
    this.sink?.attach(this)
  }

  /** The current connection slots, in pick order, with their state and counters. */
  snapshot(): ReadonlyArray<ConnectionStats> {
    if (this.balancer === undefined) return []
    return Balancer.slots(this.balancer).map((slot) => {
      const entry = this.entries[slot.id]
      return {
        address: slot.address,
        index: slot.index,
        state: slot.state,
        picked: entry?.picked ?? 0,
        inFlight: slot.inFlight,
        hung: slot.hung,
        avoided: slot.avoided
      }
    })
  }

  /** What metrics read: the core's counters, picks and open connections per address. O(connections). */
  private sample(): PoolSample | undefined {
    const balancer = this.balancer
    if (balancer === undefined) return undefined
    const picks = new Map(this.releasedPicks)
    const open = new Map<string, number>()
    for (const entry of this.entries) {
      if (entry === undefined) continue
      picks.set(entry.address, (picks.get(entry.address) ?? 0) + entry.picked)
      open.set(entry.address, (open.get(entry.address) ?? 0) + 1)
    }
    return { pool: Balancer.metrics(balancer, this.now()), picks, open, subset: this.subset }
  }

  exitIdle(): void {
    // Nothing to do, as in grpc-js's round_robin: the balancer asks every new
    // or IDLE connection to connect at once. grpc-js calls this on every call
    // (through its config lookup), so it must stay free.
  }

  resetBackoff(): void {
    // Backoff lives in the subchannels; grpc-js resets it there.
  }

  destroy(): void {
    this.destroyed = true
    untrack(this.source)
    this.pacer.close()
    if (this.settleTurn !== undefined) clearImmediate(this.settleTurn)
    this.settleTurn = undefined
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    for (const entry of this.entries) if (entry !== undefined) this.release(entry)
    this.entries.length = 0
    this.balancer = undefined
    this.sink?.detach(this)
    this.sink = undefined
  }

  getTypeName(): string {
    return POLICY_NAME
  }
}
