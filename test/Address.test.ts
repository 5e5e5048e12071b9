/**
 * Address: what a caller sees from `parse` (the canonical address, or the
 * problem, the piece and its position, and the message), from `format`,
 * `equals` and `canonicalIPv6`. Table-driven, one row per rule.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as Address from "../src/core/Address.js"

/** The explanation of each problem, in the words a user reads. */
const REASON: Record<Address.AddressProblem, string> = {
  Empty: "the address is empty; expected host:port, [ipv6]:port or :port",
  MissingPort: "the address has no port; expected host:port, e.g. 10.0.0.1:9080",
  InvalidPort: "the port is not a whole number; expected digits 1..65535",
  PortOutOfRange: "the port is outside 1..65535",
  UnbalancedBracket: "the IPv6 brackets are unbalanced; expected [ipv6]:port, e.g. [::1]:9080",
  UnbracketedIPv6: "an IPv6 address must be written in brackets, e.g. [::1]:9080",
  InvalidHost: "the host is not a valid hostname, IPv4 or IPv6 address"
}

const label63 = "a".repeat(63)
/** 253 characters: the longest host name; four labels of 63, minus one character, joined by dots. */
const host253 = [label63, label63, label63, "b".repeat(61)].join(".")
/** 254 characters, every label within 63: one too long. */
const host254 = [label63, label63, label63, "b".repeat(62)].join(".")

describe("Address.parse: accepted", () => {
  it.each([
    ["10.0.0.1:9080", "10.0.0.1", 9080],
    ["A.Example:080", "a.example", 80],
    [":9080", Address.LOCAL_HOST, 9080],
    ["h:1", "h", 1],
    ["h:65535", "h", 65535],
    ["h:1000", "h", 1000],
    ["h:10000", "h", 10000],
    ["h:0000000000080", "h", 80],
    ["h:0010000", "h", 10000],
    ["010.001.0.255:1", "10.1.0.255", 1],
    ["255.255.255.255:1", "255.255.255.255", 1],
    ["under_score.example:1", "under_score.example", 1],
    ["a-b.c-d:1", "a-b.c-d", 1],
    ["x:1", "x", 1],
    ["1.2.3.x:1", "1.2.3.x", 1],
    ["1.2.3.4x:1", "1.2.3.4x", 1],
    [`${label63}.com:1`, `${label63}.com`, 1],
    [`${host253}:1`, host253, 1],
    ["[::1]:9080", "::1", 9080],
    ["[0:0::1]:9080", "::1", 9080],
    ["[2001:DB8::1]:443", "2001:db8::1", 443],
    ["[::ffff:10.0.0.1]:1", "::ffff:a00:1", 1]
  ] as const)("%j is host %j, port %i", (text, host, port) => {
    expect(Address.parse(text)).toEqual(Result.succeed({ host, port }))
    expect(Address.parseUnsafe(text)).toEqual({ host, port })
  })
})

type Row = readonly [text: string, problem: Address.AddressProblem, position: number, piece: string]

const rejected: ReadonlyArray<Row> = [
  ["", "Empty", 0, ""],
  // brackets
  ["[::1", "UnbalancedBracket", 0, "[::1"],
  ["[::1]]:1", "UnbalancedBracket", 5, "]:1"],
  ["a]:1", "UnbalancedBracket", 0, "a]:1"],
  ["[zz]:1", "InvalidHost", 1, "zz"],
  ["[]:1", "InvalidHost", 1, ""],
  ["[10.0.0.1]:1", "InvalidHost", 1, "10.0.0.1"],
  // the port
  ["[::1]", "MissingPort", 0, "[::1]"],
  ["[::1]x", "MissingPort", 5, "x"],
  ["[::1]:", "MissingPort", 0, "[::1]:"],
  ["[::1]:x", "InvalidPort", 6, "x"],
  ["h", "MissingPort", 0, "h"],
  ["h:", "MissingPort", 0, "h:"],
  ["h:8x", "InvalidPort", 2, "8x"],
  ["h:x8", "InvalidPort", 2, "x8"],
  ["h:-1", "InvalidPort", 2, "-1"],
  ["h:+1", "InvalidPort", 2, "+1"],
  ["h: 1", "InvalidPort", 2, " 1"],
  ["h:0", "PortOutOfRange", 2, "0"],
  ["h:000", "PortOutOfRange", 2, "000"],
  ["h:65536", "PortOutOfRange", 2, "65536"],
  ["h:99999", "PortOutOfRange", 2, "99999"],
  ["h:100000", "PortOutOfRange", 2, "100000"],
  [`h:1${"0".repeat(400)}`, "PortOutOfRange", 2, `1${"0".repeat(400)}`],
  ["10.0.0.1:99999", "PortOutOfRange", 9, "99999"],
  // the host
  ["::1:80", "UnbracketedIPv6", 0, "::1:80"],
  ["a:b:1", "UnbracketedIPv6", 0, "a:b:1"],
  ["bad!host:1", "InvalidHost", 0, "bad!host"],
  ["a b:1", "InvalidHost", 0, "a b"],
  ["\u212aelvin:1", "InvalidHost", 0, "\u212aelvin"],
  ["caf\u00e9:1", "InvalidHost", 0, "caf\u00e9"],
  ["-a:1", "InvalidHost", 0, "-a"],
  ["a-:1", "InvalidHost", 0, "a-"],
  ["a..b:1", "InvalidHost", 0, "a..b"],
  ["a.:1", "InvalidHost", 0, "a."],
  [`${"a".repeat(64)}:1`, "InvalidHost", 0, "a".repeat(64)],
  [`${host254}:1`, "InvalidHost", 0, host254],
  ["1.2.3:1", "InvalidHost", 0, "1.2.3"],
  ["1.2.3.4.5:1", "InvalidHost", 0, "1.2.3.4.5"],
  ["256.0.0.1:1", "InvalidHost", 0, "256.0.0.1"],
  ["1.2.3.256:1", "InvalidHost", 0, "1.2.3.256"],
  ["0001.2.3.4:1", "InvalidHost", 0, "0001.2.3.4"],
  ["12:1", "InvalidHost", 0, "12"]
]

describe("Address.parse: rejected", () => {
  it.each(rejected)("%j: %s at %i (%j)", (text, problem, position, piece) => {
    const result = Address.parse(text)
    expect(Result.isFailure(result)).toBe(true)
    const error = (result as Result.Failure<Address.Address, Address.AddressError>).failure
    expect(error).toBeInstanceOf(Address.AddressError)
    expect({ problem: error.problem, position: error.position, piece: error.piece, input: error.input }).toEqual({
      problem,
      position,
      piece,
      input: text
    })
    expect(error._tag).toBe("AddressError")
    expect(error.reason).toBe(REASON[problem])
    expect(error.message).toBe(`${REASON[problem]}: "${piece}" at position ${position} in "${text}"`)
    // The piece starts at the position: a caller can underline it.
    expect(text.slice(position, position + piece.length)).toBe(piece)
  })

  it("adds the offset to every position", () => {
    const failure = (text: string, offset: number) => {
      const result = Address.parse(text, offset)
      return Result.isFailure(result) ? [result.failure.problem, result.failure.position] : undefined
    }
    expect(failure("", 7)).toEqual(["Empty", 7])
    expect(failure("h:0", 10)).toEqual(["PortOutOfRange", 12])
    expect(failure("[zz]:1", 3)).toEqual(["InvalidHost", 4])
    expect(failure("[::1]x", 100)).toEqual(["MissingPort", 105])
    expect(Address.parse("h:1", 5)).toEqual(Result.succeed({ host: "h", port: 1 }))
  })

  it("parseUnsafe throws the AddressError itself", () => {
    expect(() => Address.parseUnsafe("10.0.0.1:99999")).toThrow(
      new Address.AddressError({ input: "10.0.0.1:99999", position: 9, piece: "99999", problem: "PortOutOfRange" })
    )
    let thrown: unknown
    try {
      Address.parseUnsafe("h")
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(Address.AddressError)
    expect((thrown as Address.AddressError).message).toBe(`${REASON.MissingPort}: "h" at position 0 in "h"`)
  })
})

describe("Address.format and equals", () => {
  it.each([
    [{ host: "::1", port: 80 }, "[::1]:80"],
    [{ host: "2001:db8::1", port: 9080 }, "[2001:db8::1]:9080"],
    [{ host: "backend.example", port: 443 }, "backend.example:443"],
    [{ host: "10.0.0.1", port: 1 }, "10.0.0.1:1"]
  ])("format(%j) is %j", (address, text) => {
    expect(Address.format(address)).toBe(text)
    expect(Address.parseUnsafe(text)).toEqual(address)
  })

  it("equals compares host and port", () => {
    expect(Address.equals({ host: "h", port: 1 }, { host: "h", port: 1 })).toBe(true)
    expect(Address.equals({ host: "h", port: 1 }, { host: "h", port: 2 })).toBe(false)
    expect(Address.equals({ host: "h", port: 1 }, { host: "g", port: 1 })).toBe(false)
    expect(Address.equals(Address.parseUnsafe("[0:0::1]:80"), Address.parseUnsafe("[::1]:80"))).toBe(true)
  })
})

describe("Address.canonicalIPv6", () => {
  it.each([
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    // One zero group is not compressed (RFC 5952 4.2.2).
    ["1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
    ["1:2:3:4:5:6::7", "1:2:3:4:5:6:0:7"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["abcd:ef01:2345:6789:ABCD:EF01:2345:6789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789"],
    // The longest run wins, the first one on ties.
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["1:0:0:2:0:0:3:4", "1::2:0:0:3:4"],
    ["1:0:0:0:2:0:0:0", "1::2:0:0:0"],
    ["0:0:1:0:0:0:1:0", "0:0:1::1:0"],
    ["0:0:1:2:3:4:5:6", "::1:2:3:4:5:6"],
    ["1:2:3:4:5:6:0:0", "1:2:3:4:5:6::"],
    // An IPv4 tail is two groups.
    ["::ffff:10.0.0.1", "::ffff:a00:1"],
    ["::ffff:10.1.2.3", "::ffff:a01:203"],
    ["::255.255.255.255", "::ffff:ffff"],
    ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
    ["ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
  ])("%j is %j", (text, canonical) => {
    expect(Address.canonicalIPv6(text)).toBe(canonical)
  })

  it.each([
    "",
    ":",
    ":::",
    "1::2::3",
    "1:2:3:4:5:6:7:8::1::2",
    "1:2:3",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4::5:6:7:8",
    "::1:2:3:4:5:6:7:8",
    "12345::",
    "::g",
    "::-1",
    "::1:",
    "1:2:3:4:5:6:7:",
    "::ffff:a.b.c.d",
    "::ffff:a.b.c.4",
    "::ffff:1.b.c.d",
    "::ffff:1.2.3",
    "::ffff:1.2.3.256",
    "::1.2.3.4:1",
    // A dotted IPv4 part is only allowed as the last 32 bits.
    "1.2.3.4::",
    "1.2.3.4::5",
    "1:1.2.3.4::",
    "10.0.0.1",
    "localhost"
  ])("%j is not an IPv6 address", (text) => {
    expect(Address.canonicalIPv6(text)).toBeUndefined()
  })
})
