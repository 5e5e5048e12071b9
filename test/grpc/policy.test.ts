/**
 * anchor_round_robin without a network: a fake channel-control helper hands
 * out fake subchannels whose connectivity the test drives, the way grpc-js
 * tests its own policies.
 */
import { connectivityState as State, experimental, type ChannelOptions } from "@grpc/grpc-js"
import { afterEach, describe, expect, it, vi } from "vitest"
import { AnchorRoundRobinConfig } from "../../src/adapters/grpc/AnchorRoundRobin.js"
import { AnchorRoundRobinLoadBalancer } from "../../src/adapters/grpc/internal/loadBalancer.js"
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

const harness = (channelOptions: ChannelOptions = {}, config: AnchorRoundRobinConfig = new AnchorRoundRobinConfig(), now: () => number = () => Date.now()) => {
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
  const balancer = new AnchorRoundRobinLoadBalancer(helper, { random: () => 0, now })
  const resolve = (
    target: string,
    entries: ReadonlyArray<readonly [string, number]>,
    hints: { readonly maxCounts?: ReadonlyMap<string, number>; readonly pick?: "round_robin" | "least_request" | "ewma"; readonly overCap?: "fail" | "keepFirst" } = {}
  ) => {
    // As grpc-anchor's resolvers say: a pass: target fails over the cap, an etcd set keeps what fits.
    const overCap = target.startsWith("pass:") ? "fail" : "keepFirst"
    const resolution: Resolution = { target, counts: new Map(entries), overCap, serverNames: new Map(), ...hints }
    const endpoints = entries.map(([address]) => {
      const [host, port] = address.split(":")
      return { addresses: [{ host: host!, port: Number(port) }] }
    })
    return balancer.updateAddressList(
      experimental.statusOrFromValue(endpoints),
      config,
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
  describe("calls in flight", () => {
    /** Picks `n` calls, starting each; `keep` decides which stay in flight. Returns the picked subchannels. */
    const startCalls = (h: ReturnType<typeof harness>, n: number, keep: (s: FakeSubchannel) => boolean) =>
      Array.from({ length: n }, () => {
        const result = h.pickOne()
        const subchannel = result.subchannel as unknown as FakeSubchannel
        result.onCallStarted?.()
        if (!keep(subchannel)) result.onCallEnded?.(0, "", {} as never)
        return subchannel
      })

    it("reads no clock per call when the hung rule is off and the mode is not ewma", () => {
      let reads = 0
      const h = harness({ "grpc_anchor.hung_after_ms": 0 }, undefined, () => (reads++, Date.now()))
      h.resolve("pass:///a:1,b:2", [["a:1", 1], ["b:2", 1]])
      for (const s of h.subchannels) s.set(State.READY)
      const before = reads
      startCalls(h, 20, () => false)
      expect(reads).toBe(before)
      // With the rule on (the default), each call reads it at its start and its end.
      let readsOn = 0
      const on = harness({}, undefined, () => (readsOn++, Date.now()))
      on.resolve("pass:///a:1,b:2", [["a:1", 1], ["b:2", 1]])
      for (const s of on.subchannels) s.set(State.READY)
      const beforeOn = readsOn
      startCalls(on, 20, () => false)
      expect(readsOn - beforeOn).toBe(40)
    })

    it("least_request from the resolution: a connection holding calls loses to one that answers", () => {
      const h = harness()
      h.resolve("pass:///a:1,b:2?pick=least_request", [["a:1", 1], ["b:2", 1]], { pick: "least_request" })
      const [a, b] = h.subchannels
      a!.set(State.READY)
      b!.set(State.READY)
      // a keeps every call it gets; b ends them at once: after a's first call, b wins every comparison.
      const picks = startCalls(h, 20, (s) => s === a)
      expect(picks.filter((s) => s === a).length).toBeLessThanOrEqual(1)
      expect(h.balancer.snapshot().find((c) => c.address === "a:1")!.inFlight).toBe(picks.filter((s) => s === a).length)
    })

    it("the hung rule: a connection whose calls end unanswered (DEADLINE_EXCEEDED) is avoided; an answer (any server status) brings it back", () => {
      vi.useFakeTimers()
      try {
        const h = harness()
        h.resolve("t", [["a:1", 1], ["b:2", 1]])
        const [a, b] = h.subchannels
        a!.set(State.READY)
        b!.set(State.READY)
        // Round robin alternates: a's calls are kept (unanswered), b's answered at once, 1 call every 100 ms.
        const held: Array<experimental.PickResult> = []
        for (let i = 0; i < 30; i++) {
          const result = h.pickOne()
          result.onCallStarted?.()
          if (result.subchannel === (a as unknown)) held.push(result)
          else result.onCallEnded?.(0, "", {} as never)
          vi.advanceTimersByTime(100)
        }
        // A DEADLINE_EXCEEDED end is not an answer: a stays avoided.
        for (const result of held) result.onCallEnded?.(4, "deadline", {} as never)
        const later = h.pickAddresses(10)
        const snapshot = h.balancer.snapshot().find((c) => c.address === "a:1")!
        expect(snapshot.avoided).toBe(1)
        expect(snapshot.hung).toBe(true)
        expect(later.filter((s) => s === a)).toEqual([])
        // Past the probe period with nothing in flight, one call goes to a; its answer (NOT_FOUND is one) brings it back.
        // The pick reads no clock: the balancer's time is the latest call start or end, so a call on b comes first.
        vi.advanceTimersByTime(1_000)
        const onB = h.pickOne()
        expect(onB.subchannel).toBe(b)
        onB.onCallStarted?.()
        onB.onCallEnded?.(0, "", {} as never)
        const probe = h.pickOne()
        expect(probe.subchannel).toBe(a)
        probe.onCallStarted?.()
        probe.onCallEnded?.(5, "not found", {} as never)
        expect(h.balancer.snapshot().find((c) => c.address === "a:1")!.hung).toBe(false)
        expect(h.pickAddresses(4).filter((s) => s === a).length).toBe(2)
      } finally {
        vi.useRealTimers()
      }
    })

    it("ewma from the resolution: each pick times its own call, and the slower connection loses most picks", () => {
      vi.useFakeTimers()
      try {
        const h = harness()
        h.resolve("pass:///a:1,b:2?pick=ewma", [["a:1", 1], ["b:2", 1]], { pick: "ewma" })
        const [a, b] = h.subchannels
        a!.set(State.READY)
        b!.set(State.READY)
        // One call on each, a taking 50 ms and b 1 ms (the clock is Date.now under fake timers).
        const first = h.pickOne()
        const second = h.pickOne()
        expect(first).not.toBe(second)
        const [ra, rb] = first.subchannel === (a as unknown) ? [first, second] : [second, first]
        ra.onCallStarted?.()
        rb.onCallStarted?.()
        vi.advanceTimersByTime(1)
        rb.onCallEnded?.(0, "", {} as never)
        vi.advanceTimersByTime(49)
        ra.onCallEnded?.(0, "", {} as never)
        // Two connections, both drawn every time: b's 1 ms against a's first sample, counted at most 4x the
        // typical latency (4 ms); picks not yet started count as in flight, so a still gets one in about 4.
        const toB = h.pickAddresses(10).filter((s) => s === b).length
        expect(toB).toBeGreaterThanOrEqual(7)
        expect(toB).toBeLessThanOrEqual(9)
      } finally {
        vi.useRealTimers()
      }
    })

    it("least_request from the config when the target names no mode; round robin by default", () => {
      for (const [config, alternates] of [[new AnchorRoundRobinConfig(1, { pickMode: "least_request" }), false], [new AnchorRoundRobinConfig(), true]] as const) {
        const h = harness({}, config)
        h.resolve("t", [["a:1", 1], ["b:2", 1]])
        const [a, b] = h.subchannels
        a!.set(State.READY)
        b!.set(State.READY)
        const picks = startCalls(h, 10, (s) => s === a)
        // Round robin alternates whatever the load; least_request avoids the loaded one.
        expect(picks.filter((s) => s === a).length === 5).toBe(alternates)
      }
    })

    it("opens one more connection to an adaptive address when its connections are full and a call waits", async () => {
      const h = harness({ "grpc_anchor.max_streams_per_connection": 1 })
      h.resolve("pass:///a:1#1..3", [["a:1", 1]], { maxCounts: new Map([["a:1", 3]]) })
      h.subchannels[0]!.set(State.READY)
      startCalls(h, 2, () => true)
      expect(h.subchannels).toHaveLength(1) // not from inside the pick
      await Promise.resolve()
      expect(h.subchannels).toHaveLength(2)
      expect(h.subchannels[1]!.args[SLOT_KEY]).toBe(1)
      expect(h.subchannels[1]!.state).toBe(State.CONNECTING)
    })

    it("drops the call events of a released connection (its id may name a new one)", () => {
      const h = harness()
      h.resolve("t", [["a:1", 2]])
      for (const s of h.subchannels) s.set(State.READY)
      const results = Array.from({ length: 4 }, () => h.pickOne())
      for (const r of results) r.onCallStarted?.()
      h.resolve("t", [["a:1", 1]]) // a:1#1 released
      h.resolve("t", [["a:1", 2]]) // a new a:1#1, under the same id (ids are reused)
      h.subchannels[2]!.set(State.READY)
      for (const r of [h.pickOne(), h.pickOne()]) r.onCallStarted?.() // one new call on each
      for (const r of results) r.onCallEnded?.(0, "", {} as never)
      // a:1#0 ends its 2 old calls; the released a:1#1's 2 ends do not touch the new a:1#1.
      expect(h.balancer.snapshot().map((c) => c.inFlight)).toEqual([1, 1])
    })
  })

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

describe("anchor_round_robin rules through grpc-js's interface", () => {
  const pickStatus = (h: ReturnType<typeof harness>) => {
    const result = h.pickOne()
    return { type: result.pickResultType, code: result.status?.code, details: result.status?.details }
  }

  it("stays TRANSIENT_FAILURE through reconnect cycles once every connection failed, failing picks with the target and the last error", () => {
    const h = harness()
    h.resolve("pass:///a:1#2,b:2", [["a:1", 2], ["b:2", 1]])
    for (const s of h.subchannels) s.set(State.TRANSIENT_FAILURE, "connect ECONNREFUSED")
    for (let cycle = 0; cycle < 3; cycle++) {
      for (const s of h.subchannels) {
        s.set(State.IDLE) // backoff over: the policy reconnects
        expect(s.state).toBe(State.CONNECTING)
        s.set(State.TRANSIENT_FAILURE, `connect ECONNREFUSED (cycle ${cycle})`)
      }
    }
    expect(h.states()).toEqual(["CONNECTING", "TRANSIENT_FAILURE"])
    expect(pickStatus(h)).toEqual({
      type: experimental.PickResultType.TRANSIENT_FAILURE,
      code: 14, // UNAVAILABLE
      details: "anchor_round_robin: no ready connection to pass:///a:1#2,b:2 (3 connections failing; last error: connect ECONNREFUSED (cycle 2))"
    })
    h.subchannels[1]!.set(State.READY)
    expect(h.states()).toEqual(["CONNECTING", "TRANSIENT_FAILURE", "READY"])
  })

  it("queues a burst until every first attempt settled, then splits it by the counts (#3,#1: 300/100)", () => {
    const h = harness()
    h.resolve("pass:///a:1#3,b:2", [["a:1", 3], ["b:2", 1]])
    h.subchannels[0]!.set(State.READY)
    expect(pickStatus(h).type).toBe(experimental.PickResultType.QUEUE)
    for (const s of h.subchannels.slice(1)) s.set(State.READY)
    const picks = h.pickAddresses(400)
    expect(picks.filter((s) => s!.address === "a:1").length).toBe(300)
    expect(picks.filter((s) => s!.address === "b:2").length).toBe(100)
    for (const s of h.subchannels) expect(picks.filter((p) => p === s).length).toBe(100)
  })

  it("serves after grpc_anchor.start_wait_ms when a first attempt never settles", () => {
    vi.useFakeTimers()
    try {
      const h = harness({ "grpc_anchor.start_wait_ms": 100 })
      h.resolve("t", [["a:1", 1], ["b:2", 1]])
      h.subchannels[0]!.set(State.READY)
      vi.advanceTimersByTime(99)
      expect(h.last().state).toBe(State.CONNECTING)
      vi.advanceTimersByTime(1)
      expect(h.last().state).toBe(State.READY)
    } finally {
      vi.useRealTimers()
    }
  })

  it("refuses a pass: target over grpc_anchor.max_connections, opening nothing", () => {
    const h = harness({ "grpc_anchor.max_connections": 2 })
    h.resolve("pass:///a:1#2,b:2", [["a:1", 2], ["b:2", 1]])
    expect(h.subchannels).toEqual([])
    expect(h.last().state).toBe(State.TRANSIENT_FAILURE)
    expect(pickStatus(h).details).toBe(
      "anchor_round_robin: pass:///a:1#2,b:2: the target asks for 3 connections, over this channel's cap of 2: lower the #N counts or the number of addresses, or raise the channel option grpc_anchor.max_connections"
    )
  })

  it("keeps whole addresses in address order for an etcd set over the cap", () => {
    const h = harness({ "grpc_anchor.max_connections": 4 })
    h.resolve("etcd:///svc#2", [["c:3", 2], ["a:1", 2], ["b:2", 2]])
    expect(h.subchannels.map((s) => s.address).sort()).toEqual(["a:1", "a:1", "b:2", "b:2"])
  })

  it("takes what a list over the cap does from the resolution, not from the target's text", () => {
    const kept = harness({ "grpc_anchor.max_connections": 4 })
    kept.resolve("pass:///c:3#2,a:1#2,b:2#2", [["c:3", 2], ["a:1", 2], ["b:2", 2]], { overCap: "keepFirst" })
    expect(kept.subchannels.map((s) => s.address).sort()).toEqual(["a:1", "a:1", "b:2", "b:2"])
    const refused = harness({ "grpc_anchor.max_connections": 4 })
    refused.resolve("etcd:///svc#2", [["c:3", 2], ["a:1", 2], ["b:2", 2]], { overCap: "fail" })
    expect(refused.subchannels).toEqual([])
    expect(refused.last().error).toContain("asks for 6 connections, over this channel's cap of 4")
  })

  it("keeps what fits of a foreign resolver's list over the cap (no resolution: Balancer.DEFAULT_OVER_CAP), at the config's count", () => {
    const h = harness()
    h.balancer.updateAddressList(
      experimental.statusOrFromValue([{ addresses: [{ host: "b", port: 2 }] }, { addresses: [{ host: "a", port: 1 }] }]),
      new AnchorRoundRobinConfig(2),
      { "grpc_anchor.max_connections": 3 },
      ""
    )
    expect(h.subchannels.map((s) => s.address)).toEqual(["a:1", "a:1"])
    expect(h.last().state).toBe(State.CONNECTING)
  })

  it("reports a bad policy config value as a failure naming the setting", () => {
    const h = harness({}, new AnchorRoundRobinConfig(1, { startWaitMs: -1 }))
    h.resolve("t", [["a:1", 1]])
    expect(h.subchannels).toEqual([])
    expect(h.last().error).toBe("anchor_round_robin: policy config field startWaitMs must be a whole number from 0 to 60000, got -1")
  })

  // Code compiled without exactOptionalPropertyTypes may pass undefined for a field.
  it("takes a config field given as undefined as unset: the channel option applies (as in 0.2)", () => {
    const h = harness({ "grpc_anchor.max_connections": 1 }, new AnchorRoundRobinConfig(1, { startWaitMs: undefined, maxConnections: undefined } as {}))
    h.resolve("t", [["a:1", 1], ["b:2", 1]])
    expect(h.subchannels.map((s) => s.address)).toEqual(["a:1"])
  })

  it("reports a bad channel option as a failure naming it", () => {
    const h = harness({ "grpc_anchor.max_connections": 0 })
    h.resolve("t", [["a:1", 1]])
    expect(h.last().state).toBe(State.TRANSIENT_FAILURE)
    expect(h.last().error).toContain("grpc_anchor.max_connections must be a whole number from 1 to 1000000, got 0")
  })

  it.each([
    ["grpc_anchor.hung_after_ms", -5, "grpc_anchor.hung_after_ms must be a whole number from 0 to 3600000, got -5"],
    ["grpc_anchor.ewma_decay_ms", 0.5, "grpc_anchor.ewma_decay_ms must be a whole number from 1 to 3600000, got 0.5"]
  ])("reports a bad %s as a failure naming it", (key, value, message) => {
    const h = harness({ [key]: value })
    h.resolve("t", [["a:1", 1]])
    expect(h.last().state).toBe(State.TRANSIENT_FAILURE)
    expect(h.last().error).toContain(message)
  })

  it("keeps READY backends an update removes all at once for grpc_anchor.removal_grace_ms, and removes one of several at once", () => {
    vi.useFakeTimers()
    try {
      const h = harness({ "grpc_anchor.removal_grace_ms": 5_000 })
      h.resolve("etcd:///svc", [["a:1", 1], ["b:2", 1], ["c:3", 1]])
      const [a, b, c] = h.subchannels
      for (const s of [a, b, c]) s!.set(State.READY)
      h.resolve("etcd:///svc", [["a:1", 1], ["b:2", 1]]) // one deregistered: gone at once
      expect(c!.refs).toBe(0)
      expect(new Set(h.pickAddresses(4))).toEqual(new Set([a, b]))
      h.resolve("etcd:///svc", []) // the registry lost every record
      expect(h.last().state).toBe(State.READY)
      expect(new Set(h.pickAddresses(4))).toEqual(new Set([a, b]))
      vi.advanceTimersByTime(5_000)
      expect([a!.refs, b!.refs]).toEqual([0, 0])
      expect(h.last().state).toBe(State.TRANSIENT_FAILURE)
      expect(h.last().error).toContain("no addresses for etcd:///svc")
    } finally {
      vi.useRealTimers()
    }
  })

  it("opens a large pool over several event-loop turns, never more than 16 subchannels and connects in one", async () => {
    const h = harness({ "grpc_anchor.start_wait_ms": 0 })
    h.resolve("t", [["a:1", 100]])
    expect(h.subchannels.length).toBe(16)
    let turns = 0
    while (h.subchannels.length < 100 || h.subchannels.some((s) => s.state === State.IDLE)) {
      const before = h.subchannels.length + h.subchannels.filter((s) => s.connects > 0).length
      await new Promise((resolve) => setImmediate(resolve))
      const after = h.subchannels.length + h.subchannels.filter((s) => s.connects > 0).length
      expect(after - before).toBeLessThanOrEqual(16)
      expect(++turns).toBeLessThan(50)
    }
    expect(h.subchannels.every((s) => s.refs === 1 && s.connects === 1)).toBe(true)
    h.subchannels[42]!.set(State.READY)
    expect(h.pickAddresses(3)).toEqual([h.subchannels[42], h.subchannels[42], h.subchannels[42]])
  })

  it("still opens the slots of an address the mass-removal grace keeps while they wait for their turn", async () => {
    const h = harness()
    h.resolve("etcd:///svc", [["a:1", 40]])
    expect(h.subchannels.length).toBe(16)
    h.subchannels[0]!.set(State.READY)
    h.resolve("etcd:///svc", []) // every READY backend dropped at once: kept for the grace period
    for (let turn = 0; turn < 10 && h.subchannels.length < 40; turn++) await new Promise((resolve) => setImmediate(resolve))
    expect(h.subchannels.map((s) => s.address)).toEqual(new Array(40).fill("a:1"))
    h.balancer.destroy()
  })

  it("exitIdle (called by grpc-js on every call) never steps the core: nothing waits for it", () => {
    const h = harness()
    h.resolve("t", [["a:1", 2]])
    const feed = vi.spyOn(h.balancer as unknown as { feed: (event: unknown) => void }, "feed")
    const connects = h.subchannels.map((s) => s.connects)
    h.balancer.exitIdle()
    expect(feed).not.toHaveBeenCalled()
    expect(h.subchannels.map((s) => s.connects)).toEqual(connects)
    feed.mockRestore()
  })

  it("traces its decisions under GRPC_TRACE=anchor_round_robin", async () => {
    const { execFile } = await import("node:child_process")
    const script = `
      import * as grpc from "@grpc/grpc-js"
      const { AnchorRoundRobinConfig } = await import("./src/adapters/grpc/AnchorRoundRobin.ts")
      const { AnchorRoundRobinLoadBalancer } = await import("./src/adapters/grpc/internal/loadBalancer.ts")
      let listener
      const sub = { getConnectivityState: () => 0, addConnectivityStateListener: (l) => { listener = l }, removeConnectivityStateListener() {}, startConnecting() {}, ref() {}, unref() {}, isHealthy: () => true, addHealthStateWatcher() {}, removeHealthStateWatcher() {}, getChannelzRef: () => ({}) }
      const helper = { createSubchannel: () => sub, updateState() {}, requestReresolution() {}, addChannelzChild() {}, removeChannelzChild() {} }
      const lb = new AnchorRoundRobinLoadBalancer(helper)
      lb.updateAddressList(grpc.experimental.statusOrFromValue([{ addresses: [{ host: "10.0.0.1", port: 1 }] }]), new AnchorRoundRobinConfig(), {}, "")
      listener(sub, 0, 3, -1, "connect ECONNREFUSED")
      lb.destroy()
    `
    const stderr = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ["--import", "tsx", "--input-type=module", "-e", script],
        { cwd: new URL("../..", import.meta.url).pathname, env: { ...process.env, GRPC_TRACE: "anchor_round_robin", GRPC_VERBOSITY: "DEBUG" }, timeout: 30_000 },
        (error, _stdout, stderr) => (error ? reject(error) : resolve(stderr))
      )
    )
    const lines = stderr.split("\n").filter((line) => line.includes("| anchor_round_robin |")).map((line) => line.split("| anchor_round_robin | ")[1])
    expect(lines).toEqual([
      "create 10.0.0.1:1#0",
      "channel IDLE -> CONNECTING",
      "10.0.0.1:1#0 IDLE -> TRANSIENT_FAILURE (connect ECONNREFUSED)",
      "start: every first connection attempt settled; serving",
      "channel CONNECTING -> TRANSIENT_FAILURE: anchor_round_robin: no ready connection to the channel's target (1 connections failing; last error: connect ECONNREFUSED)"
    ])
  })
})
