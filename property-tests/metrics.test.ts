/**
 * Properties of what metrics read from the core: `Balancer.metrics` against
 * the slots it summarizes, under random event sequences (lists, connectivity
 * events, calls, timers, growth), and `Subset.moves` against its definition.
 */
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import * as Balancer from "../src/core/Balancer.js"
import * as Subset from "../src/core/Subset.js"

const ADDRESSES = ["a:1", "b:1", "c:1", "d:1", "e:1"]
const STATES = ["IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE"] as const

type Op =
  | { readonly _tag: "list"; readonly endpoints: ReadonlyArray<{ readonly address: string; readonly count: number; readonly extra: number }> }
  | { readonly _tag: "state"; readonly slot: number; readonly state: (typeof STATES)[number] }
  | { readonly _tag: "call"; readonly start: boolean; readonly n: number }
  | { readonly _tag: "time"; readonly ms: number }
  | { readonly _tag: "allReady" }

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      _tag: fc.constant("list" as const),
      endpoints: fc.uniqueArray(
        fc.record({ address: fc.constantFrom(...ADDRESSES), count: fc.integer({ min: 1, max: 3 }), extra: fc.integer({ min: 0, max: 2 }) }),
        { selector: (e) => e.address, maxLength: 5 }
      )
    })
  },
  { weight: 5, arbitrary: fc.record({ _tag: fc.constant("state" as const), slot: fc.nat(30), state: fc.constantFrom(...STATES, "READY", "READY") }) },
  { weight: 5, arbitrary: fc.record({ _tag: fc.constant("call" as const), start: fc.boolean(), n: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("time" as const), ms: fc.integer({ min: 1, max: 20_000 }) }) },
  // Every connection READY at once: reaches full addresses (growth) and READY pools (the grace) often.
  { weight: 2, arbitrary: fc.constant({ _tag: "allReady" as const }) }
)

describe("Balancer.metrics", () => {
  it("sums the slots by state per address, counts wanted, calls in flight, kept addresses and their age", () => {
    const stats = { kept: 0, grown: 0, shrunk: 0, trimmed: 0 }
    fc.assert(
      fc.property(fc.array(op, { minLength: 30, maxLength: 100, size: "max" }), (ops) => {
        const b = Balancer.make({ startWaitMs: 0, maxConnections: 10, maxStreamsPerConnection: 1, shrinkIdleMs: 1_000, removalGraceMs: 5_000 })
        let now = 0
        const started: Array<number> = []
        let listed = false
        for (const o of ops) {
          now += 1
          switch (o._tag) {
            case "list":
              Balancer.step(b, {
                _tag: "Addresses",
                now,
                target: "etcd:///svc",
                endpoints: o.endpoints.map((e) => ({ address: e.address, count: e.count, maxCount: e.count + e.extra })),
                overCap: "keepFirst",
                offset: 0
              })
              break
            case "state": {
              const slots = Balancer.slots(b)
              if (slots.length > 0) Balancer.step(b, { _tag: "StateChanged", now, slot: slots[o.slot % slots.length]!.id, state: o.state })
              break
            }
            case "call":
              for (let i = 0; i < o.n; i++) {
                if (o.start) {
                  const id = Balancer.pick(b)
                  if (id >= 0) {
                    started.push(id)
                    if (Balancer.callStarted(b, id)) Balancer.step(b, { _tag: "CallsWaiting", now })
                  }
                } else if (started.length > 0) Balancer.callEnded(b, started.shift()!)
              }
              break
            case "allReady":
              for (const slot of Balancer.slots(b)) Balancer.step(b, { _tag: "StateChanged", now, slot: slot.id, state: "READY" })
              break
            case "time":
              now += o.ms
              Balancer.step(b, { _tag: "TimerFired", now })
              break
          }
          Balancer.settlePicks(b)
          const m = Balancer.metrics(b, now)
          const slots = Balancer.slots(b)
          if (o._tag === "list") listed = true
          expect(m.target).toBe(listed ? "etcd:///svc" : "(unknown target)")
          expect(m.addresses.map((a) => a.address).sort()).toEqual([...new Set(slots.map((s) => s.address))].sort())
          for (const a of m.addresses) {
            const mine = slots.filter((s) => s.address === a.address)
            expect(a.wanted).toBe(mine.length)
            for (const state of [...STATES, "SHUTDOWN"] as const) expect(a.states[state]).toBe(mine.filter((s) => s.state === state).length)
            expect(a.inFlight).toBe(mine.reduce((sum, s) => sum + s.inFlight, 0))
            expect(a.hung).toBe(mine.filter((s) => s.hung).length)
            expect(a.grown).toBeGreaterThanOrEqual(0)
            if (a.keptForMs !== undefined) expect(a.keptForMs).toBeGreaterThanOrEqual(0)
            if (a.keptForMs !== undefined) expect(a.keptForMs).toBeLessThanOrEqual(5_000)
            stats.grown += a.grown > 0 ? 1 : 0
            stats.shrunk += a.shrunk > 0 ? 1 : 0
          }
          expect(m.kept).toBe(m.addresses.filter((a) => a.keptForMs !== undefined).length)
          expect(m.avoidances).toBe(Balancer.avoidances(b))
          stats.kept += m.kept > 0 ? 1 : 0
          stats.trimmed += m.trimmed > 0 ? 1 : 0
        }
      }),
      { numRuns: 300 }
    )
    // The generator reaches the states the metrics report (steps with each one non-zero).
    console.log(`[metrics] steps with: kept ${stats.kept}, grown ${stats.grown}, shrunk ${stats.shrunk}, trimmed ${stats.trimmed}`)
    expect(Math.min(stats.kept, stats.grown, stats.shrunk, stats.trimmed)).toBeGreaterThan(0)
  })

  it("reports how long the grace has kept an address, from the update that removed it", () => {
    const b = Balancer.make({ startWaitMs: 0, removalGraceMs: 5_000 })
    const list = (now: number, addresses: ReadonlyArray<string>) =>
      Balancer.step(b, { _tag: "Addresses", now, target: "etcd:///s", endpoints: addresses.map((address) => ({ address, count: 1 })), overCap: "keepFirst", offset: 0 })
    for (const slot of list(10_000, ["a:1", "b:1"]).create) Balancer.step(b, { _tag: "StateChanged", now: 10_001, slot: slot.id, state: "READY" })
    list(12_000, [])
    const m = Balancer.metrics(b, 12_500)
    expect(m.kept).toBe(2)
    expect(m.addresses.map((a) => a.keptForMs)).toEqual([500, 500])
    list(13_000, ["a:1", "b:1"])
    expect(Balancer.metrics(b, 13_000).addresses.map((a) => a.keptForMs)).toEqual([undefined, undefined])
  })

  it("counts the addresses the cap left out of the last list", () => {
    const b = Balancer.make({ maxConnections: 4 })
    Balancer.step(b, { _tag: "Addresses", now: 0, target: "etcd:///s", endpoints: ["a:1", "b:1", "c:1"].map((address) => ({ address, count: 2 })), overCap: "keepFirst", offset: 0 })
    expect(Balancer.metrics(b, 0).trimmed).toBe(1)
    Balancer.step(b, { _tag: "Addresses", now: 1, target: "etcd:///s", endpoints: [{ address: "a:1", count: 2 }], overCap: "keepFirst", offset: 0 })
    expect(Balancer.metrics(b, 1).trimmed).toBe(0)
  })
})

describe("Subset.moves", () => {
  const backend = fc.constantFrom(...Array.from({ length: 12 }, (_, i) => `10.0.0.${i}:80`))
  const choice = fc.uniqueArray(backend, { maxLength: 12 }).chain((members) =>
    fc.subarray(members).map((subset) => ({ members, subset }))
  )

  it("is 0 without a change, and counts exactly the backends that moved while members on both sides", () => {
    fc.assert(
      fc.property(choice, choice, (before, after) => {
        expect(Subset.moves(before, before)).toBe(0)
        const both = (x: string) => before.members.includes(x) && after.members.includes(x)
        const entered = after.subset.filter((x) => !before.subset.includes(x) && before.members.includes(x))
        const left = before.subset.filter((x) => !after.subset.includes(x) && after.members.includes(x))
        expect(Subset.moves(before, after)).toBe(entered.length + left.length)
        // Every backend counted was a member before and after.
        for (const x of [...entered, ...left]) expect(both(x)).toBe(true)
      })
    )
  })

  it("counts no move when a chosen backend leaves the service or a new one joins and is chosen", () => {
    expect(Subset.moves({ members: ["a", "b", "c"], subset: ["a", "b"] }, { members: ["b", "c"], subset: ["b"] })).toBe(0)
    expect(Subset.moves({ members: ["a", "b"], subset: ["a", "b"] }, { members: ["a", "b", "c"], subset: ["a", "c"] })).toBe(1)
    expect(Subset.moves({ members: ["a", "b", "c"], subset: ["a", "b"] }, { members: ["b", "c"], subset: ["b", "c"] })).toBe(1)
  })
})
