import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as EndpointSet from "../src/core/EndpointSet.js"
import * as EtcdRecord from "../src/core/EtcdRecord.js"

// Runs, seed and replay come from the shared property-tests/fast-check.setup.ts
// (1,000 runs; FC_SEED/FC_PATH replay a failure, whose report prints both);
// pin a failing case as a regular test in test/EndpointSet.test.ts.

describe("EndpointSet properties", () => {
  it("runs at least 1,000 cases per property", () => {
    expect(fc.readConfigureGlobal().numRuns ?? 100).toBeGreaterThanOrEqual(process.env.FC_RUNS ? 1 : 1000)
  })

  it("ignores every key of a service whose name the service prefixes", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 12 }),
        fc.string({ minLength: 1, maxLength: 6 }).filter((s) => !s.startsWith("/")),
        fc.string({ maxLength: 8 }),
        (svc, extra, rest) => {
          const { set, skipped } = EndpointSet.applyBatch(EndpointSet.empty, svc, [
            { _tag: "Put", key: `${svc}${extra}/${rest}`, value: EtcdRecord.encode(svc, { address: "h:1", metadata: null }).value }
          ])
          expect(set.records.size).toBe(0)
          expect(skipped).toEqual([])
        }
      )
    )
  })

  // A small key and address space so that events collide often.
  const keys = fc.constantFrom("svc/a", "svc/b", "svc/c", "svc/d", "svc/e", "svc2/a", "svc", "svc/", "sv/a")
  const smallAddress = fc.constantFrom("h:1", "h:2", "H:2", "[0::1]:3", "10.0.0.1:4")
  const goodValue = fc
    .tuple(smallAddress, fc.constantFrom(null, { w: 1 }, "m"))
    .map(([a, m]) => EtcdRecord.encode("svc", { address: a, metadata: m }).value)
  const badValue = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.constantFrom("null", "[]", `{"Op":1,"Addr":"h:1"}`, `{"Op":0,"Addr":"nope"}`, `{"Op":0}`, "{"),
    fc.uint8Array({ maxLength: 16 }).map((b) => Array.from(b, (x) => String.fromCharCode(x)).join(""))
  )
  const event: fc.Arbitrary<EndpointSet.Event> = fc.oneof(
    fc.record({ _tag: fc.constant("Put" as const), key: keys, value: fc.oneof(goodValue, badValue) }),
    fc.record({ _tag: fc.constant("Delete" as const), key: keys })
  )
  const events = fc.array(event, { maxLength: 30 })
  const cap = fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined })
  const entries = (set: EndpointSet.EndpointSet) => Array.from(set.records.entries()).sort(([a], [b]) => (a < b ? -1 : 1))
  const optionsOf = (c: number | undefined) => (c === undefined ? undefined : { cap: c })

  it("applying a batch equals applying its events one by one", () => {
    fc.assert(
      fc.property(events, events, cap, (before, batch, c) => {
        const start = EndpointSet.applyBatch(EndpointSet.empty, "svc", before, optionsOf(c)).set
        const whole = EndpointSet.applyBatch(start, "svc", batch, optionsOf(c))
        let set = start
        const skipped: Array<EtcdRecord.EtcdRecordError> = []
        for (const e of batch) {
          const step = EndpointSet.applyBatch(set, "svc", [e], optionsOf(c))
          set = step.set
          skipped.push(...step.skipped)
        }
        expect(entries(whole.set)).toEqual(entries(set))
        expect(whole.skipped).toEqual(skipped)
        expect(EndpointSet.addresses(whole.set)).toEqual(EndpointSet.addresses(set))
      })
    )
  })

  it("counts an address once however many keys hold it, and never exceeds the cap", () => {
    fc.assert(
      fc.property(events, cap, (batch, c) => {
        const { set } = EndpointSet.applyBatch(EndpointSet.empty, "svc", batch, optionsOf(c))
        const list = EndpointSet.addresses(set)
        expect(new Set(list).size).toBe(list.length)
        expect(new Set(list)).toEqual(new Set(Array.from(set.records.values(), (e) => e.address)))
        expect(set.records.size).toBeLessThanOrEqual(c ?? EndpointSet.DEFAULT_CAP)
        for (const key of set.records.keys()) expect(EtcdRecord.owns("svc", key)).toBe(true)
      })
    )
  })

  it("bad records never remove good records at other keys", () => {
    fc.assert(
      fc.property(events, fc.array(fc.tuple(keys, badValue), { minLength: 1, maxLength: 8 }), cap, (before, bad, c) => {
        const start = EndpointSet.applyBatch(EndpointSet.empty, "svc", before, optionsOf(c)).set
        const { set, skipped } = EndpointSet.applyBatch(
          start,
          "svc",
          bad.map(([key, value]) => ({ _tag: "Put" as const, key, value })),
          optionsOf(c)
        )
        const touched = new Set<string>(bad.map(([key]) => key))
        for (const [key, endpoint] of start.records) {
          if (!touched.has(key)) expect(set.records.get(key)).toEqual(endpoint)
        }
        for (const key of touched) expect(set.records.has(key)).toBe(false)
        expect(skipped.length).toBe(bad.filter(([key]) => EtcdRecord.owns("svc", key)).length)
      })
    )
  })
})
