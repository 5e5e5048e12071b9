/**
 * The balancer's trace lines (what `GRPC_TRACE=anchor_round_robin` prints),
 * event by event through scripted scenarios that reach every kind of line:
 * slots opened and released, state changes with their errors, health, the
 * start (settled and waited), suspicion (set, cleared, lapsed), resolver
 * errors, the pick mode, the cap (refused, trimmed, with the grace), the
 * mass-removal grace, growth and shrink checks, retries after a connection
 * ends. StrykerJS (`npm run test:mutation`) found the text of most of these
 * lines unchecked.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Balancer from "../src/core/Balancer.js"
import type * as Expansion from "../src/core/Expansion.js"

const drive = (options: Partial<Balancer.Options> = {}) => {
  const b = Balancer.make({ trace: true, ...options })
  const ids = new Map<string, number>()
  let now = 0
  const record = (out: Balancer.Output) => {
    for (const slot of out.create) ids.set(`${slot.address}#${slot.index}`, slot.id)
    return out.trace
  }
  return {
    b,
    list: (endpoints: ReadonlyArray<Expansion.Weighted>, extra: Partial<Extract<Balancer.Event, { _tag: "Addresses" }>> = {}) =>
      record(Balancer.step(b, { _tag: "Addresses", now, target: "etcd:///svc", endpoints, overCap: "keepFirst", offset: 0, ...extra })),
    set: (key: string, state: Balancer.ConnectionState, error?: string) => record(Balancer.step(b, { _tag: "StateChanged", now, slot: ids.get(key)!, state, error })),
    health: (key: string, healthy: boolean) => record(Balancer.step(b, { _tag: "HealthChanged", now, slot: ids.get(key)!, healthy })),
    resolverError: (message: string) => record(Balancer.step(b, { _tag: "ResolverError", now, message })),
    advance: (ms: number) => {
      now += ms
      return record(Balancer.step(b, { _tag: "TimerFired", now }))
    },
    start: (key: string) => Balancer.callStarted(b, ids.get(key)!),
    end: (key: string) => Balancer.callEnded(b, ids.get(key)!),
    grow: () => record(Balancer.step(b, { _tag: "CallsWaiting", now }))
  }
}

const one = (address: string, count = 1, maxCount?: number): Expansion.Weighted => (maxCount === undefined ? { address, count } : { address, count, maxCount })

describe("Balancer trace lines", () => {
  it("tell the start, state changes, health, suspicion and resolver errors", () => {
    const d = drive({ startWaitMs: 250 })
    expect(d.resolverError("no etcd")).toEqual(["resolver error with no addresses: no etcd", "channel IDLE -> TRANSIENT_FAILURE: anchor_round_robin: no etcd"])
    expect(d.list([one("a:1", 2), one("b:1")])).toEqual(["create a:1#0", "create b:1#0", "create a:1#1", "channel TRANSIENT_FAILURE -> CONNECTING"])
    expect(d.set("a:1#0", "CONNECTING")).toEqual(["a:1#0 IDLE -> CONNECTING"])
    expect(d.set("a:1#0", "READY")).toEqual(["a:1#0 CONNECTING -> READY"])
    expect(d.set("b:1#0", "TRANSIENT_FAILURE", "connect ECONNREFUSED")).toEqual(["b:1#0 IDLE -> TRANSIENT_FAILURE (connect ECONNREFUSED)"])
    expect(d.set("a:1#1", "READY")).toEqual([
      "a:1#1 IDLE -> READY",
      "start: every first connection attempt settled; serving",
      "channel CONNECTING -> READY"
    ])
    expect(d.health("a:1#1", false)).toEqual(["a:1#1 unhealthy (ejected)"])
    expect(d.health("a:1#1", true)).toEqual(["a:1#1 healthy"])
    expect(d.set("a:1#0", "IDLE")).toEqual(["a:1#0 READY -> IDLE", "a:1: skipping 1 sibling connection(s) for up to 1000 ms"])
    expect(d.set("a:1#0", "READY")).toEqual(["a:1#0 IDLE -> READY", "a:1: reconnected; siblings used again"])
    d.set("a:1#0", "IDLE")
    expect(d.advance(1_000)).toEqual(["a:1: suspicion lapsed"])
    expect(d.resolverError("etcd down")).toEqual(["resolver error, keeping 3 connections: etcd down"])
    expect(d.list([one("a:1", 2), one("b:1")], { pick: "least_request" })).toEqual(["pick mode round_robin -> least_request"])
  })

  it("tell a start that waited, naming the attempts left unsettled", () => {
    const d = drive({ startWaitMs: 250 })
    d.list([one("a:1"), one("b:1")])
    d.set("a:1#0", "READY")
    expect(d.advance(250)).toEqual(["start: waited 250 ms (1 first attempt(s) unsettled); serving", "channel CONNECTING -> READY"])
  })

  it("tell the cap, the mass-removal grace and its end", () => {
    const d = drive({ startWaitMs: 0, maxConnections: 4, removalGraceMs: 1_000 })
    expect(d.list([one("a:1", 2), one("b:1", 3)], { overCap: "fail" })).toEqual([
      "refused: the target asks for 5 connections, over this channel's cap of 4: lower the #N counts or the number of addresses, or raise the channel option grpc_anchor.max_connections",
      "channel IDLE -> TRANSIENT_FAILURE: anchor_round_robin: etcd:///svc: the target asks for 5 connections, over this channel's cap of 4: lower the #N counts or the number of addresses, or raise the channel option grpc_anchor.max_connections"
    ])
    expect(d.list([one("c:1", 3), one("a:1", 2), one("b:1")])).toEqual([
      "over the cap of 4 connections (6 asked): kept 2 addresses in address order, left out 1: c:1",
      "create a:1#0",
      "create b:1#0",
      "create a:1#1",
      "channel TRANSIENT_FAILURE -> CONNECTING"
    ])
    d.set("a:1#0", "READY")
    d.set("b:1#0", "READY")
    expect(d.list([one("c:1", 3)])).toEqual([
      "mass removal: the update drops 2 of 2 addresses with READY connections; keeping a:1,b:1 for 1000 ms",
      "over the cap of 4 connections with the addresses kept by the grace: released now a:1",
      "release a:1#1",
      "release a:1#0",
      "create c:1#0",
      "create c:1#1",
      "create c:1#2"
    ])
    expect(d.advance(1_000)).toEqual(["b:1: removal grace over; removed", "release b:1#0", "channel READY -> CONNECTING"])
  })

  it("tell growth, the cap on growth and the shrink checks", () => {
    const d = drive({ startWaitMs: 0, maxStreamsPerConnection: 1, shrinkIdleMs: 1_000, maxConnections: 3 })
    d.list([one("a:1", 1, 3), one("b:1")])
    d.set("a:1#0", "READY")
    d.set("b:1#0", "READY")
    d.start("a:1#0")
    d.start("a:1#0")
    expect(d.grow()).toEqual(["a:1: every connection carries >= 1 calls and 2 are in flight; opening connection 2 of at most 3", "create a:1#1"])
    d.set("a:1#1", "READY")
    d.start("a:1#1")
    d.start("b:1#0")
    d.start("b:1#0")
    // A call waits on a:1 but the channel is at its cap of 3 (b:1 has a fixed count).
    expect(Balancer.callStarted(d.b, Balancer.slots(d.b).find((s) => s.address === "a:1" && s.index === 0)!.id)).toBe(false)
    expect(d.advance(1_000)).toEqual(["a:1: busy in the last 1000 ms; keeping 2 connections"])
    for (let i = 0; i < 3; i++) d.end("a:1#0")
    expect(d.advance(1_000)).toEqual(["a:1: connection 2 still carries 1 call(s); keeping it"])
    d.end("a:1#1")
    expect(d.advance(1_000)).toEqual(["a:1: not busy for 1000 ms; closing connection 2 (1 left, at least 1)", "release a:1#1"])
  })

  it("tell a saturated address at the cap", () => {
    const d = drive({ startWaitMs: 0, maxStreamsPerConnection: 1, maxConnections: 3 })
    d.list([one("a:1", 1, 2), one("b:1", 1, 2)])
    d.set("a:1#0", "READY")
    d.set("b:1#0", "READY")
    d.start("a:1#0")
    d.start("a:1#0")
    d.start("b:1#0")
    d.start("b:1#0")
    expect(d.grow()).toEqual([
      "a:1: every connection carries >= 1 calls and 2 are in flight; opening connection 2 of at most 2",
      "b:1: saturated, but the channel is at its cap of 3 connections",
      "create a:1#1"
    ])
  })

  it("tell where the retries go after a connection ends, and when that stops", () => {
    const d = drive({ startWaitMs: 0 })
    d.list([one("a:1"), one("b:1")])
    d.set("a:1#0", "CONNECTING")
    d.set("a:1#0", "READY")
    d.set("b:1#0", "READY")
    d.advance(600)
    d.start("a:1#0")
    d.start("a:1#0")
    expect(d.set("a:1#0", "IDLE")).toEqual([
      "a:1#0 READY -> IDLE",
      "a:1#0 ended after 600 ms with 2 call(s) in flight: the next 2 pick(s) go to connections opened at most 200 ms ago (or wait for one) until its replacement answers"
    ])
    d.set("a:1#0", "CONNECTING")
    expect(d.set("a:1#0", "READY")).toEqual(["a:1#0 CONNECTING -> READY", "a:1#0: the replacement answered READY; 0 still awaited"])
    expect(d.advance(0)).toEqual(["retries no longer redirected (every replacement answered; 2 pick(s) of the turn not redirected)"])
  })
})
