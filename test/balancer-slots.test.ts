/**
 * Slot bookkeeping and the ring (src/core/balancer/slots.ts, ring.ts), for
 * the changes StrykerJS found no test noticing (`npm run test:mutation`):
 * what a removed slot takes with it (its id for reuse, its place among the
 * READY connections, the replacement awaited for it) and where the round
 * robin starts (the first list's offset).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Balancer from "../src/core/Balancer.js"
import type * as Expansion from "../src/core/Expansion.js"

const list = (now: number, endpoints: ReadonlyArray<Expansion.Weighted>, offset = 0): Balancer.Event => ({
  _tag: "Addresses",
  now,
  target: "etcd:///svc",
  endpoints,
  overCap: "keepFirst",
  offset
})

const readyPool = (endpoints: ReadonlyArray<Expansion.Weighted>, offset = 0) => {
  const b = Balancer.make({ startWaitMs: 0, suspicionMs: 0 })
  const out = Balancer.step(b, list(0, endpoints, offset))
  for (const slot of out.create) Balancer.step(b, { _tag: "StateChanged", now: 0, slot: slot.id, state: "READY" })
  return { b, ids: new Map(out.create.map((s) => [`${s.address}#${s.index}`, s.id])) }
}

describe("Balancer slots", () => {
  it("reuses the id of a removed slot for the next new one", () => {
    const { b, ids } = readyPool([{ address: "a:1", count: 2 }])
    expect(Balancer.step(b, list(1, [{ address: "a:1", count: 1 }])).remove).toEqual([ids.get("a:1#1")])
    expect(Balancer.step(b, list(2, [{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }])).create.map((s) => s.id)).toEqual([ids.get("a:1#1")])
  })

  it("never redirects a retry to a removed connection, even the newest", () => {
    const b = Balancer.make({ startWaitMs: 0, suspicionMs: 0 })
    const ids = new Map(Balancer.step(b, list(0, [{ address: "a:1", count: 1 }, { address: "b:1", count: 2 }])).create.map((s) => [`${s.address}#${s.index}`, s.id]))
    for (const key of ["a:1#0", "b:1#0"]) Balancer.step(b, { _tag: "StateChanged", now: 0, slot: ids.get(key)!, state: "READY" })
    Balancer.step(b, { _tag: "StateChanged", now: 500, slot: ids.get("b:1#1")!, state: "READY" }) // the newest
    Balancer.step(b, list(600, [{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }])) // b:1#1 removed
    Balancer.callStarted(b, ids.get("a:1#0")!)
    Balancer.step(b, { _tag: "StateChanged", now: 600, slot: ids.get("a:1#0")!, state: "IDLE" })
    // Fresh means opened at 400 or later: only the removed b:1#1 was; the retry waits.
    expect(Balancer.pick(b)).toBe(-1)
  })

  it("stops awaiting the replacement of a connection the list removed: the window ends at the next wake-up", () => {
    const { b, ids } = readyPool([{ address: "a:1", count: 2 }, { address: "b:1", count: 1 }])
    Balancer.step(b, { _tag: "TimerFired", now: 500 })
    Balancer.callStarted(b, ids.get("a:1#1")!)
    expect(Balancer.step(b, { _tag: "StateChanged", now: 500, slot: ids.get("a:1#1")!, state: "IDLE" }).wakeAt).toBe(1_500)
    expect(Balancer.step(b, list(500, [{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }])).wakeAt).toBe(500)
  })
})

describe("Balancer ring", () => {
  it("starts the round robin at the first list's offset (modulo the ring)", () => {
    const endpoints = [{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }, { address: "c:1", count: 1 }]
    const first = (offset: number) => Balancer.pick(readyPool(endpoints, offset).b)
    const starts = [0, 1, 2].map(first)
    expect(new Set(starts).size).toBe(3)
    expect([3, 4, 5].map(first)).toEqual(starts)
    expect([-3, -2, -1].map(first)).toEqual(starts)
  })
})
