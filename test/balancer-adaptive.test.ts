/**
 * Adaptive counts (`#MIN..MAX`) rule by rule, for the changes StrykerJS
 * found no test noticing (`npm run test:mutation`): the busy flag of the
 * shrink check, the stream counts a call's end gives back, one growth
 * request at a time, the cap between two addresses growing at once, and the
 * least_request pending count a started call takes over.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Balancer from "../src/core/Balancer.js"
import type * as Expansion from "../src/core/Expansion.js"

/** A serving pool of `endpoints`, every connection READY; `id("a:1#0")` names a slot. */
const pool = (endpoints: ReadonlyArray<Expansion.Weighted>, options: Partial<Balancer.Options> = {}) => {
  const b = Balancer.make({ startWaitMs: 0, ...options })
  const ids = new Map<string, number>()
  let now = 0
  const apply = (out: Balancer.Output) => {
    for (const slot of out.create) {
      ids.set(`${slot.address}#${slot.index}`, slot.id)
      Balancer.step(b, { _tag: "StateChanged", now, slot: slot.id, state: "READY" })
    }
    return out
  }
  apply(Balancer.step(b, { _tag: "Addresses", now, target: "etcd:///svc", endpoints, overCap: "keepFirst", offset: 0 }))
  return {
    b,
    id: (key: string) => ids.get(key)!,
    /** Starts a call on `key` (as grpc-js reports one after a pick); returns whether it asks to grow. */
    start: (key: string) => Balancer.callStarted(b, ids.get(key)!),
    end: (key: string) => Balancer.callEnded(b, ids.get(key)!),
    /** A CallsWaiting step; new connections are READY at once. */
    grow: () => apply(Balancer.step(b, { _tag: "CallsWaiting", now })),
    advance: (ms: number) => {
      now += ms
      return Balancer.step(b, { _tag: "TimerFired", now })
    },
    inFlight: (key: string) => Balancer.slots(b).find((s) => s.id === ids.get(key))!.inFlight,
    count: () => Balancer.slots(b).length
  }
}

/** a:1 at 1..3 with 2 streams a connection, grown to 2 connections (3 calls started on a:1#0, then ended). */
const grown = () => {
  const p = pool([{ address: "a:1", count: 1, maxCount: 3 }], { maxStreamsPerConnection: 2, shrinkIdleMs: 1_000 })
  p.start("a:1#0")
  p.start("a:1#0")
  expect(p.start("a:1#0")).toBe(true)
  expect(p.grow().create).toHaveLength(1)
  for (let i = 0; i < 3; i++) p.end("a:1#0")
  return p
}

describe("Balancer adaptive counts: the shrink check", () => {
  it("keeps a connection when the calls went over what one connection fewer carries during the period, even if they ended before the check", () => {
    const p = grown()
    // 3 in flight on 2 connections > 1 connection's 2 streams: busy in this period.
    for (let i = 0; i < 3; i++) p.start("a:1#1")
    for (let i = 0; i < 3; i++) p.end("a:1#1")
    expect(p.advance(1_000).remove).toHaveLength(0)
    // The next period is quiet: the extra connection closes.
    expect(p.advance(1_000).remove).toHaveLength(1)
    expect(p.count()).toBe(1)
  })

  it("closes it when the calls reached exactly what one connection fewer carries (not busy)", () => {
    const p = grown()
    p.start("a:1#1")
    p.start("a:1#1")
    p.end("a:1#1")
    p.end("a:1#1")
    expect(p.advance(1_000).remove).toHaveLength(1)
  })
})

describe("Balancer adaptive counts: re-listing", () => {
  it("neither postpones the shrink check nor forgets that the period was busy when the same list comes again", () => {
    const p = grown() // the check is due at 1,000
    for (let i = 0; i < 3; i++) p.start("a:1#1")
    for (let i = 0; i < 3; i++) p.end("a:1#1")
    p.advance(500)
    const again = Balancer.step(p.b, { _tag: "Addresses", now: 500, target: "etcd:///svc", endpoints: [{ address: "a:1", count: 1, maxCount: 3 }], overCap: "keepFirst", offset: 0 })
    expect(again.wakeAt).toBe(1_000)
    expect(p.advance(500).remove).toHaveLength(0) // busy
  })
})

describe("Balancer adaptive counts: call accounting", () => {
  it("ignores the end of a call on a slot it does not know, and never counts below zero", () => {
    const p = pool([{ address: "a:1", count: 1 }])
    expect(() => Balancer.callEnded(p.b, 12_345)).not.toThrow()
    expect(Balancer.callStarted(p.b, 12_345)).toBe(false)
    p.start("a:1#0")
    p.end("a:1#0")
    p.end("a:1#0")
    expect(p.inFlight("a:1#0")).toBe(0)
  })

  it("gives back a waiting call's place only when a call over the limit ends: calls that ended below it leave the next wait counted", () => {
    const p = pool([{ address: "a:1", count: 1, maxCount: 2 }], { maxStreamsPerConnection: 2 })
    p.start("a:1#0")
    p.end("a:1#0") // ended at 1 call: neither full nor waiting changes
    p.start("a:1#0")
    p.start("a:1#0")
    expect(p.start("a:1#0")).toBe(true) // a call waits: grow
  })

  it("asks for one growth at a time: while a CallsWaiting is due, more waiting calls do not ask again", () => {
    const p = pool([{ address: "a:1", count: 1, maxCount: 3 }], { maxStreamsPerConnection: 1 })
    p.start("a:1#0")
    expect(p.start("a:1#0")).toBe(true)
    expect(p.start("a:1#0")).toBe(false)
    expect(p.grow().create).toHaveLength(1)
  })

  it("re-checks at the step that every connection is still full: a call that ended on one of them cancels the growth", () => {
    const p = grown() // 2 connections, 2 streams each
    p.start("a:1#0")
    p.start("a:1#0")
    p.start("a:1#1")
    expect(p.start("a:1#1")).toBe(false) // full, nobody waits
    expect(p.start("a:1#0")).toBe(true) // a call waits
    p.end("a:1#1") // a:1#1 has a free stream again
    expect(p.grow().create).toHaveLength(0)
  })

  it("does not grow past a maximum that a list lowered after the growth was asked for", () => {
    const p = pool([{ address: "a:1", count: 1, maxCount: 3 }], { maxStreamsPerConnection: 1 })
    p.start("a:1#0")
    expect(p.start("a:1#0")).toBe(true)
    Balancer.step(p.b, { _tag: "Addresses", now: 0, target: "etcd:///svc", endpoints: [{ address: "a:1", count: 1 }], overCap: "keepFirst", offset: 0 })
    expect(p.grow().create).toHaveLength(0)
  })

  it("grows only as far as the cap when two saturated addresses ask in the same turn", () => {
    const p = pool([{ address: "a:1", count: 1, maxCount: 2 }, { address: "b:1", count: 1, maxCount: 2 }], { maxStreamsPerConnection: 1, maxConnections: 3 })
    p.start("a:1#0")
    expect(p.start("a:1#0")).toBe(true)
    p.start("b:1#0")
    expect(p.start("b:1#0")).toBe(true)
    const out = p.grow()
    expect(out.create).toHaveLength(1)
    expect(p.count()).toBe(3)
  })

  it("a CallsWaiting that opens nothing rebuilds nothing (O(1) whatever the pool's size)", () => {
    const endpoints = [{ address: "a:1", count: 1, maxCount: 2 }, ...Array.from({ length: 2_000 }, (_, i) => ({ address: `10.0.${i >> 8}.${i & 255}:1`, count: 1 }))]
    const p = pool(endpoints, { maxStreamsPerConnection: 1 })
    p.start("a:1#0")
    expect(p.start("a:1#0")).toBe(true)
    p.end("a:1#0") // the waiting call ended before the step
    const before = Balancer.work(p.b)
    expect(p.grow().create).toHaveLength(0)
    expect(Balancer.work(p.b) - before).toBeLessThan(10)
  })

  it("a started call takes over its least_request pick's pending count, and only its own (no negative counts)", () => {
    // a:1#0 carries 3 started calls, b:1#0 one: with both compared on every pick (2 connections), b:1#0 wins.
    for (let offset = 0; offset < 10; offset++) {
      const b = Balancer.make({ startWaitMs: 0, pickMode: "least_request" })
      const out = Balancer.step(b, { _tag: "Addresses", now: 0, target: "t", endpoints: [{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }], overCap: "fail", offset })
      const [a, bb] = out.create.map((s) => s.id)
      for (const id of [a!, bb!]) Balancer.step(b, { _tag: "StateChanged", now: 0, slot: id, state: "READY" })
      for (let i = 0; i < 3; i++) Balancer.callStarted(b, a!)
      Balancer.callStarted(b, bb!)
      expect(Balancer.pick(b)).toBe(bb)
    }
  })
})

describe("Balancer adaptive counts: the mass-removal grace", () => {
  it("does not grow an address kept only by the grace, even when its connections are full and calls wait", () => {
    const p = pool([{ address: "a:1", count: 1, maxCount: 4 }], { maxStreamsPerConnection: 2 })
    // The registry drops a:1 (its only READY address): the grace keeps it.
    const out = Balancer.step(p.b, { _tag: "Addresses", now: 0, target: "etcd:///svc", endpoints: [{ address: "c:3", count: 1, maxCount: 2 }], overCap: "keepFirst", offset: 0 })
    expect(out.remove).toHaveLength(0)
    expect(Balancer.hasAddress(p.b, "a:1")).toBe(true)
    // a:1's one connection saturated: 3 calls on 2 streams.
    const asked = [p.start("a:1#0"), p.start("a:1#0"), p.start("a:1#0")]
    expect(asked).toEqual([false, false, false])
    expect(Balancer.step(p.b, { _tag: "CallsWaiting", now: 0 }).create.filter((s) => s.address === "a:1")).toEqual([])
  })
})
