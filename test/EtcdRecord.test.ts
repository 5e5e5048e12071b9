import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as EtcdRecord from "../src/core/EtcdRecord.js"

const goValue = (addr: string, metadata = "null") => `{"Op":0,"Addr":"${addr}","Metadata":${metadata}}`

/** The error of a failed decode; fails the test on a success. */
const failureOf = <A>(result: Result.Result<A, EtcdRecord.EtcdRecordError>): EtcdRecord.EtcdRecordError => {
  if (Result.isSuccess(result)) throw new Error(`expected a failure, got ${JSON.stringify(result.success)}`)
  return result.failure
}

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

  // The edges of goQuote's ranges and of compareCodePoints, and what JSON
  // cannot hold (each row kills a planted mutant of etcdRecord/goJson.ts).
  it.each([
    ["a space (0x20) is literal", "a b", `"a b"`],
    ["U+D7FF and U+E000 (just outside the surrogates) are literal", "\ud7ff\ue000", `"\ud7ff\ue000"`],
    ["pairs at the edges (D800 DC00, DBFF DFFF) are literal", "\ud800\udc00\udbff\udfff", `"\ud800\udc00\udbff\udfff"`],
    ["a lone high surrogate at the end", "a\udbff", `"a\\ufffd"`],
    ["a high surrogate before a non-surrogate", "\ud800\ue000", `"\\ufffd\ue000"`],
    ["a high surrogate before a high surrogate", "\udbff\udbff", `"\\ufffd\\ufffd"`],
    ["lone low surrogates DC00 and DFFF, even when a low one follows", "\udc00\udfff", `"\\ufffd\\ufffd"`],
    ["a lone high surrogate before a pair", "\ud800\ud800\udc00", `"\\ufffd\ud800\udc00"`],
    ["a key that is a prefix sorts first", { ab: 1, a: 2 }, `{"a":2,"ab":1}`],
    ["keys past equal BMP characters", { ac: 1, ab: 2 }, `{"ab":2,"ac":1}`],
    ["keys past U+FFFF", { "\uffffb": 1, "\uffffa": 2 }, `{"\uffffa":2,"\uffffb":1}`],
    ["keys past an equal astral character", { "😀b": 1, "😀a": 2 }, `{"😀a":2,"😀b":1}`],
    ["keys that differ in an astral character", { "😁": 1, "😀": 2, "\uffff": 3 }, `{"\uffff":3,"😀":2,"😁":1}`],
    ["false", false, `false`],
    ["NaN and Infinity as null", [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY], `[null,null,null]`],
    ["a bigint as its digits", { n: 12345678901234567890n }, `{"n":12345678901234567890}`],
    ["toJSON, called with the empty key", { d: new Date(0), k: { toJSON: (key: string) => `key=${key}` } }, `{"d":"1970-01-01T00:00:00.000Z","k":"key="}`],
    ["undefined, functions and symbols left out of objects", { u: undefined, f: () => 1, s: Symbol("s"), a: 1 }, `{"a":1}`],
    ["undefined, functions and symbols as null in arrays", [undefined, () => 1, Symbol("s")], `[null,null,null]`],
    ["the same object twice is no cycle", (() => {
      const shared = { x: 1 }
      return { a: shared, b: [shared, shared] }
    })(), `{"a":{"x":1},"b":[{"x":1},{"x":1}]}`]
  ] as const)("metadata: %s", (_name, metadata, encoded) => {
    expect(EtcdRecord.encode("svc", { address: "h:1", metadata }).value).toBe(`{"Op":0,"Addr":"h:1","Metadata":${encoded}}`)
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
    expect(() => EtcdRecord.encode("svc", { address: "h:1", metadata: cyclic })).toThrow("EtcdRecord.encode: metadata contains a cycle")
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
    expect(EtcdRecord.decode("svc/k", value)).toEqual(Result.succeed({ key: "svc/k", endpoint: { address, metadata } }))
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
    const error = failureOf(EtcdRecord.decode("svc/k", value))
    expect(error.problem).toBe(problem)
    expect(error.key).toBe("svc/k")
    expect(error.message).toContain(`"svc/k"`)
  })

  it("keeps the message short for huge values", () => {
    const huge = "x".repeat(1_000_000)
    const error = failureOf(EtcdRecord.decode("svc/" + huge, huge))
    expect(error.problem).toBe("InvalidJson")
    expect(error.message.length).toBeLessThan(600)
  })

  it.each([
    ["metadata object", `{"Addr":"h:1","Metadata":{"serverName":"b.internal","w":[1,2]}}`, { serverName: "b.internal", w: [1, 2] }],
    ["metadata array", `{"Addr":"h:1","Metadata":[1,"x",null]}`, [1, "x", null]],
    ["metadata number", `{"Addr":"h:1","Metadata":2.5}`, 2.5],
    ["metadata false", `{"Addr":"h:1","Metadata":false}`, false],
    ["metadata null", `{"Addr":"h:1","Metadata":null}`, null]
  ] as const)("keeps any JSON as metadata: %s", (_name, value, metadata) => {
    expect(EtcdRecord.decode("svc/k", value)).toEqual(Result.succeed({ key: "svc/k", endpoint: { address: "h:1", metadata } }))
  })

  it("ignores a __proto__ field and does not let it change the result", () => {
    const decoded = EtcdRecord.decodeUnsafe("svc/k", `{"__proto__":{"Addr":"evil:1"},"Addr":"h:1"}`)
    expect(decoded.endpoint).toEqual({ address: "h:1", metadata: null })
    expect(Object.getPrototypeOf(decoded.endpoint)).toBe(Object.prototype)
  })

  it.each([
    ["Op 1", `{"Op":1,"Addr":"h:1"}`, "DeleteOp", "Op 1"],
    ["Op 2", `{"Op":2,"Addr":"h:1"}`, "InvalidOp", "Op 2"],
    ["Op string", `{"op":"0","Addr":"h:1"}`, "InvalidOp", `Op "0"`],
    ["Op and Addr both bad: Op first", `{"Op":7,"Addr":5}`, "InvalidOp", "Op 7"],
    ["no Addr", `{"Op":0}`, "MissingAddr", "no Addr field"],
    ["Addr number", `{"Addr":5000}`, "MissingAddr", "Addr is 5000"],
    ["Addr object", `{"ADDR":{"host":"h"}}`, "MissingAddr", `Addr is {"host":"h"}`],
    ["null", "null", "NotAnObject", "null"],
    ["array", "[]", "NotAnObject", "an array"],
    ["number", "1", "NotAnObject", "a number"],
    ["boolean", "true", "NotAnObject", "a boolean"],
    ["string", `"h:1"`, "NotAnObject", "a string"],
    ["empty value", "", "InvalidJson", "empty"],
    ["not JSON", "hello", "InvalidJson", `5 characters, starting "hello"`],
    ["long non-JSON: its first 40 characters", "y".repeat(41), "InvalidJson", `41 characters, starting "${"y".repeat(40)}"`],
    ["a bad Op of exactly 120 characters in full", `{"Op":"${"o".repeat(118)}","Addr":"h:1"}`, "InvalidOp", `Op "${"o".repeat(118)}"`],
    ["a bad Op of 121 characters shortened", `{"Op":"${"o".repeat(119)}","Addr":"h:1"}`, "InvalidOp", `Op "${"o".repeat(119)}… (121 characters)`]
  ] as const)("names the problem and what was wrong: %s", (_name, value, problem, detail) => {
    const error = failureOf(EtcdRecord.decode("svc/k", value))
    expect({ problem: error.problem, detail: error.detail }).toEqual({ problem, detail })
  })

  it.each([
    ["[::1]", "the address has no port"],
    ["10.0.0.1:0", "the port is outside 1..65535"],
    ["::1:80", "an IPv6 address must be written in brackets"],
    ["bad host!:80", "the host is not a valid hostname"]
  ])("an Addr of %j is InvalidAddr, with the address parser's explanation", (addr, explanation) => {
    const error = failureOf(EtcdRecord.decode("svc/k", JSON.stringify({ Op: 0, Addr: addr })))
    expect(error.problem).toBe("InvalidAddr")
    expect(error.reason).toBe("Addr is not a valid host:port address")
    expect(error.message).toContain(explanation)
  })

  it("keeps the message short for a huge Addr", () => {
    const error = failureOf(EtcdRecord.decode("svc/k", JSON.stringify({ Op: 0, Addr: "x".repeat(1_000_000) })))
    expect(error.problem).toBe("InvalidAddr")
    expect(error.message.length).toBeLessThan(600)
  })

  it("decodeUnsafe throws the error", () => {
    expect(() => EtcdRecord.decodeUnsafe("svc/k", "nope")).toThrow(/not JSON/)
    expect(() => EtcdRecord.decodeUnsafe("svc/k", "nope")).toThrow(EtcdRecord.EtcdRecordError)
  })
})

describe("EtcdRecord.sameEndpoint", () => {
  it.each([
    [{ address: "h:1", metadata: null }, { address: "h:1", metadata: null }, true],
    [{ address: "h:1", metadata: { a: 1, b: [2] } }, { address: "h:1", metadata: { b: [2], a: 1 } }, true],
    [{ address: "h:1", metadata: null }, { address: "h:2", metadata: null }, false],
    [{ address: "h:1", metadata: { a: 1 } }, { address: "h:1", metadata: { a: 2 } }, false],
    [{ address: "h:1", metadata: "1" }, { address: "h:1", metadata: 1 }, false]
  ] as const)("sameEndpoint(%j, %j) = %j", (a, b, expected) => {
    expect(EtcdRecord.sameEndpoint(a, b)).toBe(expected)
  })
})

describe("EtcdRecord.sameEndpoint and withConnections edges", () => {
  it("the same metadata object is the same endpoint without encoding it (even with a cycle)", () => {
    const cyclic: { self?: unknown } = {}
    cyclic.self = cyclic
    expect(EtcdRecord.sameEndpoint({ address: "h:1", metadata: cyclic }, { address: "h:1", metadata: cyclic })).toBe(true)
  })

  it("refuses a range whose fields are not numbers (from untyped callers)", () => {
    for (const range of [{ count: "2", maxCount: 3 }, { count: 2, maxCount: "2" }]) {
      const result = EtcdRecord.withConnections(null, range as never)
      expect(Result.isFailure(result) && result.failure.message).toBe(
        `cannot set "grpc_anchor.connections": ${JSON.stringify(range)} is not a count range with 1 <= count <= maxCount <= 256`
      )
    }
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

describe("per-endpoint connection counts", () => {
  const decoded = (metadata: string) => EtcdRecord.decodeUnsafe("svc/a", goValue("h:1", metadata))

  it.each([
    [`{"grpc_anchor.connections":4}`, { count: 4, maxCount: 4 }],
    [`{"grpc_anchor.connections":"4"}`, { count: 4, maxCount: 4 }],
    [`{"grpc_anchor.connections":"2..8","zone":"a"}`, { count: 2, maxCount: 8 }],
    [`{"grpc_anchor.connections":"3..3"}`, { count: 3, maxCount: 3 }],
    [`{"grpc_anchor.connections":256}`, { count: 256, maxCount: 256 }]
  ])("%s gives its own count", (metadata, connections) => {
    const record = decoded(metadata)
    expect(record.endpoint).toEqual({ address: "h:1", metadata: JSON.parse(metadata), connections })
    expect(record.warning).toBeUndefined()
  })

  it.each([
    [`{"grpc_anchor.connections":0}`, `0: the count is 0; expected a whole number 1..256 (remove the entry to open no connections)`],
    [`{"grpc_anchor.connections":"8..2"}`, `"8..2": the count range starts above its end; expected #min..max with min <= max (1 <= min <= max <= 256), e.g. #2..8`],
    [`{"grpc_anchor.connections":2.5}`, `2.5: the count has a decimal point; expected a whole number 1..256, written without one`],
    [`{"grpc_anchor.connections":300}`, `300: the count is over the maximum of 256; expected a whole number 1..256`],
    [`{"grpc_anchor.connections":"many"}`, `"many": the count is not a number; expected a whole number 1..256`],
    [`{"grpc_anchor.connections":null}`, `null is null`],
    [`{"grpc_anchor.connections":[2,8]}`, `[2,8] is an array`],
    [`{"grpc_anchor.connections":{"min":2}}`, `{"min":2} is an object`]
  ])("%s keeps the endpoint, without a count, and warns: %s", (metadata, detail) => {
    const record = decoded(metadata)
    expect(record.endpoint).toEqual({ address: "h:1", metadata: JSON.parse(metadata) })
    expect(record.warning).toBeInstanceOf(EtcdRecord.EtcdRecordError)
    expect(record.warning?.problem).toBe("InvalidConnections")
    expect(record.warning?.detail).toBe(detail)
    expect(record.warning?.message).toBe(
      `etcd record "svc/a": Metadata["grpc_anchor.connections"] is not a connection count (a whole number 1..256 or "min..max"); the endpoint is used with the target's count (${detail})`
    )
  })

  it.each([`null`, `"grpc_anchor.connections"`, `[{"grpc_anchor.connections":2}]`, `{"Grpc_Anchor.Connections":2}`, `{"connections":2}`])(
    "%s asks for no count",
    (metadata) => {
      const record = decoded(metadata)
      expect(record.endpoint.connections).toBeUndefined()
      expect(record.warning).toBeUndefined()
    }
  )

  it("encode writes connections into the metadata: a number when fixed, min..max when a range", () => {
    expect(EtcdRecord.encode("svc", { address: "h:1", metadata: null, connections: { count: 4, maxCount: 4 } }).value).toBe(
      `{"Op":0,"Addr":"h:1","Metadata":{"grpc_anchor.connections":4}}`
    )
    expect(
      EtcdRecord.encode("svc", { address: "h:1", metadata: { zone: "a" }, connections: { count: 2, maxCount: 8 } }).value
    ).toBe(`{"Op":0,"Addr":"h:1","Metadata":{"grpc_anchor.connections":"2..8","zone":"a"}}`)
    const { value } = EtcdRecord.encode("svc", { address: "h:1", metadata: undefined, connections: { count: 2, maxCount: 8 } })
    expect(EtcdRecord.decodeUnsafe("svc/h:1", value).endpoint.connections).toEqual({ count: 2, maxCount: 8 })
    expect(() => EtcdRecord.encode("svc", { address: "h:1", metadata: "x", connections: { count: 2, maxCount: 2 } })).toThrow(
      `cannot set "grpc_anchor.connections": the metadata is a string, not a JSON object or null`
    )
  })

  it("withConnections takes a range or its text and refuses what it cannot write", () => {
    expect(EtcdRecord.withConnections({ zone: "a" }, "2..8")).toEqual(
      Result.succeed({ zone: "a", "grpc_anchor.connections": "2..8" })
    )
    expect(EtcdRecord.withConnections(null, 4)).toEqual(Result.succeed({ "grpc_anchor.connections": 4 }))
    expect(EtcdRecord.withConnections(undefined, "5..5")).toEqual(Result.succeed({ "grpc_anchor.connections": 5 }))
    const messages = [
      EtcdRecord.withConnections(null, "0"),
      EtcdRecord.withConnections(null, { count: 3, maxCount: 2 }),
      EtcdRecord.withConnections(null, { count: 1.5, maxCount: 2 }),
      EtcdRecord.withConnections([1], 2)
    ].map((result) => (Result.isFailure(result) ? result.failure.message : "success"))
    expect(messages).toEqual([
      `cannot set "grpc_anchor.connections": the count is 0; expected a whole number 1..256 (remove the entry to open no connections): "0" at position 0 in "0"`,
      `cannot set "grpc_anchor.connections": {"count":3,"maxCount":2} is not a count range with 1 <= count <= maxCount <= 256`,
      `cannot set "grpc_anchor.connections": {"count":1.5,"maxCount":2} is not a count range with 1 <= count <= maxCount <= 256`,
      `cannot set "grpc_anchor.connections": the metadata is an array, not a JSON object or null`
    ])
  })
})
