/**
 * The balancer's wake-ups (src/core/balancer/deadlines.ts), for the changes
 * StrykerJS found no test noticing (`npm run test:mutation`): deadlines due
 * at the same time run in the order they were set, the queues do not grow
 * with deadlines that went stale, and a wake-up is never asked for a
 * deadline that no longer applies (an address gone, a redirection window
 * over).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Balancer from "../src/core/Balancer.js"
import { impl } from "../src/core/balancer/state.js"
import type * as Expansion from "../src/core/Expansion.js"

/** Drives one balancer with a clock the test moves; slots named `address#index`. */
const drive = (options: Partial<Balancer.Options> = {}) => {
  const b = Balancer.make({ trace: true, ...options })
  const ids = new Map<string, number>()
  let now = 0
  const record = (out: Balancer.Output) => {
    for (const slot of out.create) ids.set(`${slot.address}#${slot.index}`, slot.id)
    return out
  }
  return {
    b,
    update: (endpoints: ReadonlyArray<Expansion.Weighted>) =>
      record(Balancer.step(b, { _tag: "Addresses", now, target: "etcd:///svc", endpoints, overCap: "keepFirst", offset: 0 })),
    set: (key: string, state: Balancer.ConnectionState) => record(Balancer.step(b, { _tag: "StateChanged", now, slot: ids.get(key)!, state })),
    ready: (...keys: ReadonlyArray<string>) => keys.map((key) => Balancer.step(b, { _tag: "StateChanged", now, slot: ids.get(key)!, state: "READY" })),
    start: (key: string) => Balancer.callStarted(b, ids.get(key)!),
    advance: (ms: number) => {
      now += ms
      return record(Balancer.step(b, { _tag: "TimerFired", now }))
    },
    grow: () => record(Balancer.step(b, { _tag: "CallsWaiting", now }))
  }
}

const one = (address: string, count = 1): Expansion.Weighted => ({ address, count })

describe("Balancer deadlines", () => {
  it("runs deadlines due at the same time in the order they were set: the start wait, then a later suspicion", () => {
    const d = drive({ startWaitMs: 1_000, suspicionMs: 1_000 })
    d.update([one("a:1", 2), one("b:1")]) // b:1 never answers: the start waits
    d.ready("a:1#0", "a:1#1")
    d.set("a:1#0", "IDLE") // a:1#1 suspect until 1,000, like the start wait
    const trace = d.advance(1_000).trace
    const start = trace.findIndex((line) => line.startsWith("start: waited"))
    const lapse = trace.indexOf("a:1: suspicion lapsed")
    expect(start).toBeGreaterThanOrEqual(0)
    expect(lapse).toBeGreaterThan(start)
  })

  it("runs deadlines due at the same time in the order they were set: a grace end, then a later suspicion", () => {
    const d = drive({ startWaitMs: 0, removalGraceMs: 1_000, suspicionMs: 500 })
    d.update([one("a:1", 2), one("b:1"), one("c:1")])
    d.ready("a:1#0", "a:1#1", "b:1#0", "c:1#0")
    d.update([one("a:1", 2)]) // drops 2 of 3 READY addresses: kept until 1,000
    d.advance(500)
    d.set("a:1#0", "IDLE") // a:1#1 suspect until 1,000
    const trace = d.advance(500).trace
    const graceOver = trace.indexOf("b:1: removal grace over; removed")
    const lapse = trace.indexOf("a:1: suspicion lapsed")
    expect(graceOver).toBeGreaterThanOrEqual(0)
    expect(lapse).toBeGreaterThan(graceOver)
  })

  it("keeps its queues small while deadlines go stale without ever being due (1,000 suspicions cleared by a reconnect)", () => {
    const d = drive({ startWaitMs: 0, trace: false })
    d.update([one("a:1", 2)])
    d.ready("a:1#0", "a:1#1")
    for (let i = 0; i < 1_000; i++) {
      expect(d.set("a:1#0", "IDLE").wakeAt).toBe(Balancer.SUSPICION_MS)
      expect(d.set("a:1#0", "READY").wakeAt).toBeUndefined()
    }
    for (const queue of impl(d.b).deadlines) expect(queue.items.length).toBeLessThanOrEqual(130)
  })

  it("asks no wake-up for the shrink check of an address that left the pool", () => {
    const d = drive({ startWaitMs: 0, maxStreamsPerConnection: 1, shrinkIdleMs: 1_000 })
    d.update([{ address: "a:1", count: 1, maxCount: 2 }, one("b:1"), one("c:1")])
    d.ready("a:1#0", "b:1#0", "c:1#0")
    d.start("a:1#0")
    expect(d.start("a:1#0")).toBe(true)
    expect(d.grow().wakeAt).toBe(1_000) // the shrink check
    // One address of three leaves: at once (no grace), and its check with it.
    const out = d.update([one("b:1"), one("c:1")])
    expect(out.remove).toHaveLength(2)
    expect(out.wakeAt).toBeUndefined()
  })

  it("asks no wake-up for a redirection window that ended, over two windows in a row", () => {
    const d = drive({ startWaitMs: 0 })
    d.update([one("a:1"), one("b:1")])
    d.ready("a:1#0", "b:1#0")
    d.advance(500)
    for (let window = 0; window < 2; window++) {
      d.start("a:1#0")
      // a:1#0 ends with a call in flight: a window until its replacement answers, at most 1 s.
      expect(d.set("a:1#0", "IDLE").wakeAt).toBe(500 + Balancer.DEFAULT_REPLACEMENT_WAIT_MS + window * 10)
      d.set("a:1#0", "CONNECTING")
      expect(d.set("a:1#0", "READY").wakeAt).toBe(500 + window * 10) // ends at the next wake-up
      expect(d.advance(0).wakeAt).toBeUndefined()
      d.advance(10)
    }
  })
  it("asks no wake-up for a window that ended after two connections ended in it", () => {
    const d = drive({ startWaitMs: 0 })
    d.update([one("a:1"), one("b:1"), one("c:1")])
    d.ready("a:1#0", "b:1#0", "c:1#0")
    d.advance(500)
    d.start("a:1#0")
    d.start("b:1#0")
    d.set("a:1#0", "IDLE")
    d.advance(10)
    expect(d.set("b:1#0", "IDLE").wakeAt).toBe(1_510) // the later end's bound replaces a:1#0's (1,500)
    for (const key of ["a:1#0", "b:1#0"]) {
      d.set(key, "CONNECTING")
      d.set(key, "READY")
    }
    expect(d.advance(0).wakeAt).toBeUndefined()
  })
  it("asks no wake-up for the end of a window that a new end in the same turn reopened", () => {
    const d = drive({ startWaitMs: 0 })
    d.update([one("a:1"), one("b:1"), one("c:1")])
    d.ready("a:1#0", "b:1#0", "c:1#0")
    d.advance(500)
    d.start("a:1#0")
    d.set("a:1#0", "IDLE")
    d.set("a:1#0", "CONNECTING")
    expect(d.set("a:1#0", "READY").wakeAt).toBe(500) // every replacement answered: ends at the next wake-up
    d.start("b:1#0")
    expect(d.set("b:1#0", "IDLE").wakeAt).toBe(1_500) // b:1#0's replacement is awaited now
  })
})
