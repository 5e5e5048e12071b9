import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import fc from "fast-check"
import * as Address from "../src/core/Address.js"
import * as EtcdRecord from "../src/core/EtcdRecord.js"

// Runs, seed and replay come from the shared property-tests/fast-check.setup.ts
// (1,000 runs; FC_SEED/FC_PATH replay a failure, whose report prints both);
// pin a failing case as a regular test in test/EtcdRecord.test.ts.
// The endpoint-set properties are in EndpointSet.test.ts.

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join("."))
const hostname = fc.domain()
const ipv6 = fc.ipV6().map((h) => `[${h}]`)
const port = fc.integer({ min: 1, max: 65_535 })
/** Any address Address.parse accepts, in canonical form. */
const address = fc
  .tuple(fc.oneof(ipv4, hostname, ipv6), port)
  .map(([host, p]) => Address.format(Address.unsafeParse(`${host}:${p}`)))
const service = fc.string({ minLength: 1, maxLength: 12 })
const metadata = fc.oneof(fc.constant(null), fc.jsonValue({ maxDepth: 3 }))

describe("EtcdRecord properties", () => {
  it("runs at least 1,000 cases per property", () => {
    expect(fc.readConfigureGlobal().numRuns ?? 100).toBeGreaterThanOrEqual(process.env.FC_RUNS ? 1 : 1000)
  })

  it("decode(encode(e)) gives e back under keyOf(service, address)", () => {
    fc.assert(
      fc.property(service, address, metadata, (svc, addr, meta) => {
        const endpoint = { address: addr, metadata: meta }
        const { key, value } = EtcdRecord.encode(svc, endpoint)
        expect(key).toBe(EtcdRecord.keyOf(svc, addr))
        expect(EtcdRecord.owns(svc, key)).toBe(true)
        expect(EtcdRecord.decode(key, value)).toEqual(Result.succeed({ key, endpoint }))
      })
    )
  })

  it("encode writes plain JSON with the Go field order", () => {
    fc.assert(
      fc.property(service, address, metadata, (svc, addr, meta) => {
        const { value } = EtcdRecord.encode(svc, { address: addr, metadata: meta })
        expect(value.startsWith(`{"Op":0,"Addr":`)).toBe(true)
        expect(Object.keys(JSON.parse(value))).toEqual(["Op", "Addr", "Metadata"])
        expect(JSON.parse(value)).toEqual({ Op: 0, Addr: addr, Metadata: meta })
      })
    )
  })

  it("a service never owns the keys of a service whose name it prefixes", () => {
    fc.assert(
      fc.property(
        service,
        fc.string({ minLength: 1, maxLength: 6 }).filter((s) => !s.startsWith("/")),
        fc.string({ maxLength: 8 }),
        (svc, extra, rest) => {
          const key = `${svc}${extra}/${rest}`
          expect(EtcdRecord.owns(svc, key)).toBe(false)
          expect(EtcdRecord.owns(svc, `${svc}/${extra}`)).toBe(true)
        }
      )
    )
  })
})
