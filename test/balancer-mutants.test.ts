/**
 * Fast tests for bugs the other suites let through (issue 15's planted bugs
 * and StrykerJS's surviving mutants, `npm run test:mutation`), each named by
 * the bug it catches.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Balancer from "../src/core/Balancer.js"

const addresses = (now: number, list: ReadonlyArray<readonly [string, number]>, overCap: "fail" | "keepFirst" = "fail"): Extract<Balancer.Event, { _tag: "Addresses" }> => ({
  _tag: "Addresses",
  now,
  target: "pass:///",
  endpoints: list.map(([address, count]) => ({ address, count })),
  overCap,
  offset: 0
})

describe("Balancer: bugs the integration tests alone used to catch", () => {
  it.each([
    { total: 4, refused: false },
    { total: 5, refused: true }
  ])("the cap of 4 connections is inclusive: $total asked, refused $refused (cap check > vs >=)", ({ refused, total }) => {
    const b = Balancer.make({ maxConnections: 4, startWaitMs: 0 })
    const out = Balancer.step(b, addresses(0, [["a:1", total]]))
    expect(out.create.length).toBe(refused ? 0 : total)
    expect(Result.isFailure(Balancer.checkCap([{ address: "a:1", count: total }], 4))).toBe(refused)
  })

  it("a grown count kept over a new list is capped exactly at the limit (cap with grown counts)", () => {
    const b = Balancer.make({ maxConnections: 3, startWaitMs: 0, maxStreamsPerConnection: 1 })
    const first = Balancer.step(b, { ...addresses(0, []), endpoints: [{ address: "a:1", count: 1, maxCount: 2 }] })
    Balancer.step(b, { _tag: "StateChanged", now: 1, slot: first.create[0]!.id, state: "READY" })
    Balancer.callStarted(b, Balancer.pick(b))
    expect(Balancer.callStarted(b, Balancer.pick(b))).toBe(true)
    expect(Balancer.step(b, { _tag: "CallsWaiting", now: 2 }).create).toHaveLength(1)
    // 2 (grown) + 1 = 3: exactly the cap, so the grown connection stays.
    const out = Balancer.step(b, { ...addresses(3, []), endpoints: [{ address: "a:1", count: 1, maxCount: 2 }, { address: "b:1", count: 1 }] })
    expect(out.remove).toHaveLength(0)
    expect(Balancer.slots(b)).toHaveLength(3)
  })

  it("a removed READY slot leaves its address's READY count (forget): no grace for an address with nothing READY", () => {
    // removalThreshold 0: any drop of an address with a READY connection is a mass removal.
    const b = Balancer.make({ startWaitMs: 0, removalThreshold: 0 })
    const ids = (out: Balancer.Output) => new Map(out.create.map((s) => [`${s.address}#${s.index}`, s.id]))
    const slots = ids(Balancer.step(b, addresses(0, [["a:1", 2], ["b:1", 1]])))
    for (const id of slots.values()) Balancer.step(b, { _tag: "StateChanged", now: 1, slot: id, state: "READY" })
    // a:1#1 is removed while READY, then a:1#0 fails: a:1 has no READY connection left.
    expect(Balancer.step(b, addresses(2, [["a:1", 1], ["b:1", 1]])).remove).toEqual([slots.get("a:1#1")])
    Balancer.step(b, { _tag: "StateChanged", now: 3, slot: slots.get("a:1#0")!, state: "TRANSIENT_FAILURE" })
    Balancer.step(b, addresses(4, [["b:1", 1]]))
    expect(Balancer.hasAddress(b, "a:1")).toBe(false)
  })

  it("the grace keeps an address that is READY when the list drops it (grace, the other direction)", () => {
    const b = Balancer.make({ startWaitMs: 0, removalThreshold: 0 })
    const out = Balancer.step(b, addresses(0, [["a:1", 1], ["b:1", 1]]))
    for (const slot of out.create) Balancer.step(b, { _tag: "StateChanged", now: 1, slot: slot.id, state: "READY" })
    Balancer.step(b, addresses(2, [["b:1", 1]]))
    expect(Balancer.hasAddress(b, "a:1")).toBe(true)
    // The grace ends: the address goes.
    Balancer.step(b, { _tag: "TimerFired", now: 2 + Balancer.DEFAULT_REMOVAL_GRACE_MS })
    expect(Balancer.hasAddress(b, "a:1")).toBe(false)
  })

  it("a call's end gives back its stream: full and waiting counts go down (callEnded)", () => {
    const b = Balancer.make({ startWaitMs: 0, maxStreamsPerConnection: 1 })
    const first = Balancer.step(b, { ...addresses(0, []), endpoints: [{ address: "a:1", count: 1, maxCount: 2 }] })
    Balancer.step(b, { _tag: "StateChanged", now: 1, slot: first.create[0]!.id, state: "READY" })
    const c1 = Balancer.pick(b)
    expect(Balancer.callStarted(b, c1)).toBe(false)
    const c2 = Balancer.pick(b)
    expect(Balancer.callStarted(b, c2)).toBe(true) // one connection full, one call waits
    // The waiting call ended before the step: nobody waits, nothing opens.
    Balancer.callEnded(b, c2)
    expect(Balancer.step(b, { _tag: "CallsWaiting", now: 2 }).create).toHaveLength(0)
    // Every call ended: the same two calls again ask again.
    Balancer.callEnded(b, c1)
    expect(Balancer.callStarted(b, Balancer.pick(b))).toBe(false)
    expect(Balancer.callStarted(b, Balancer.pick(b))).toBe(true)
    expect(Balancer.step(b, { _tag: "CallsWaiting", now: 3 }).create).toHaveLength(1)
  })
})
