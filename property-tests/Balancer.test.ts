/**
 * Properties of the pool state machine beyond its reference model (the model
 * itself is in BalancerModel.test.ts): a connectivity event costs a bounded
 * amount of work at any pool size; least_request's shares and in-flight
 * counts; adaptive counts within their ranges and the cap; retries after a
 * connection ends go to fresh connections.
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as Balancer from "../src/core/Balancer.js"
import type * as Expansion from "../src/core/Expansion.js"

const ADDRESSES = ["a:1", "b:2", "c:3", "d:4", "e:5", "f:6"]
const STATES: ReadonlyArray<Balancer.ConnectionState> = ["IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE", "SHUTDOWN"]
const WORK_BOUND = 64

describe("Balancer cost", () => {
  it("costs a bounded amount of work per connectivity event on a pool of 5,000 connections", () => {
    const b = Balancer.make({ startWaitMs: 0 })
    const out = Balancer.step(b, {
      _tag: "Addresses",
      now: 0,
      target: "t",
      endpoints: Array.from({ length: 2_500 }, (_, i) => ({ address: `h${i}:1`, count: 2 })),
      overCap: "keepFirst",
      offset: 0
    })
    const ids = out.create.map((s) => s.id)
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(ids.length - 1), fc.constantFrom(...STATES), fc.boolean()), { minLength: 1, maxLength: 200 }),
        (events) => {
          for (const [i, state, health] of events) {
            const before = Balancer.work(b)
            Balancer.step(b, health ? { _tag: "HealthChanged", now: 0, slot: ids[i]!, healthy: state !== "SHUTDOWN" } : { _tag: "StateChanged", now: 0, slot: ids[i]!, state })
            Balancer.pick(b)
            expect(Balancer.work(b) - before).toBeLessThanOrEqual(WORK_BOUND)
          }
        }
      ),
      { numRuns: 100 }
    )
  })
})

/** A READY pool of `endpoints` (every slot READY), serving at once. */
const readyPool = (endpoints: ReadonlyArray<Expansion.Weighted>, options: Partial<Balancer.Options>, offset = 0) => {
  const b = Balancer.make({ startWaitMs: 0, ...options })
  const out = Balancer.step(b, { _tag: "Addresses", now: 0, target: "pass:///x", endpoints, overCap: "fail", offset })
  for (const slot of out.create) Balancer.step(b, { _tag: "StateChanged", now: 0, slot: slot.id, state: "READY" })
  return b
}

describe("least_request", () => {
  it("with equal service times, the long-run shares follow the counts", () => {
    // Each tick starts `rate` calls, each ending exactly `service` ticks later (equal service
    // times). Connections are exchangeable, so each gets the same expected share and an address
    // count/total of the picks. The tolerance is 5 standard deviations of uniform independent
    // draws (binomial): the in-flight comparison only pulls the counts closer together.
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 2, maxLength: 4 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 6 }),
        fc.nat(),
        (counts, rate, service, seed) => {
          const endpoints = counts.map((count, i) => ({ address: `10.0.0.${i}:1`, count }))
          const b = readyPool(endpoints, { pickMode: "least_request" }, seed)
          const address = new Map(Balancer.slots(b).map((s) => [s.id, s.address]))
          const picks = new Map<string, number>()
          const ending: Array<Array<number>> = Array.from({ length: service + 1 }, () => [])
          const ticks = Math.ceil(4_000 / rate)
          for (let t = 0; t < ticks; t++) {
            for (const id of ending[t % (service + 1)]!) Balancer.callEnded(b, id)
            ending[t % (service + 1)] = []
            for (let k = 0; k < rate; k++) {
              const id = Balancer.pick(b)
              Balancer.callStarted(b, id)
              ending[(t + service) % (service + 1)]!.push(id)
              const a = address.get(id)!
              picks.set(a, (picks.get(a) ?? 0) + 1)
            }
          }
          const n = ticks * rate
          const total = counts.reduce((x, y) => x + y, 0)
          for (const { address: a, count } of endpoints) {
            const p = count / total
            expect(Math.abs((picks.get(a) ?? 0) - n * p)).toBeLessThanOrEqual(5 * Math.sqrt(n * p * (1 - p)) + 1)
          }
        }
      ),
      { numRuns: 60 }
    )
  })

  it("never picks a slot that is not ready, and in-flight counts match the calls started and ended", () => {
    type Op =
      | { readonly op: "state"; readonly slot: number; readonly state: Balancer.ConnectionState }
      | { readonly op: "start"; readonly n: number }
      | { readonly op: "end"; readonly which: number }
      | { readonly op: "update"; readonly endpoints: ReadonlyArray<Expansion.Weighted> }
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant("state" as const), slot: fc.nat(30), state: fc.constantFrom(...STATES) }),
      fc.record({ op: fc.constant("start" as const), n: fc.integer({ min: 1, max: 10 }) }),
      fc.record({ op: fc.constant("end" as const), which: fc.nat() }),
      fc.record({
        op: fc.constant("update" as const),
        endpoints: fc.array(fc.record({ address: fc.constantFrom(...ADDRESSES), count: fc.integer({ min: 0, max: 3 }) }), { maxLength: 4 })
      })
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), fc.nat(), (ops, seed) => {
        const b = Balancer.make({ startWaitMs: 0, pickMode: "least_request", suspicionMs: 0 })
        const live = new Map<number, Balancer.ConnectionState>()
        /** Outstanding calls: the slot id each runs on (dropped with its slot, as the policy drops them). */
        let calls: Array<number> = []
        const apply = (out: Balancer.Output) => {
          for (const id of out.remove) {
            live.delete(id)
            calls = calls.filter((c) => c !== id)
          }
          for (const slot of out.create) live.set(slot.id, "IDLE")
        }
        apply(Balancer.step(b, { _tag: "Addresses", now: 0, target: "etcd:///svc", endpoints: [{ address: "a:1", count: 2 }], overCap: "keepFirst", offset: seed }))
        for (const o of ops) {
          if (o.op === "state") {
            const ids = [...live.keys()]
            if (ids.length === 0) continue
            const id = ids[o.slot % ids.length]!
            live.set(id, o.state)
            apply(Balancer.step(b, { _tag: "StateChanged", now: 0, slot: id, state: o.state }))
          } else if (o.op === "start") {
            for (let k = 0; k < o.n; k++) {
              const id = Balancer.pick(b)
              if (id < 0) {
                expect([...live.values()].some((s) => s === "READY") && Balancer.state(b) === "READY").toBe(false)
                break
              }
              expect(live.get(id)).toBe("READY")
              Balancer.callStarted(b, id)
              calls.push(id)
            }
          } else if (o.op === "end") {
            if (calls.length === 0) continue
            const [id] = calls.splice(o.which % calls.length, 1)
            Balancer.callEnded(b, id!)
          } else {
            apply(Balancer.step(b, { _tag: "Addresses", now: 0, target: "etcd:///svc", endpoints: o.endpoints, overCap: "keepFirst", offset: seed }))
          }
          for (const slot of Balancer.slots(b)) {
            expect(slot.inFlight).toBe(calls.filter((c) => c === slot.id).length)
          }
        }
      }),
      { numRuns: 300 }
    )
  })
})

describe("adaptive counts", () => {
  it("keep every address within its range and the pool within its cap, whatever the load", () => {
    type Op =
      | { readonly op: "start"; readonly n: number }
      | { readonly op: "end"; readonly n: number }
      | { readonly op: "waiting" }
      | { readonly op: "ready" }
      | { readonly op: "advance"; readonly ms: number }
      | { readonly op: "update"; readonly endpoints: ReadonlyArray<Expansion.Weighted> }
    const range = fc.tuple(fc.constantFrom(...ADDRESSES.slice(0, 3)), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 4 }))
      .map(([address, count, extra]) => ({ address, count, maxCount: count + extra }))
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant("start" as const), n: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ op: fc.constant("end" as const), n: fc.integer({ min: 1, max: 20 }) }),
      fc.constant({ op: "waiting" as const }),
      fc.constant({ op: "ready" as const }),
      fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 2_000 }) }),
      fc.record({ op: fc.constant("update" as const), endpoints: fc.array(range, { minLength: 1, maxLength: 3 }) })
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.constantFrom<Balancer.PickMode>("round_robin", "least_request"), fc.integer({ min: 4, max: 12 }), (ops, pickMode, cap) => {
        const b = Balancer.make({ startWaitMs: 0, pickMode, maxStreamsPerConnection: 2, shrinkIdleMs: 1_000, maxConnections: cap })
        let now = 0
        let calls: Array<number> = []
        let listed: ReadonlyArray<Expansion.Weighted> = [{ address: "a:1", count: 1, maxCount: 4 }]
        const live = new Set<number>()
        const apply = (out: Balancer.Output) => {
          for (const id of out.remove) {
            live.delete(id)
            calls = calls.filter((c) => c !== id)
          }
          for (const slot of out.create) live.add(slot.id)
        }
        let asked = false
        apply(Balancer.step(b, { _tag: "Addresses", now, target: "etcd:///svc", endpoints: listed, overCap: "keepFirst", offset: 0 }))
        for (const o of ops) {
          if (o.op === "start") {
            for (let k = 0; k < o.n; k++) {
              const id = Balancer.pick(b)
              if (id < 0) break
              if (Balancer.callStarted(b, id)) asked = true
              calls.push(id)
            }
          } else if (o.op === "end") {
            for (const id of calls.splice(0, o.n)) Balancer.callEnded(b, id)
          } else if (o.op === "waiting") {
            const before = Balancer.slots(b).length
            const out = Balancer.step(b, { _tag: "CallsWaiting", now })
            // Growth never takes the pool past the cap.
            expect(before + out.create.length).toBeLessThanOrEqual(cap)
            // A connection opens only when a call asked for it.
            if (!asked) expect(out.create).toHaveLength(0)
            expect(out.create.length).toBeLessThanOrEqual(listed.length)
            asked = false
            apply(out)
          } else if (o.op === "ready") {
            for (const id of live) apply(Balancer.step(b, { _tag: "StateChanged", now, slot: id, state: "READY" }))
          } else if (o.op === "advance") {
            now += o.ms
            apply(Balancer.step(b, { _tag: "TimerFired", now }))
          } else {
            listed = o.endpoints
            apply(Balancer.step(b, { _tag: "Addresses", now, target: "etcd:///svc", endpoints: listed, overCap: "keepFirst", offset: 0 }))
          }
          // The pool never holds more than its cap (the mass-removal grace included).
          expect(Balancer.slots(b).length).toBeLessThanOrEqual(cap)
          const per = new Map<string, number>()
          for (const slot of Balancer.slots(b)) per.set(slot.address, (per.get(slot.address) ?? 0) + 1)
          const ranges = new Map<string, { min: number; max: number }>()
          for (const e of listed) {
            const r = ranges.get(e.address) ?? { min: 0, max: 0 }
            ranges.set(e.address, { min: r.min + e.count, max: r.max + (e.maxCount ?? e.count) })
          }
          // When the list fits the cap (no address trimmed, so none kept only by the mass-removal
          // grace under an old count), every listed address stays within its range.
          if ([...ranges.values()].reduce((x, y) => x + y.min, 0) > cap) continue
          for (const [address, n] of per) {
            const r = ranges.get(address)
            if (r === undefined) continue // unlisted, kept by the mass-removal grace
            expect(n).toBeLessThanOrEqual(r.max)
            expect(n).toBeGreaterThanOrEqual(r.min)
          }
        }
      }),
      { numRuns: 300 }
    )
  })
})

describe("retries after a connection ends", () => {
  type Op =
    | { readonly op: "connect"; readonly k: number; readonly ms: number }
    | { readonly op: "end"; readonly k: number; readonly calls: number }
    | { readonly op: "fail"; readonly k: number }
    | { readonly op: "finish"; readonly n: number }
    | { readonly op: "advance"; readonly ms: number }
    | { readonly op: "picks"; readonly n: number }
    | { readonly op: "turn" }
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant("connect" as const), k: fc.nat(7), ms: fc.integer({ min: 0, max: 60 }) }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant("end" as const), k: fc.nat(7), calls: fc.integer({ min: 0, max: 6 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("fail" as const), k: fc.nat(7) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("finish" as const), n: fc.integer({ min: 1, max: 10 }) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 700 }) }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant("picks" as const), n: fc.integer({ min: 1, max: 12 }) }) },
    { weight: 2, arbitrary: fc.constant({ op: "turn" as const }) }
  )
  const WAIT = 1_000

  /**
   * Opens a pool of 8 connections (a:1#3, b:2#3, c:3#2) one after another
   * (each attempt taking a `stagger` time, so their ages differ), runs
   * `ops` (`turn`: the event-loop turn ends) and checks: a pick never returns a connection that is not READY;
   * right after a connection with calls in flight ends, as many picks as it
   * carried each wait or land on a connection whose attempt began no
   * earlier than the end minus a third of the ended connection's life; a pick
   * waits while the channel is READY only within the bound after such an
   * end; no waiting call is left without a new publish once the bound has
   * passed. Returns what the run reached, for the statistics.
   */
  const run = (ops: ReadonlyArray<Op>, pickMode: Balancer.PickMode, stagger: ReadonlyArray<number>) => {
    const reached = { ends: 0, waits: 0, redirected: 0 }
    const b = Balancer.make({ startWaitMs: 0, pickMode, replacementWaitMs: WAIT })
    const ids = Balancer.step(b, {
      _tag: "Addresses",
      now: 0,
      target: "pass:///x",
      endpoints: [{ address: "a:1", count: 3 }, { address: "b:2", count: 3 }, { address: "c:3", count: 2 }],
      overCap: "fail",
      offset: 1
    }).create.map((s) => s.id)
    let now = 0
    // The reference, from the events this test sends: each connection's state, when the attempt
    // that made it READY began, the calls started on each.
    const state = new Map<number, Balancer.ConnectionState>(ids.map((id) => [id, "IDLE"]))
    const opened = new Map<number, number>()
    let calls: Array<number> = []
    let waiting = false
    let lastEnd = Number.NEGATIVE_INFINITY
    const step = (event: Balancer.Event) => {
      if (Balancer.step(b, event).publish !== undefined) waiting = false
    }
    /** The `k`-th (mod their number) connection that is READY, or that is not. */
    const nth = (k: number, ready: boolean): number | undefined => {
      const some = ids.filter((id) => (state.get(id) === "READY") === ready)
      return some.length === 0 ? undefined : some[k % some.length]
    }
    const connect = (id: number, ms: number) => {
      const began = now
      state.set(id, "CONNECTING")
      step({ _tag: "StateChanged", now, slot: id, state: "CONNECTING" })
      now += ms
      step({ _tag: "TimerFired", now })
      state.set(id, "READY")
      opened.set(id, began)
      step({ _tag: "StateChanged", now, slot: id, state: "READY" })
    }
    const pick = (): number => {
      const ready = Balancer.state(b) === "READY"
      const id = Balancer.pick(b)
      if (id >= 0) {
        expect(state.get(id)).toBe("READY")
        Balancer.callStarted(b, id)
        calls.push(id)
      } else if (ready) {
        expect(now - lastEnd).toBeLessThan(WAIT)
        waiting = true
        reached.waits++
      }
      return id
    }
    for (const [i, id] of ids.entries()) connect(id, stagger[i % stagger.length]!)
    for (const o of ops) {
      switch (o.op) {
        case "connect": {
          const id = nth(o.k, false)
          if (id !== undefined) connect(id, o.ms)
          break
        }
        case "end": {
          const id = nth(o.k, true)
          if (id === undefined) break
          for (let k = 0; k < o.calls; k++) {
            Balancer.callStarted(b, id)
            calls.push(id)
          }
          const carried = calls.filter((c) => c === id).length
          const freshAfter = now - (now - opened.get(id)!) / 3
          state.set(id, "IDLE")
          step({ _tag: "StateChanged", now, slot: id, state: "IDLE" })
          if (carried === 0) break
          reached.ends++
          lastEnd = now
          // Its calls were refused and end; grpc-js retries each at once.
          for (const c of calls.filter((c) => c === id)) Balancer.callEnded(b, c)
          calls = calls.filter((c) => c !== id)
          for (let k = 0; k < carried; k++) {
            const picked = pick()
            if (picked < 0) continue
            expect(opened.get(picked)!).toBeGreaterThanOrEqual(freshAfter)
            reached.redirected++
          }
          break
        }
        case "fail": {
          const id = nth(o.k, false)
          if (id === undefined) break
          state.set(id, "TRANSIENT_FAILURE")
          step({ _tag: "StateChanged", now, slot: id, state: "TRANSIENT_FAILURE", error: "refused" })
          break
        }
        case "finish":
          for (const c of calls.splice(0, o.n)) Balancer.callEnded(b, c)
          break
        case "advance":
          now += o.ms
          step({ _tag: "TimerFired", now })
          if (now - lastEnd >= WAIT) expect(waiting).toBe(false)
          break
        case "picks":
          for (let k = 0; k < o.n; k++) pick()
          break
        case "turn":
          Balancer.settlePicks(b)
          break
      }
    }
    // However the run ended, once the bound has passed every waiting call was placed again.
    now = Math.max(now, lastEnd + WAIT)
    step({ _tag: "TimerFired", now })
    expect(waiting).toBe(false)
    return reached
  }

  const runs = fc.tuple(
    fc.array(op, { maxLength: 80 }),
    fc.constantFrom<Balancer.PickMode>("round_robin", "least_request"),
    fc.array(fc.integer({ min: 0, max: 70 }), { minLength: 1, maxLength: 8 })
  )

  it("places the retries after an end on connections opened at most a third of its life ago, and lets no call wait past the bound", () => {
    fc.assert(fc.property(runs, ([ops, pickMode, stagger]) => void run(ops, pickMode, stagger)), { numRuns: 400 })
  })

  it("reaches ends with calls in flight, redirected retries and waits (statistics)", () => {
    fc.statistics(
      runs,
      ([ops, pickMode, stagger]) => {
        const r = run(ops, pickMode, stagger)
        return `${r.ends === 0 ? "no end" : r.ends < 4 ? "1-3 ends" : "4+ ends"}, ${r.redirected === 0 ? "no" : "some"} retries placed, ${r.waits === 0 ? "no" : "some"} waits`
      },
      { numRuns: 400 }
    )
  })
})
