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
  .map(([host, p]) => Address.format(Address.parseUnsafe(`${host}:${p}`)))
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
  it("a per-endpoint count survives encode and decode, with any other metadata kept", () => {
    const range = fc
      .tuple(fc.integer({ min: 1, max: 256 }), fc.integer({ min: 0, max: 255 }))
      .map(([count, extra]) => ({ count, maxCount: Math.min(256, count + extra) }))
    const others = fc.dictionary(
      fc.string({ maxLength: 6 }).filter((k) => k !== EtcdRecord.CONNECTIONS_KEY && k !== "__proto__"),
      fc.jsonValue({ maxDepth: 2 })
    )
    fc.assert(
      fc.property(service, address, range, fc.option(others, { nil: null }), (svc, addr, connections, metadata) => {
        const { key, value } = EtcdRecord.encode(svc, { address: addr, metadata, connections })
        const record = EtcdRecord.decodeUnsafe(key, value)
        expect(record.warning).toBeUndefined()
        expect(record.endpoint.connections).toEqual(connections)
        const { [EtcdRecord.CONNECTIONS_KEY]: written, ...rest } = record.endpoint.metadata as Record<string, unknown>
        expect(written).toEqual(connections.count === connections.maxCount ? connections.count : `${connections.count}..${connections.maxCount}`)
        expect(EtcdRecord.encode(svc, { address: addr, metadata: rest }).value).toBe(EtcdRecord.encode(svc, { address: addr, metadata: metadata ?? {} }).value)
      })
    )
  })

  it("any value under the connections key decodes to a good endpoint: its count, or a warning", () => {
    fc.assert(
      fc.property(address, fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.integer({ min: -5, max: 300 }), fc.string({ maxLength: 8 })), (addr, raw) => {
        const value = JSON.stringify({ Op: 0, Addr: addr, Metadata: { [EtcdRecord.CONNECTIONS_KEY]: raw } })
        const record = EtcdRecord.decodeUnsafe("svc/x", value)
        expect(record.endpoint.address).toBe(addr)
        const c = record.endpoint.connections
        if (c === undefined) {
          expect(record.warning?.problem).toBe("InvalidConnections")
        } else {
          expect(record.warning).toBeUndefined()
          expect(Number.isInteger(c.count) && 1 <= c.count && c.count <= c.maxCount && c.maxCount <= 256).toBe(true)
        }
      })
    )
  })
})
