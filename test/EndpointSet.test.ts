import { describe, expect, it } from "@effect/vitest"
import * as EndpointSet from "../src/core/EndpointSet.js"

const put = (key: string, value: string): EndpointSet.Event => ({ _tag: "Put", key, value })
const del = (key: string): EndpointSet.Event => ({ _tag: "Delete", key })
const goValue = (addr: string, metadata = "null") => `{"Op":0,"Addr":"${addr}","Metadata":${metadata}}`

describe("EndpointSet.applyBatch", () => {
  it("applies puts and deletes and ignores other services", () => {
    const { set, skipped } = EndpointSet.applyBatch(EndpointSet.empty, "svc", [
      put("svc/a", goValue("h:1")),
      put("svc/b", goValue("h:2")),
      put("svc2/c", goValue("h:3")),
      put("other", goValue("h:4")),
      del("svc/b")
    ])
    expect(skipped).toEqual([])
    expect(EndpointSet.addresses(set)).toEqual(["h:1"])
  })

  it("a bad put removes the good record at that key only", () => {
    const start = EndpointSet.applyBatch(EndpointSet.empty, "svc", [put("svc/a", goValue("h:1")), put("svc/b", goValue("h:2"))]).set
    const { set, skipped } = EndpointSet.applyBatch(start, "svc", [put("svc/a", "garbage")])
    expect(EndpointSet.addresses(set)).toEqual(["h:2"])
    expect(skipped.map((e) => [e.key, e.problem])).toEqual([["svc/a", "InvalidJson"]])
  })

  it("counts duplicate addresses once, ordered by key", () => {
    const { set } = EndpointSet.applyBatch(EndpointSet.empty, "svc", [
      put("svc/z", goValue("h:1")),
      put("svc/b", goValue("h:2")),
      put("svc/a", goValue("H:1")),
      put("svc/c", goValue("h:2"))
    ])
    expect(EndpointSet.addresses(set)).toEqual(["h:1", "h:2"])
    expect(set.records.size).toBe(4)
  })

  it("orders endpoints by key, not by the order the puts came in", () => {
    const { set } = EndpointSet.applyBatch(EndpointSet.empty, "svc", [put("svc/b", goValue("h:2")), put("svc/a", goValue("h:1"))])
    expect(EndpointSet.addresses(set)).toEqual(["h:1", "h:2"])
  })

  it("stops at the cap and keeps updating known keys", () => {
    const start = EndpointSet.applyBatch(
      EndpointSet.empty,
      "svc",
      [put("svc/a", goValue("h:1")), put("svc/b", goValue("h:2")), put("svc/c", goValue("h:3"))],
      { cap: 2 }
    )
    expect(EndpointSet.addresses(start.set)).toEqual(["h:1", "h:2"])
    expect(start.skipped.map((e) => [e.key, e.problem, e.detail])).toEqual([["svc/c", "OverCap", "cap 2 reached"]])
    const next = EndpointSet.applyBatch(start.set, "svc", [put("svc/b", goValue("h:9")), del("svc/a"), put("svc/d", goValue("h:4"))], {
      cap: 2
    })
    expect(EndpointSet.addresses(next.set)).toEqual(["h:9", "h:4"])
    expect(next.skipped).toEqual([])
  })

  it("keeps DEFAULT_CAP (10,000) records without a cap option", () => {
    const puts = Array.from({ length: EndpointSet.DEFAULT_CAP + 1 }, (_, i) => put(`svc/${i}`, goValue(`h:${i + 1}`)))
    const { set, skipped } = EndpointSet.applyBatch(EndpointSet.empty, "svc", puts)
    expect(EndpointSet.DEFAULT_CAP).toBe(10_000)
    expect(set.records.size).toBe(10_000)
    expect(skipped.map((e) => [e.key, e.problem])).toEqual([[`svc/${EndpointSet.DEFAULT_CAP}`, "OverCap"]])
  })

  it("returns the same set for a bad put or a delete of a key it does not hold", () => {
    const start = EndpointSet.applyBatch(EndpointSet.empty, "svc", [put("svc/a", goValue("h:1"))]).set
    const bad = EndpointSet.applyBatch(start, "svc", [put("svc/b", "garbage"), del("svc/c")])
    expect(bad.set).toBe(start)
    expect(bad.skipped.map((e) => [e.key, e.problem])).toEqual([["svc/b", "InvalidJson"]])
  })

  it("applies a batch as its events one by one: a put then a delete of the same key leaves nothing", () => {
    const { set } = EndpointSet.applyBatch(EndpointSet.empty, "svc", [put("svc/a", goValue("h:1")), del("svc/a"), put("svc/b", "garbage")])
    expect(set.records.size).toBe(0)
    const again = EndpointSet.applyBatch(EndpointSet.empty, "svc", [put("svc/a", goValue("h:1")), put("svc/a", "garbage")])
    expect(again.set.records.size).toBe(0)
  })

  it("returns the same set when nothing changes", () => {
    const start = EndpointSet.applyBatch(EndpointSet.empty, "svc", [put("svc/a", goValue("h:1"))]).set
    expect(EndpointSet.applyBatch(start, "svc", [put("svc/a", goValue("h:1")), del("svc/x"), put("x/y", "z")]).set).toBe(start)
  })

  it("treats a metadata change as a change", () => {
    const start = EndpointSet.applyBatch(EndpointSet.empty, "svc", [put("svc/a", goValue("h:1", `{"w":1}`))]).set
    const next = EndpointSet.applyBatch(start, "svc", [put("svc/a", goValue("h:1", `{"w":2}`))]).set
    expect(next).not.toBe(start)
    expect(EndpointSet.endpoints(next)).toEqual([{ address: "h:1", metadata: { w: 2 } }])
  })
})

describe("per-endpoint connection counts", () => {
  it("keeps a record with a bad count, reporting it in warnings, not in skipped", () => {
    const { set, skipped, warnings } = EndpointSet.applyBatch(EndpointSet.empty, "svc", [
      put("svc/a", goValue("h:1", `{"grpc_anchor.connections":"2..8"}`)),
      put("svc/b", goValue("h:2", `{"grpc_anchor.connections":0}`)),
      put("svc/c", goValue("h:3"))
    ])
    expect(skipped).toEqual([])
    expect(warnings.map((w) => [w.key, w.problem])).toEqual([["svc/b", "InvalidConnections"]])
    expect(EndpointSet.endpoints(set)).toEqual([
      { address: "h:1", metadata: { "grpc_anchor.connections": "2..8" }, connections: { count: 2, maxCount: 8 } },
      { address: "h:2", metadata: { "grpc_anchor.connections": 0 } },
      { address: "h:3", metadata: null }
    ])
    expect(EndpointSet.weighted(EndpointSet.endpoints(set), { count: 3, maxCount: 3 })).toEqual([
      { address: "h:1", count: 2, maxCount: 8 },
      { address: "h:2", count: 3 },
      { address: "h:3", count: 3 }
    ])
    expect(EndpointSet.weighted(EndpointSet.endpoints(set), { count: 1, maxCount: 4 })).toEqual([
      { address: "h:1", count: 2, maxCount: 8 },
      { address: "h:2", count: 1, maxCount: 4 },
      { address: "h:3", count: 1, maxCount: 4 }
    ])
  })

  it("a count change is a change of the endpoint", () => {
    const start = EndpointSet.applyBatch(EndpointSet.empty, "svc", [put("svc/a", goValue("h:1", `{"grpc_anchor.connections":2}`))]).set
    const next = EndpointSet.applyBatch(start, "svc", [put("svc/a", goValue("h:1", `{"grpc_anchor.connections":"2..4"}`))]).set
    expect(next).not.toBe(start)
    expect(EndpointSet.endpoints(next)[0]?.connections).toEqual({ count: 2, maxCount: 4 })
  })
})
