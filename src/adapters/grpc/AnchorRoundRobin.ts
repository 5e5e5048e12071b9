/**
 * The `anchor_round_robin` load-balancing policy for @grpc/grpc-js: N
 * connections per address, calls spread over the ready ones in the smooth
 * weighted order of the core.
 *
 * The decisions live in the pure core (`Expansion`, `Schedule`, `Picker`);
 * this class only translates grpc-js connectivity events into the core's
 * readiness, and the core's picks into grpc-js pick results.
 *
 * @since 0.1.0
 */
import {
  connectivityState as ConnectivityState,
  experimental,
  type ChannelOptions,
  type StatusObject
} from "@grpc/grpc-js"
import * as Address from "../../core/Address.js"
import * as Expansion from "../../core/Expansion.js"
import * as Picker from "../../core/Picker.js"
import * as Schedule from "../../core/Schedule.js"
import { isResolution, RESOLUTION_KEY, SLOT_KEY, SSL_TARGET_NAME_OVERRIDE, STATS_KEY, type Resolution } from "./internal/keys.js"
import type { ConnectionStats, StatsSink, StatsSource } from "./Stats.js"

type ChannelControlHelper = experimental.ChannelControlHelper
type SubchannelInterface = experimental.SubchannelInterface
type Endpoint = experimental.Endpoint
type SubchannelAddress = experimental.SubchannelAddress
const { PickResultType, QueuePicker, UnavailablePicker } = experimental

/**
 * The policy's name in a service config.
 *
 * @since 0.1.0
 */
export const TYPE_NAME = "anchor_round_robin"

/**
 * The policy's configuration: `{ "anchor_round_robin": { "connectionsPerAddress": 2 } }`.
 * `connectionsPerAddress` (1..256, default 1) applies to addresses whose
 * count the resolver did not give (grpc-anchor's own resolvers always do).
 *
 * @since 0.1.0
 */
export class AnchorRoundRobinConfig implements experimental.TypedLoadBalancingConfig {
  constructor(readonly connectionsPerAddress: number = 1) {}

  getLoadBalancerName(): string {
    return TYPE_NAME
  }

  toJsonObject(): object {
    return { [TYPE_NAME]: { connectionsPerAddress: this.connectionsPerAddress } }
  }

  static createFromJson(obj: unknown): AnchorRoundRobinConfig {
    if (obj === undefined || obj === null) return new AnchorRoundRobinConfig()
    if (typeof obj !== "object") {
      throw new Error(`${TYPE_NAME} config must be an object, got ${JSON.stringify(obj)}`)
    }
    const value = (obj as { connectionsPerAddress?: unknown }).connectionsPerAddress
    if (value === undefined) return new AnchorRoundRobinConfig()
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 256) {
      throw new Error(`${TYPE_NAME}: connectionsPerAddress must be a whole number 1..256, got ${JSON.stringify(value)}`)
    }
    return new AnchorRoundRobinConfig(value)
  }
}

const stateName = (state: ConnectivityState): ConnectionStats["state"] =>
  ConnectivityState[state] as ConnectionStats["state"]

/**
 * How long, at most, the other connections to an address are skipped after
 * one of them dropped, while nobody knows yet whether the server is alive.
 */
const SUSPICION_MS = 1_000

/** One connection slot and the subchannel that carries it. */
class SlotEntry {
  state: ConnectivityState
  healthy: boolean
  /** Skipped until this time (ms since epoch): a sibling connection dropped. 0: not suspect. */
  suspectUntil = 0
  /** No longer one of the policy's slots: its events are ignored. */
  released = false
  picked = 0
  inFlight = 0
  readonly onCallStarted = () => {
    this.inFlight++
  }
  readonly onCallEnded = () => {
    this.inFlight--
  }
  readonly onState: experimental.ConnectivityStateListener
  readonly onHealth: experimental.HealthListener
  /** Built once: grpc-js only reads pick results, and this is the hot path. */
  readonly pickResult: experimental.PickResult

  constructor(
    readonly slot: Expansion.Slot,
    readonly key: string,
    readonly subchannel: SubchannelInterface,
    owner: AnchorRoundRobinLoadBalancer
  ) {
    this.state = subchannel.getConnectivityState()
    this.healthy = subchannel.isHealthy()
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

  /** READY and healthy, whatever its siblings did. */
  get connected(): boolean {
    return this.state === ConnectivityState.READY && this.healthy
  }

  get suspect(): boolean {
    return this.suspectUntil !== 0
  }
}

/**
 * Mutable cell shared by the policy and every picker it hands to grpc-js, so
 * the rotation continues across picker updates and a picker never picks a
 * slot that was removed.
 */
interface Rotation {
  picker: Picker.Picker
  readiness: Picker.Readiness
  entries: ReadonlyArray<SlotEntry>
}

const QUEUE: experimental.PickResult = { pickResultType: PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null }

class AnchorPicker implements experimental.Picker {
  constructor(private readonly rotation: Rotation) {}

  pick(): experimental.PickResult {
    const rotation = this.rotation
    const result = Picker.pick(rotation.picker, rotation.readiness)
    if (result._tag === "NoneReady") {
      // The policy reports a non-READY state right after; queue until then.
      return QUEUE
    }
    rotation.picker = result.next
    const entry = rotation.entries[result.index]!
    entry.picked++
    return entry.pickResult
  }
}

const subchannelAddressKey = (address: SubchannelAddress): string =>
  "host" in address ? Address.format({ host: address.host, port: address.port }) : `unix:${address.path}`

/**
 * The load balancer. grpc-js creates one per channel (and again after the
 * channel leaves IDLE).
 *
 * @since 0.1.0
 */
export class AnchorRoundRobinLoadBalancer implements experimental.LoadBalancer, StatsSource {
  /** The slots in schedule order, with the core picker over them: the policy's whole state. */
  private readonly rotation: Rotation = { picker: Picker.make([]), readiness: Picker.readiness(0), entries: [] }
  /** It reads the live rotation, so one instance serves every READY update. */
  private readonly readyPicker = new AnchorPicker(this.rotation)
  private target = "(unknown target)"
  private lastError: string | null = null
  private sink: StatsSink | undefined
  private destroyed = false
  private readonly random: () => number

  constructor(private readonly helper: ChannelControlHelper, options: { readonly random?: () => number } = {}) {
    this.random = options.random ?? Math.random
  }

  updateAddressList(
    endpointList: experimental.StatusOr<Array<Endpoint>>,
    lbConfig: experimental.TypedLoadBalancingConfig,
    channelOptions: ChannelOptions,
    resolutionNote: string
  ): boolean {
    if (!(lbConfig instanceof AnchorRoundRobinConfig)) return false
    const resolution: Resolution | undefined = isResolution(channelOptions[RESOLUTION_KEY])
      ? channelOptions[RESOLUTION_KEY]
      : undefined
    if (resolution !== undefined) this.target = resolution.target
    this.attachSink(channelOptions[STATS_KEY])

    if (!endpointList.ok) {
      // Keep serving the last good list; fail only when there is none.
      if (this.rotation.entries.length === 0) {
        this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker(endpointList.error), endpointList.error.details)
      }
      return true
    }

    // One entry per distinct address, in resolver order.
    const addresses = new Map<string, SubchannelAddress>()
    for (const endpoint of endpointList.value) {
      for (const address of endpoint.addresses) {
        const key = subchannelAddressKey(address)
        if (!addresses.has(key)) addresses.set(key, address)
      }
    }
    const weighted: Array<Expansion.Weighted> = []
    for (const key of addresses.keys()) {
      weighted.push({ address: key, count: resolution?.counts.get(key) ?? lbConfig.connectionsPerAddress })
    }

    const userServerName = channelOptions[SSL_TARGET_NAME_OVERRIDE] as string | undefined
    const subchannelArgs = (address: SubchannelAddress, slot: Expansion.Slot): ChannelOptions => {
      const args: ChannelOptions = { ...channelOptions, [SLOT_KEY]: slot.index }
      // Each connection checks the TLS name of its own address, unless the user fixed one for all.
      if (userServerName === undefined && "host" in address) {
        args[SSL_TARGET_NAME_OVERRIDE] = resolution?.serverNames.get(slot.address) ?? address.host
      }
      return args
    }

    const order = Schedule.slotOrder(weighted)
    const previous = new Map(this.rotation.entries.map((entry) => [entry.key, entry]))
    const created: Array<SlotEntry> = []
    const entries = order.map((slot) => {
      const key = Expansion.key(slot)
      const existing = previous.get(key)
      if (existing !== undefined) {
        previous.delete(key)
        return existing
      }
      const address = addresses.get(slot.address)!
      const subchannel = this.helper.createSubchannel(address, subchannelArgs(address, slot))
      const entry = new SlotEntry(slot, key, subchannel, this)
      subchannel.ref()
      subchannel.addConnectivityStateListener(entry.onState)
      subchannel.addHealthStateWatcher(entry.onHealth)
      this.helper.addChannelzChild(subchannel.getChannelzRef())
      created.push(entry)
      return entry
    })
    // What is left of the previous slots was removed.
    for (const entry of previous.values()) this.release(entry)

    const rotation = this.rotation
    rotation.picker = rotation.picker.slots.length === 0
      ? Picker.make(order, Math.floor(this.random() * order.length))
      : Picker.update(rotation.picker, order)
    rotation.entries = entries
    this.refreshReadiness()

    if (order.length === 0) {
      const message = `${TYPE_NAME}: no addresses for ${this.target}${resolutionNote ? ` (${resolutionNote})` : ""}`
      this.lastError = message
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details: message }), message)
    } else {
      this.publish()
    }
    this.sink?.changed()
    for (const entry of created) {
      if (this.destroyed) break
      if (entry.subchannel.getConnectivityState() === ConnectivityState.IDLE) entry.subchannel.startConnecting()
    }
    return true
  }

  /** @internal called by a slot's connectivity listener */
  onStateChange(entry: SlotEntry, state: ConnectivityState, errorMessage: string | undefined): void {
    if (this.destroyed || entry.released) return
    const wasConnected = entry.connected
    entry.state = state
    if (state === ConnectivityState.TRANSIENT_FAILURE && errorMessage) this.lastError = errorMessage
    if (wasConnected && !entry.connected) {
      this.helper.requestReresolution()
      this.suspectSiblings(entry)
    }
    if (state === ConnectivityState.READY) {
      // This address answers new connections: its other connections are fine.
      entry.suspectUntil = 0
      this.clearSuspicion(entry.slot.address)
    }
    this.changed()
    // Keep every slot connected: an idle slot (its connection dropped, or its
    // backoff ended) reconnects; grpc-js applies its backoff between attempts.
    if (state === ConnectivityState.IDLE) entry.subchannel.startConnecting()
  }

  /**
   * When a server dies, its connections are not all seen to close at the
   * same moment (measured here: up to ~20 ms apart on loopback), and a call
   * sent on one still thought READY fails. So when one connection to an
   * address drops, its siblings are skipped until the dropped slot's
   * reconnect answers: READY clears the suspicion (the server is alive, e.g.
   * it only recycled that connection), a failure keeps it until each sibling
   * reports for itself, and after SUSPICION_MS it lapses regardless.
   */
  private suspectSiblings(dropped: SlotEntry): void {
    const until = Date.now() + SUSPICION_MS
    let any = false
    for (const entry of this.rotation.entries) {
      if (entry !== dropped && entry.slot.address === dropped.slot.address && entry.connected) {
        entry.suspectUntil = until
        any = true
      }
    }
    if (any) this.scheduleSuspicionCheck(SUSPICION_MS)
  }

  private clearSuspicion(address: string): void {
    for (const entry of this.rotation.entries) {
      if (entry.slot.address === address) entry.suspectUntil = 0
    }
  }

  private suspicionTimer: ReturnType<typeof setTimeout> | undefined

  private scheduleSuspicionCheck(delayMs: number): void {
    if (this.suspicionTimer !== undefined) return
    this.suspicionTimer = setTimeout(() => {
      this.suspicionTimer = undefined
      if (this.destroyed) return
      const now = Date.now()
      let next = Number.POSITIVE_INFINITY
      for (const entry of this.rotation.entries) {
        if (entry.suspectUntil !== 0 && entry.suspectUntil <= now) entry.suspectUntil = 0
        else if (entry.suspectUntil !== 0) next = Math.min(next, entry.suspectUntil - now)
      }
      this.changed()
      if (Number.isFinite(next)) this.scheduleSuspicionCheck(next)
    }, delayMs)
    // A lapse timer must never keep the process alive.
    this.suspicionTimer.unref?.()
  }

  /** @internal called by a slot's health watcher (outlier detection) */
  onHealthChange(entry: SlotEntry, healthy: boolean): void {
    if (this.destroyed || entry.released) return
    entry.healthy = healthy
    this.changed()
  }

  /** After a slot's state, health or suspicion changed: new readiness, channel state and stats. */
  private changed(): void {
    this.refreshReadiness()
    this.publish()
    this.sink?.changed()
  }

  private refreshReadiness(): void {
    const rotation = this.rotation
    let flags = rotation.entries.map((entry) => entry.connected && !entry.suspect)
    // Suspicion only steers calls away while something else can take them.
    if (!flags.includes(true)) flags = rotation.entries.map((entry) => entry.connected)
    const current = rotation.readiness.flags
    const same = current.length === flags.length && flags.every((flag, i) => flag === current[i])
    // A new Readiness object makes the core recompute its ready list once;
    // keep the old one when nothing changed so picks stay O(1).
    if (!same) rotation.readiness = { flags }
  }

  /** Aggregates the slots' states into the channel's, as grpc-js's round_robin does. */
  private publish(): void {
    let ready = 0
    let connecting = 0
    for (const entry of this.rotation.entries) {
      if (entry.connected) ready++
      else if (entry.state === ConnectivityState.CONNECTING || entry.state === ConnectivityState.IDLE) connecting++
    }
    if (ready > 0) {
      this.updateState(ConnectivityState.READY, this.readyPicker, null)
    } else if (connecting > 0) {
      this.updateState(ConnectivityState.CONNECTING, new QueuePicker(this), null)
    } else if (this.rotation.entries.length > 0) {
      const message = `${TYPE_NAME}: no ready connection to ${this.target} (${this.rotation.entries.length} connections failing; last error: ${this.lastError ?? "none"})`
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details: message } satisfies Partial<StatusObject>), message)
    }
  }

  private updateState(state: ConnectivityState, picker: experimental.Picker, errorMessage: string | null): void {
    if (this.destroyed) return
    this.helper.updateState(state, picker, errorMessage)
  }

  private release(entry: SlotEntry): void {
    entry.released = true
    entry.subchannel.removeConnectivityStateListener(entry.onState)
    entry.subchannel.removeHealthStateWatcher(entry.onHealth)
    this.helper.removeChannelzChild(entry.subchannel.getChannelzRef())
    // grpc-js closes the connection gracefully once nothing refers to it:
    // calls in flight on it finish, new ones go elsewhere.
    entry.subchannel.unref()
  }

  private attachSink(candidate: unknown): void {
    const sink = candidate as StatsSink | undefined
    if (sink === this.sink) return
    this.sink?.detach(this)
    this.sink = sink !== undefined && typeof sink.attach === "function" ? sink : undefined
    this.sink?.attach(this)
  }

  /** The current connection slots with their state and counters. */
  snapshot(): ReadonlyArray<ConnectionStats> {
    return this.rotation.entries.map((entry) => ({
      address: entry.slot.address,
      index: entry.slot.index,
      state: stateName(entry.state),
      picked: entry.picked,
      inFlight: entry.inFlight
    }))
  }

  exitIdle(): void {
    for (const entry of this.rotation.entries) {
      if (entry.subchannel.getConnectivityState() === ConnectivityState.IDLE) entry.subchannel.startConnecting()
    }
  }

  resetBackoff(): void {
    // Backoff lives in the subchannels; grpc-js resets it there.
  }

  destroy(): void {
    this.destroyed = true
    if (this.suspicionTimer !== undefined) clearTimeout(this.suspicionTimer)
    this.suspicionTimer = undefined
    for (const entry of this.rotation.entries) this.release(entry)
    this.rotation.entries = []
    this.rotation.picker = Picker.make([])
    this.rotation.readiness = Picker.readiness(0)
    this.sink?.detach(this)
    this.sink = undefined
  }

  getTypeName(): string {
    return TYPE_NAME
  }
}

/**
 * Registers `anchor_round_robin` with the app's @grpc/grpc-js.
 *
 * @since 0.1.0
 */
export const setup = (): void => {
  experimental.registerLoadBalancerType(TYPE_NAME, AnchorRoundRobinLoadBalancer, AnchorRoundRobinConfig)
}
