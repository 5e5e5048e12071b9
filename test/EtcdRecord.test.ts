import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as EtcdRecord from "../src/core/EtcdRecord.js"

const put = (key: string, value: string): EtcdRecord.Event => ({ _tag: "Put", key, value })
const del = (key: string): EtcdRecord.Event => ({ _tag: "Delete", key })
const goValue = (addr: string, metadata = "null") => `{"Op":0,"Addr":"${addr}","Metadata":${metadata}}`

describe("EtcdRecord.encode", () => {
  // Expected values are what Go's json.Marshal(internal.Update{Op: 0, Addr, Metadata})
  // writes (Go >= 1.22: \b and \f short escapes; HTML characters escaped).
  it.each([
    ["no metadata", null, `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":null}`],
    ["undefined metadata", undefined, `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":null}`],
    ["string", "v1", `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":"v1"}`],
    ["map keys sorted", { zone: "b", weight: 3, a: true }, `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":{"a":true,"weight":3,"zone":"b"}}`],
    ["nested", { l: [1, "x", null, { b: 1, a: 2 }] }, `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":{"l":[1,"x",null,{"a":2,"b":1}]}}`],
    ["html escaped", "<a&b>", `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":"\\u003ca\\u0026b\\u003e"}`],
    ["control characters", "\b\f\n\r\t\u0001\u001f", `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":"\\b\\f\\n\\r\\t\\u0001\\u001f"}`],
    ["quotes and backslash", 'a"b\\c', `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":"a\\"b\\\\c"}`],
    ["line separators", "\u2028\u2029", `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":"\\u2028\\u2029"}`],
    ["non-ASCII literal", "é😀\u007f", `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":"é😀\u007f"}`],
    ["lone surrogate", "a\ud800b", `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":"a\\ufffdb"}`],
    ["float formats", [1e21, 1e-7, 0.000001, 1.5, -0, 123456789012345680000], `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":[1e+21,1e-7,0.000001,1.5,-0,123456789012345680000]}`],
    ["keys by UTF-8 bytes, not UTF-16", { "\uffff": 1, "😀": 2 }, `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":{"\uffff":1,"😀":2}}`]
  ] as const)("%s", (_name, metadata, value) => {
    expect(EtcdRecord.encode("svc", { address: "10.0.0.1:9080", metadata })).toEqual({ key: "svc/10.0.0.1:9080", value })
  })

  it("brackets IPv6 in key and value", () => {
    expect(EtcdRecord.encode("a/b", { address: "[::1]:80", metadata: null })).toEqual({
      key: "a/b/[::1]:80",
      value: `{"Op":0,"Addr":"[::1]:80","Metadata":null}`
    })
  })

  it("throws on a cycle", () => {
    const cyclic: { self?: unknown } = {}
    cyclic.self = cyclic
    expect(() => EtcdRecord.encode("svc", { address: "h:1", metadata: cyclic })).toThrow(TypeError)
  })
})

describe("EtcdRecord.decode", () => {
  it.each([
    ["Go record", goValue("127.0.0.1:5000"), "127.0.0.1:5000", null],
    ["canonical IPv6", goValue("[0:0::1]:80"), "[::1]:80", null],
    ["upper-case host", goValue("Backend.Example:80"), "backend.example:80", null],
    ["extra fields", `{"Op":0,"Addr":"h:1","Metadata":{"w":2},"Extra":[1]}`, "h:1", { w: 2 }],
    ["missing Op and Metadata", `{"Addr":"h:1"}`, "h:1", null],
    ["null Op", `{"Op":null,"Addr":"h:1"}`, "h:1", null],
    ["case-insensitive names (as Go)", `{"op":0,"addr":"h:2","metadata":"m"}`, "h:2", "m"],
    ["last matching key wins (as Go)", `{"Addr":"h:1","addr":"h:3"}`, "h:3", null],
    ["whitespace", ` \n{ "Addr" : "h:1" }\t`, "h:1", null]
  ] as const)("accepts %s", (_name, value, address, metadata) => {
    expect(EtcdRecord.decode("svc/k", value)).toEqual(Either.right({ key: "svc/k", endpoint: { address, metadata } }))
  })

  it.each([
    ["empty", "", "InvalidJson"],
    ["not JSON", "hello", "InvalidJson"],
    ["truncated", `{"Op":0,"Addr":"h:1"`, "InvalidJson"],
    ["null", "null", "NotAnObject"],
    ["array", `[{"Addr":"h:1"}]`, "NotAnObject"],
    ["string", `"h:1"`, "NotAnObject"],
    ["number", "42", "NotAnObject"],
    ["Op 1", `{"Op":1,"Addr":"h:1"}`, "DeleteOp"],
    ["Op 2", `{"Op":2,"Addr":"h:1"}`, "InvalidOp"],
    ["Op string", `{"Op":"0","Addr":"h:1"}`, "InvalidOp"],
    ["Op fraction", `{"Op":0.5,"Addr":"h:1"}`, "InvalidOp"],
    ["no Addr", `{"Op":0}`, "MissingAddr"],
    ["Addr null", `{"Op":0,"Addr":null}`, "MissingAddr"],
    ["Addr number", `{"Op":0,"Addr":5000}`, "MissingAddr"],
    ["Addr empty", `{"Op":0,"Addr":""}`, "InvalidAddr"],
    ["Addr without port", `{"Op":0,"Addr":"10.0.0.1"}`, "InvalidAddr"],
    ["Addr port 0", `{"Op":0,"Addr":"10.0.0.1:0"}`, "InvalidAddr"],
    ["Addr unbracketed IPv6", `{"Op":0,"Addr":"::1:80"}`, "InvalidAddr"],
    ["Addr with scheme", `{"Op":0,"Addr":"http://h:1"}`, "InvalidAddr"]
  ] as const)("rejects %s", (_name, value, problem) => {
    const result = EtcdRecord.decode("svc/k", value)
    expect(Either.isLeft(result)).toBe(true)
    const error = Either.getLeft(result).pipe((o) => (o._tag === "Some" ? o.value : undefined))!
    expect(error.problem).toBe(problem)
    expect(error.key).toBe("svc/k")
    expect(error.message).toContain(`"svc/k"`)
  })

  it("keeps the message short for huge values", () => {
    const huge = "x".repeat(1_000_000)
    const result = EtcdRecord.decode("svc/" + huge, huge)
    const error = Either.getLeft(result).pipe((o) => (o._tag === "Some" ? o.value : undefined))!
    expect(error.problem).toBe("InvalidJson")
    expect(error.message.length).toBeLessThan(600)
  })

  it("unsafeDecode throws the error", () => {
    expect(() => EtcdRecord.unsafeDecode("svc/k", "nope")).toThrow(/not JSON/)
  })
})

describe("EtcdRecord keys", () => {
  it.each([
    ["svc", "svc/a", true],
    ["svc", "svc/", false],
    ["svc", "svc", false],
    ["svc", "svc2/a", false],
    ["svc", "sv/a", false],
    ["svc", "svc//a", true],
    ["a/b", "a/b/c", true],
    ["a/b", "a/bc/d", false]
  ] as const)("owns(%j, %j) = %j", (service, key, expected) => {
    expect(EtcdRecord.owns(service, key)).toBe(expected)
  })

  it("prefix and keyOf", () => {
    expect(EtcdRecord.prefix("svc")).toBe("svc/")
    expect(EtcdRecord.keyOf("svc", "h:1")).toBe("svc/h:1")
  })
})

describe("EtcdRecord.applyBatch", () => {
  it("applies puts and deletes and ignores other services", () => {
    const { set, skipped } = EtcdRecord.applyBatch(EtcdRecord.empty, "svc", [
      put("svc/a", goValue("h:1")),
      put("svc/b", goValue("h:2")),
      put("svc2/c", goValue("h:3")),
      put("other", goValue("h:4")),
      del("svc/b")
    ])
    expect(skipped).toEqual([])
    expect(EtcdRecord.addresses(set)).toEqual(["h:1"])
  })

  it("a bad put removes the good record at that key only", () => {
    const start = EtcdRecord.applyBatch(EtcdRecord.empty, "svc", [put("svc/a", goValue("h:1")), put("svc/b", goValue("h:2"))]).set
    const { set, skipped } = EtcdRecord.applyBatch(start, "svc", [put("svc/a", "garbage")])
    expect(EtcdRecord.addresses(set)).toEqual(["h:2"])
    expect(skipped.map((e) => [e.key, e.problem])).toEqual([["svc/a", "InvalidJson"]])
  })

  it("counts duplicate addresses once, ordered by key", () => {
    const { set } = EtcdRecord.applyBatch(EtcdRecord.empty, "svc", [
      put("svc/z", goValue("h:1")),
      put("svc/b", goValue("h:2")),
      put("svc/a", goValue("H:1")),
      put("svc/c", goValue("h:2"))
    ])
    expect(EtcdRecord.addresses(set)).toEqual(["h:1", "h:2"])
    expect(set.records.size).toBe(4)
  })

  it("stops at the cap and keeps updating known keys", () => {
    const start = EtcdRecord.applyBatch(
      EtcdRecord.empty,
      "svc",
      [put("svc/a", goValue("h:1")), put("svc/b", goValue("h:2")), put("svc/c", goValue("h:3"))],
      { cap: 2 }
    )
    expect(EtcdRecord.addresses(start.set)).toEqual(["h:1", "h:2"])
    expect(start.skipped.map((e) => e.problem)).toEqual(["OverCap"])
    const next = EtcdRecord.applyBatch(start.set, "svc", [put("svc/b", goValue("h:9")), del("svc/a"), put("svc/d", goValue("h:4"))], {
      cap: 2
    })
    expect(EtcdRecord.addresses(next.set)).toEqual(["h:9", "h:4"])
    expect(next.skipped).toEqual([])
  })

  it("returns the same set when nothing changes", () => {
    const start = EtcdRecord.applyBatch(EtcdRecord.empty, "svc", [put("svc/a", goValue("h:1"))]).set
    expect(EtcdRecord.applyBatch(start, "svc", [put("svc/a", goValue("h:1")), del("svc/x"), put("x/y", "z")]).set).toBe(start)
  })

  it("treats a metadata change as a change", () => {
    const start = EtcdRecord.applyBatch(EtcdRecord.empty, "svc", [put("svc/a", goValue("h:1", `{"w":1}`))]).set
    const next = EtcdRecord.applyBatch(start, "svc", [put("svc/a", goValue("h:1", `{"w":2}`))]).set
    expect(next).not.toBe(start)
    expect(EtcdRecord.endpoints(next)).toEqual([{ address: "h:1", metadata: { w: 2 } }])
  })
})
