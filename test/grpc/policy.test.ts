/**
 * anchor_round_robin without a network: a fake channel-control helper hands
 * out fake subchannels whose connectivity the test drives, the way grpc-js
 * tests its own policies.
 */
import { connectivityState as State, experimental, type ChannelOptions } from "@grpc/grpc-js"
import { afterEach, describe, expect, it, vi } from "vitest"
import { AnchorRoundRobinConfig, AnchorRoundRobinLoadBalancer } from "../../src/adapters/grpc/AnchorRoundRobin.js"
import { RESOLUTION_KEY, SLOT_KEY, type Resolution } from "../../src/adapters/grpc/internal/keys.js"

class FakeSubchannel {
  state: State = State.IDLE
  refs = 0
  connects = 0
  private listeners = new Set<experimental.ConnectivityStateListener>()
  constructor(readonly address: string, readonly args: ChannelOptions) {}
  getConnectivityState() {
    return this.state
  }
  addConnectivityStateListener(listener: experimental.ConnectivityStateListener) {
    this.listeners.add(listener)
  }
  removeConnectivityStateListener(listener: experimental.ConnectivityStateListener) {
    this.listeners.delete(listener)
  }
  startConnecting() {
    this.connects++
    if (this.state === State.IDLE) this.set(State.CONNECTING)
  }
  set(state: State, error?: string) {
    const previous = this.state
    this.state = state
    for (const listener of [...this.listeners]) listener(this as never, previous, state, -1, error)
  }
  getAddress() {
    return this.address
  }
  ref() {
    this.refs++
  }
  unref() {
    this.refs--
  }
  isHealthy() {
    return true
  }
  addHealthStateWatcher() {}
  removeHealthStateWatcher() {}
  getChannelzRef() {
    return { kind: "subchannel", id: 0, name: this.address } as never
  }
  get listenerCount() {
    return this.listeners.size
  }
}

const harness = (channelOptions: ChannelOptions = {}) => {
  const subchannels: Array<FakeSubchannel> = []
  const updates: Array<{ state: State; picker: experimental.Picker; error: string | null }> = []
  const helper: experimental.ChannelControlHelper = {
    createSubchannel: (address, args) => {
      const subchannel = new FakeSubchannel(experimental.subchannelAddressToString(address), args)
      subchannels.push(subchannel)
      return subchannel as unknown as experimental.SubchannelInterface
    },
    updateState: (state, picker, error) => updates.push({ state, picker, error }),
    requestReresolution: () => {},
    addChannelzChild: () => {},
    removeChannelzChild: () => {}
  }
  // A fixed "random" start so the pick order is predictable; Date.now so vitest's fake timers move the clock.
  const balancer = new AnchorRoundRobinLoadBalancer(helper, { random: () => 0, now: () => Date.now() })
  const resolve = (target: string, entries: ReadonlyArray<readonly [string, number]>) => {
    const resolution: Resolution = { target, counts: new Map(entries), serverNames: new Map() }
    const endpoints = entries.map(([address]) => {
      const [host, port] = address.split(":")
      return { addresses: [{ host: host!, port: Number(port) }] }
    })
    return balancer.updateAddressList(
      experimental.statusOrFromValue(endpoints),
      new AnchorRoundRobinConfig(),
      { ...channelOptions, [RESOLUTION_KEY]: resolution },
      ""
    )
  }
  const last = () => updates[updates.length - 1]!
  const pickOne = () => last().picker.pick({ metadata: {} as never, extraPickInfo: {} })
  const pickAddresses = (n: number) =>
    Array.from({ length: n }, () => {
      const result = pickOne()
      return result.subchannel === null ? null : (result.subchannel as unknown as FakeSubchannel)
    })
  /** The published states, consecutive repeats collapsed. */
  const states = () => updates.map((u) => State[u.state]).filter((s, i, all) => i === 0 || all[i - 1] !== s)
  return { balancer, subchannels, updates, resolve, last, pickOne, pickAddresses, states }
}

describe("anchor_round_robin with fake subchannels", () => {
  it("creates one subchannel per slot, each with its own slot argument and TLS name, and connects them all", () => {
    const h = harness()
    expect(h.resolve("pass:///a:1#2,b:2", [["a:1", 2], ["b:2", 1]])).toBe(true)
    expect(h.subchannels.map((s) => [s.address, s.args[SLOT_KEY], s.args["grpc.ssl_target_name_override"]])).toEqual([
      ["a:1", 0, "a"],
      ["b:2", 0, "b"],
      ["a:1", 1, "a"]
    ])
    expect(h.subchannels.every((s) => s.refs === 1 && s.state === State.CONNECTING)).toBe(true)
    expect(h.last().state).toBe(State.CONNECTING)
  })

  it("goes READY once every first attempt settled and picks only ready slots", () => {
    const h = harness()
    h.resolve("t", [["a:1", 2], ["b:2", 1]])
    const [a0, b0, a1] = h.subchannels
    b0!.set(State.READY)
    // Balanced start: the others have not answered yet, so calls wait.
    expect(h.last().state).toBe(State.CONNECTING)
    expect(h.pickOne().pickResultType).toBe(experimental.PickResultType.QUEUE)
    a0!.set(State.TRANSIENT_FAILURE, "refused")
    a1!.set(State.TRANSIENT_FAILURE, "refused")
    expect(h.last().state).toBe(State.READY)
    expect(new Set(h.pickAddresses(6))).toEqual(new Set([b0]))
    a0!.set(State.READY)
    a1!.set(State.READY)
    const picks = h.pickAddresses(30)
    expect(picks.filter((s) => s === a0).length).toBe(10)
    expect(picks.filter((s) => s === a1).length).toBe(10)
    expect(picks.filter((s) => s === b0).length).toBe(10)
  })

  it("skips a slot that drops at once, reconnects it, and takes it back when READY", () => {
    const h = harness()
    h.resolve("t", [["a:1", 1], ["b:2", 1]])
    const [a, b] = h.subchannels
    a!.set(State.READY)
    b!.set(State.READY)
    b!.set(State.IDLE) // connection lost
    expect(b!.state).toBe(State.CONNECTING) // the policy asked it to reconnect
    expect(new Set(h.pickAddresses(10))).toEqual(new Set([a]))
    b!.set(State.READY)
    expect(h.pickAddresses(10).filter((s) => s === b).length).toBe(5)
  })

  it("reports TRANSIENT_FAILURE naming the target when every slot fails", () => {
    const h = harness()
    h.resolve("pass:///a:1#2", [["a:1", 2]])
    for (const s of h.subchannels) s.set(State.TRANSIENT_FAILURE, "connection refused")
    expect(h.last().state).toBe(State.TRANSIENT_FAILURE)
    expect(h.last().error).toContain("pass:///a:1#2")
    expect(h.last().error).toContain("connection refused")
    const result = h.last().picker.pick({ metadata: {} as never, extraPickInfo: {} })
    expect(result.pickResultType).toBe(experimental.PickResultType.TRANSIENT_FAILURE)
  })

  it("keeps the subchannels of unchanged slots on an update and releases removed ones", () => {
    const h = harness()
    h.resolve("t", [["a:1", 2], ["b:2", 1]])
    const before = [...h.subchannels]
    for (const s of before) s.set(State.READY)
    h.resolve("t", [["a:1", 1], ["c:3", 1]])
    const [a0, b0, a1] = before
    // a:1#0 kept, a:1#1 and b:2#0 released (unref'd and no longer listened to), c:3#0 created.
    expect(h.subchannels.length).toBe(4)
    expect(a0!.refs).toBe(1)
    expect([a1!.refs, b0!.refs]).toEqual([0, 0])
    expect([a1!.listenerCount, b0!.listenerCount]).toEqual([0, 0])
    expect(h.subchannels[3]!.address).toBe("c:3")
    // The removed slots are never picked again, even by an old picker.
    const picks = h.pickAddresses(10)
    expect(picks.every((s) => s === a0)).toBe(true)
    h.subchannels[3]!.set(State.READY)
    expect(new Set(h.pickAddresses(10))).toEqual(new Set([a0, h.subchannels[3]]))
  })

  it("fails with the target named when the address list is empty, and releases everything on destroy", () => {
    const h = harness()
    h.resolve("etcd:///svc#2", [])
    expect(h.last().state).toBe(State.TRANSIENT_FAILURE)
    expect(h.last().error).toContain("etcd:///svc#2")
    h.resolve("t", [["a:1", 2]])
    h.balancer.destroy()
    expect(h.subchannels.every((s) => s.refs === 0 && s.listenerCount === 0)).toBe(true)
  })

  describe("when one connection to an address drops", () => {
    afterEach(() => {
      vi.useRealTimers()
    })
    const twoAddresses = () => {
      const h = harness()
      h.resolve("t", [["a:1", 2], ["b:2", 1]])
      const [a0, b0, a1] = h.subchannels
      for (const s of [a0, b0, a1]) s!.set(State.READY)
      return { h, a0: a0!, a1: a1!, b0: b0! }
    }

    it("skips its sibling connections until the dropped one reconnects, then uses them again", () => {
      const { h, a0, a1, b0 } = twoAddresses()
      a0.set(State.IDLE) // a's first connection dropped: the policy reconnects it
      expect(new Set(h.pickAddresses(6))).toEqual(new Set([b0]))
      a0.set(State.READY) // a answers new connections: its siblings are fine
      expect(h.pickAddresses(30).filter((s) => s === a1).length).toBe(10)
    })

    it("keeps skipping the siblings while the reconnect fails, until each reports for itself or the suspicion lapses", () => {
      vi.useFakeTimers()
      const { h, a0, a1, b0 } = twoAddresses()
      a0.set(State.IDLE)
      a0.set(State.TRANSIENT_FAILURE, "connection refused")
      expect(new Set(h.pickAddresses(6))).toEqual(new Set([b0]))
      vi.advanceTimersByTime(999)
      expect(new Set(h.pickAddresses(6))).toEqual(new Set([b0]))
      vi.advanceTimersByTime(2)
      // Nobody said a1 was down: after 1 s it is used again.
      expect(new Set(h.pickAddresses(6))).toEqual(new Set([a1, b0]))
    })

    it("does not let suspicion leave the channel with nothing to pick", () => {
      const h = harness()
      h.resolve("t", [["a:1", 3]])
      const [x, y, z] = h.subchannels
      for (const s of [x, y, z]) s!.set(State.READY)
      x!.set(State.IDLE)
      expect(h.last().state).toBe(State.READY)
      expect(new Set(h.pickAddresses(6))).toEqual(new Set([y, z]))
    })

    it("clears its timers on destroy", () => {
      vi.useFakeTimers()
      const { h, a0 } = twoAddresses()
      a0.set(State.IDLE)
      expect(vi.getTimerCount()).toBeGreaterThan(0)
      h.balancer.destroy()
      expect(vi.getTimerCount()).toBe(0)
    })
  })

  it("rejects bad policy configs with a message", () => {
    expect(() => AnchorRoundRobinConfig.createFromJson({ connectionsPerAddress: 0 })).toThrow(/connectionsPerAddress[\s\S]*between 1 and 256|between 1 and 256[\s\S]*connectionsPerAddress/)
    expect(() => AnchorRoundRobinConfig.createFromJson({ connectionsPerAddress: 2.5 })).toThrow(/integer/)
    expect(() => AnchorRoundRobinConfig.createFromJson({ startWaitMs: -1 })).toThrow(/startWaitMs/)
    expect(() => AnchorRoundRobinConfig.createFromJson("x")).toThrow(/anchor_round_robin config "x" is not valid/)
    expect(AnchorRoundRobinConfig.createFromJson(null).connectionsPerAddress).toBe(1)
    expect(AnchorRoundRobinConfig.createFromJson({ connectionsPerAddress: 2, maxConnections: 10 }).toJsonObject()).toEqual({
      anchor_round_robin: { connectionsPerAddress: 2, maxConnections: 10 }
    })
    expect(AnchorRoundRobinConfig.createFromJson({}).connectionsPerAddress).toBe(1)
    expect(AnchorRoundRobinConfig.createFromJson({ connectionsPerAddress: 3 }).connectionsPerAddress).toBe(3)
  })
})
