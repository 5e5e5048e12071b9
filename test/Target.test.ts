import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as Target from "../src/core/Target.js"

const FORMS = "pass:///host:port[#n],... or etcd://[host:port,...]/service[#n]"
const COUNT = "a whole number 1..256"
const RANGE = "1 <= min <= max <= 256"
const OPTIONS = `subset=k (1..10000) and pick=round_robin|least_request|ewma, joined by "&"`

/** The explanation each problem gives, in the words a user reads. */
const REASON = {
  EmptyTarget: `the target is empty; expected ${FORMS}`,
  MissingScheme: `the target has no scheme; expected ${FORMS}`,
  UnknownScheme:
    `unknown scheme; the schemes are "pass" (fixed addresses: pass:///host:port[#n],...) and "etcd" (discovery: etcd://[host:port,...]/service[#n]), in lower case`,
  MissingSlashes: `the scheme must be followed by "//"; expected ${FORMS}`,
  UnexpectedAuthority:
    `a pass target lists its addresses after three slashes; expected pass:///host:port[#n],..., e.g. pass:///10.0.0.1:9080`,
  EmptyList: `the target lists no addresses; expected pass:///host:port[#n],..., e.g. pass:///10.0.0.1:9080#2`,
  EmptyEntry:
    `an entry has no address (two commas in a row, a comma at the start or end, or nothing before "#"); expected host:port[#n]`,
  EmptyEtcdEndpoint: `an etcd endpoint is empty (two commas in a row, or a comma at the start or end); expected host:port`,
  MissingPort: `the address has no port; expected host:port, [ipv6]:port or :port, e.g. 10.0.0.1:9080`,
  EtcdMissingPort: `the etcd endpoint has no port; expected host:port, [ipv6]:port or :port, e.g. 10.0.0.1:9080`,
  InvalidPort: `the port of the address is not a whole number; expected digits 1..65535`,
  EtcdInvalidPort: `the port of the etcd endpoint is not a whole number; expected digits 1..65535`,
  PortOutOfRange: `the port of the address is outside 1..65535`,
  EtcdPortOutOfRange: `the port of the etcd endpoint is outside 1..65535`,
  UnbalancedBracket: `the IPv6 brackets of the address are unbalanced; expected [ipv6]:port, e.g. [::1]:9080`,
  EtcdUnbalancedBracket: `the IPv6 brackets of the etcd endpoint are unbalanced; expected [ipv6]:port, e.g. [::1]:9080`,
  UnbracketedIPv6: `the address looks like an IPv6 address without brackets; write it as [ipv6]:port, e.g. [::1]:9080`,
  InvalidHost: `the host of the address is not a valid hostname, IPv4 or IPv6 address`,
  EtcdInvalidHost: `the host of the etcd endpoint is not a valid hostname, IPv4 or IPv6 address`,
  MissingCount: `"#" is not followed by a count; expected ${COUNT} after "#", or no "#" for 1`,
  InvalidCount: `the count is not a number; expected ${COUNT}`,
  NegativeCount: `the count is negative; expected ${COUNT}`,
  FractionalCount: `the count has a decimal point; expected ${COUNT}, written without one`,
  ZeroCount: `the count is 0; expected ${COUNT} (remove the entry to open no connections)`,
  CountTooLarge: `the count is over the maximum of 256; expected ${COUNT}`,
  MergedCountTooLarge:
    `this address is listed more than once and its counts add up to more than 256; list it once with a count of at most 256`,
  MissingService:
    `the etcd target has no "/" before the service; expected etcd://[host:port,...]/service, e.g. etcd:///my-service (three slashes when no etcd endpoints are listed)`,
  EmptyService: `the etcd service is empty; expected a key prefix after the "/", e.g. etcd:///my-service`,
  InvalidService:
    `the etcd service may not contain whitespace, control or invisible formatting characters, "," or unpaired surrogates`,
  IncompleteRange: `a count range needs both ends; expected #min..max with ${RANGE}, e.g. #2..8`,
  InvalidRange: `a count range is written with two dots between two counts; expected #min..max with ${RANGE}, e.g. #2..8`,
  ReversedRange: `the count range starts above its end; expected #min..max with min <= max (${RANGE}), e.g. #2..8`,
  EmptyOptions: `"?" is not followed by options; expected ${OPTIONS} after "?", or no "?"`,
  EmptyOption: `an option is empty (two "&" in a row, or "&" at the start or end); expected ${OPTIONS}`,
  MissingOptionValue: `the option has no value; expected ${OPTIONS}`,
  UnknownOption:
    `unknown option; the options are ${OPTIONS} (in lower case; the client id of subsetting is set on the channel, not in the target)`,
  RepeatedOption: `the option is given more than once; give each option at most once`,
  InvalidSubset: `the subset option is not a subset size; expected subset=k with k a whole number 1..10000`,
  InvalidPick: `unknown pick mode; expected pick=round_robin or pick=least_request or pick=ewma`,
  MisplacedCount: `the count goes before the options; expected ...#n?options, e.g. etcd:///my-service#2?subset=20`
} as const

type Row = readonly [input: string, problem: Target.TargetProblem, position: number, piece: string, reason: keyof typeof REASON]

const errors: ReadonlyArray<Row> = [
  // Rows that kill planted survivors of target/parser.ts and target/count.ts.
  ["pass://a?x/y", "UnexpectedAuthority", 7, "a", "UnexpectedAuthority"],
  ["pass:///a:1#2#3", "InvalidCount", 12, "2#3", "InvalidCount"],
  ["pass:///a:1#128,a:1#129", "MergedCountTooLarge", 16, "a:1#129", "MergedCountTooLarge"],
  ["etcd://e:1?pick=a/b", "MissingService", 7, "e:1", "MissingService"],
  ["etcd:///s?subset=100000", "InvalidSubset", 17, "100000", "InvalidSubset"],
  ["etcd:///s?subset=10001", "InvalidSubset", 17, "10001", "InvalidSubset"],
  ["pass:///a:1#2560", "CountTooLarge", 12, "2560", "CountTooLarge"],
  ["pass:///a:1#257", "CountTooLarge", 12, "257", "CountTooLarge"],
  ["pass:///a:1#-x", "InvalidCount", 12, "-x", "InvalidCount"],
  ["pass:///a:1#x5", "InvalidCount", 12, "x5", "InvalidCount"],
  ["pass:///a:1#-1.5", "NegativeCount", 12, "-1.5", "NegativeCount"],
  ["etcd:///a\ud800", "InvalidService", 9, "\ud800", "InvalidService"],
  ["etcd:///a\udbff?pick=ewma", "InvalidService", 9, "\udbff", "InvalidService"],
  ["etcd:///a\ud800\udbff", "InvalidService", 9, "\ud800", "InvalidService"],
  ["etcd:///a\ud800\ue000", "InvalidService", 9, "\ud800", "InvalidService"],
  // scheme
  ["", "EmptyTarget", 0, "", "EmptyTarget"],
  ["10.0.0.1:9080", "MissingScheme", 0, "10.0.0.1:9080", "MissingScheme"],
  ["localhost:9080", "MissingScheme", 0, "localhost:9080", "MissingScheme"],
  ["[::1]:9080", "MissingScheme", 0, "[::1]:9080", "MissingScheme"],
  ["http://a:1", "UnknownScheme", 0, "http", "UnknownScheme"],
  ["dns:///a:1", "UnknownScheme", 0, "dns", "UnknownScheme"],
  ["PASS:///a:1", "UnknownScheme", 0, "PASS", "UnknownScheme"],
  ["pass:a:1", "MissingSlashes", 5, "a:1", "MissingSlashes"],
  ["pass:/a:1", "MissingSlashes", 5, "/a:1", "MissingSlashes"],
  ["etcd:svc", "MissingSlashes", 5, "svc", "MissingSlashes"],
  // pass: list and entries
  ["pass://a:1", "UnexpectedAuthority", 7, "a:1", "UnexpectedAuthority"],
  ["pass://a:1/b:2", "UnexpectedAuthority", 7, "a:1", "UnexpectedAuthority"],
  ["pass:///", "EmptyList", 8, "", "EmptyList"],
  ["pass:///a:1,,b:2", "EmptyEntry", 12, "", "EmptyEntry"],
  ["pass:///,a:1", "EmptyEntry", 8, "", "EmptyEntry"],
  ["pass:///a:1,", "EmptyEntry", 12, "", "EmptyEntry"],
  ["pass:///#2", "EmptyEntry", 8, "#2", "EmptyEntry"],
  ["pass:///a:1,#2", "EmptyEntry", 12, "#2", "EmptyEntry"],
  // pass: ports and hosts
  ["pass:///a", "MissingPort", 8, "a", "MissingPort"],
  ["pass:///a:", "MissingPort", 8, "a:", "MissingPort"],
  ["pass:///a:1,b#2", "MissingPort", 12, "b", "MissingPort"],
  ["pass:///[::1]", "MissingPort", 8, "[::1]", "MissingPort"],
  ["pass:///a:http", "InvalidPort", 10, "http", "InvalidPort"],
  ["pass:///a:-1", "InvalidPort", 10, "-1", "InvalidPort"],
  ["pass:///a:1 ", "InvalidPort", 10, "1 ", "InvalidPort"],
  ["pass:///a:0", "PortOutOfRange", 10, "0", "PortOutOfRange"],
  ["pass:///a:65536", "PortOutOfRange", 10, "65536", "PortOutOfRange"],
  ["pass:///a:1,b:99999999999999999999", "PortOutOfRange", 14, "99999999999999999999", "PortOutOfRange"],
  // Pinned from a property failure: leading zeros count as zeros, not as digits of a huge port.
  ["pass:///a:0000065536", "PortOutOfRange", 10, "0000065536", "PortOutOfRange"],
  ["pass:///[::1:80", "UnbalancedBracket", 8, "[::1:80", "UnbalancedBracket"],
  ["pass:///::1]:80", "UnbalancedBracket", 8, "::1]:80", "UnbalancedBracket"],
  ["pass:///[::1]]:80", "UnbalancedBracket", 13, "]:80", "UnbalancedBracket"],
  ["pass:///::1:80", "UnbracketedIPv6", 8, "::1:80", "UnbracketedIPv6"],
  ["pass:///a_b-:1", "InvalidHost", 8, "a_b-", "InvalidHost"],
  ["pass:///[::g]:80", "InvalidHost", 9, "::g", "InvalidHost"],
  ["pass:///1.2.3.256:80", "InvalidHost", 8, "1.2.3.256", "InvalidHost"],
  // The Kelvin sign lower-cases to an ASCII "k": rejected, not folded.
  ["pass:///\u212A:80", "InvalidHost", 8, "\u212A", "InvalidHost"],
  // counts
  ["pass:///a:1#", "MissingCount", 11, "#", "MissingCount"],
  ["pass:///a:1#,b:2", "MissingCount", 11, "#", "MissingCount"],
  ["pass:///a:1#0", "ZeroCount", 12, "0", "ZeroCount"],
  ["pass:///a:1#000", "ZeroCount", 12, "000", "ZeroCount"],
  ["pass:///a:1#-2", "NegativeCount", 12, "-2", "NegativeCount"],
  ["pass:///a:1#-1.5", "NegativeCount", 12, "-1.5", "NegativeCount"],
  ["pass:///a:1#1.5", "FractionalCount", 12, "1.5", "FractionalCount"],
  ["pass:///a:1#2.0", "FractionalCount", 12, "2.0", "FractionalCount"],
  ["pass:///a:1#.5", "FractionalCount", 12, ".5", "FractionalCount"],
  ["pass:///a:1#two", "InvalidCount", 12, "two", "InvalidCount"],
  ["pass:///a:1#1e2", "InvalidCount", 12, "1e2", "InvalidCount"],
  ["pass:///a:1#+2", "InvalidCount", 12, "+2", "InvalidCount"],
  ["pass:///a:1# 2", "InvalidCount", 12, " 2", "InvalidCount"],
  ["pass:///a:1#2#3", "InvalidCount", 12, "2#3", "InvalidCount"],
  ["pass:///a:1#257", "CountTooLarge", 12, "257", "CountTooLarge"],
  ["pass:///a:1#99999999999999999999", "CountTooLarge", 12, "99999999999999999999", "CountTooLarge"],
  ["pass:///a:1#200,A:1#57", "MergedCountTooLarge", 16, "A:1#57", "MergedCountTooLarge"],
  ["pass:///:1#256,localhost:1", "MergedCountTooLarge", 15, "localhost:1", "MergedCountTooLarge"],
  // etcd: service
  ["etcd://", "MissingService", 7, "", "MissingService"],
  ["etcd://my-service", "MissingService", 7, "my-service", "MissingService"],
  ["etcd:///", "EmptyService", 8, "", "EmptyService"],
  ["etcd:///#2", "EmptyService", 8, "", "EmptyService"],
  ["etcd://e:2379/", "EmptyService", 14, "", "EmptyService"],
  ["etcd:///my service", "InvalidService", 10, " ", "InvalidService"],
  ["etcd:///svc\n", "InvalidService", 11, "\n", "InvalidService"],
  ["etcd:///\tsvc", "InvalidService", 8, "\t", "InvalidService"],
  ["etcd:///a,b", "InvalidService", 9, ",", "InvalidService"],
  ["etcd:///svc\u200b", "InvalidService", 11, "\u200b", "InvalidService"],
  ["etcd:///svc\u00a0x", "InvalidService", 11, "\u00a0", "InvalidService"],
  ["etcd:///svc\ud800", "InvalidService", 11, "\ud800", "InvalidService"],
  ["etcd:///svc\udc00x", "InvalidService", 11, "\udc00", "InvalidService"],
  ["etcd:///svc#", "MissingCount", 11, "#", "MissingCount"],
  ["etcd:///svc#0", "ZeroCount", 12, "0", "ZeroCount"],
  ["etcd:///svc#257", "CountTooLarge", 12, "257", "CountTooLarge"],
  ["etcd:///svc#1.5", "FractionalCount", 12, "1.5", "FractionalCount"],
  // count ranges
  ["pass:///a:1#2..", "IncompleteRange", 12, "2..", "IncompleteRange"],
  ["pass:///a:1#..8", "IncompleteRange", 12, "..8", "IncompleteRange"],
  ["pass:///a:1#..", "IncompleteRange", 12, "..", "IncompleteRange"],
  ["pass:///a:1#2...8", "InvalidRange", 12, "2...8", "InvalidRange"],
  ["pass:///a:1#2..8..9", "InvalidRange", 12, "2..8..9", "InvalidRange"],
  ["pass:///a:1#8..2,b:2", "ReversedRange", 12, "8..2", "ReversedRange"],
  ["pass:///a:1#0..2", "ZeroCount", 12, "0", "ZeroCount"],
  ["pass:///a:1#2..0", "ZeroCount", 15, "0", "ZeroCount"],
  ["pass:///a:1#2..257", "CountTooLarge", 15, "257", "CountTooLarge"],
  ["pass:///a:1#-1..2", "NegativeCount", 12, "-1", "NegativeCount"],
  ["pass:///a:1#1.5..2", "FractionalCount", 12, "1.5", "FractionalCount"],
  ["pass:///a:1#2..x", "InvalidCount", 15, "x", "InvalidCount"],
  ["pass:///a:1#1..200,a:1#1..57", "MergedCountTooLarge", 19, "a:1#1..57", "MergedCountTooLarge"],
  ["etcd:///svc#2..", "IncompleteRange", 12, "2..", "IncompleteRange"],
  ["etcd:///svc#9..3", "ReversedRange", 12, "9..3", "ReversedRange"],
  ["etcd:///svc#2..300", "CountTooLarge", 15, "300", "CountTooLarge"],
  // options
  ["pass:///a:1?", "EmptyOptions", 11, "?", "EmptyOptions"],
  ["etcd:///svc#2?", "EmptyOptions", 13, "?", "EmptyOptions"],
  ["pass:///a:1?subset=2&", "EmptyOption", 21, "", "EmptyOption"],
  ["pass:///a:1?&subset=2", "EmptyOption", 12, "", "EmptyOption"],
  ["etcd:///svc?subset=2&&pick=round_robin", "EmptyOption", 21, "", "EmptyOption"],
  ["etcd:///svc?subset", "MissingOptionValue", 12, "subset", "MissingOptionValue"],
  ["etcd:///svc?pick=", "MissingOptionValue", 12, "pick=", "MissingOptionValue"],
  ["etcd:///svc?size=2", "UnknownOption", 12, "size", "UnknownOption"],
  ["etcd:///svc?Subset=2", "UnknownOption", 12, "Subset", "UnknownOption"],
  ["etcd:///svc?client_id=7", "UnknownOption", 12, "client_id", "UnknownOption"],
  ["etcd:///svc?=2", "UnknownOption", 12, "=2", "UnknownOption"],
  ["etcd:///svc?subset=2&subset=3", "RepeatedOption", 21, "subset=3", "RepeatedOption"],
  ["etcd:///svc?subset=0", "InvalidSubset", 19, "0", "InvalidSubset"],
  ["etcd:///svc?subset=10001", "InvalidSubset", 19, "10001", "InvalidSubset"],
  ["etcd:///svc?subset=-2", "InvalidSubset", 19, "-2", "InvalidSubset"],
  ["pass:///a:1?subset=2.5", "InvalidSubset", 19, "2.5", "InvalidSubset"],
  ["pass:///a:1?subset=99999999999999999999", "InvalidSubset", 19, "99999999999999999999", "InvalidSubset"],
  ["pass:///a:1?pick=random", "InvalidPick", 17, "random", "InvalidPick"],
  ["pass:///a:1?pick=ROUND_ROBIN", "InvalidPick", 17, "ROUND_ROBIN", "InvalidPick"],
  ["etcd:///svc?subset=2#3", "MisplacedCount", 20, "#3", "MisplacedCount"],
  ["pass:///a:1?pick=round_robin#2", "MisplacedCount", 28, "#2", "MisplacedCount"],
  // A "?" ends the body: what comes before it is checked first.
  ["pass:///a:x?subset=2", "InvalidPort", 10, "x", "InvalidPort"],
  ["pass://a:1?subset=2", "UnexpectedAuthority", 7, "a:1", "UnexpectedAuthority"],
  ["etcd://e:1?subset=2/svc", "MissingService", 7, "e:1", "MissingService"],
  ["etcd:///?subset=2", "EmptyService", 8, "", "EmptyService"],
  // etcd: endpoints
  ["etcd://e/svc", "MissingPort", 7, "e", "EtcdMissingPort"],
  ["etcd://e:x/svc", "InvalidPort", 9, "x", "EtcdInvalidPort"],
  ["etcd://e:1#2/svc", "InvalidPort", 9, "1#2", "EtcdInvalidPort"],
  ["etcd://e:0/svc", "PortOutOfRange", 9, "0", "EtcdPortOutOfRange"],
  ["etcd://e:1,f:70000/svc", "PortOutOfRange", 13, "70000", "EtcdPortOutOfRange"],
  ["etcd://[::1/svc", "UnbalancedBracket", 7, "[::1", "EtcdUnbalancedBracket"],
  ["etcd://e..f:1/svc", "InvalidHost", 7, "e..f", "EtcdInvalidHost"],
  ["etcd://e:1,,f:2/svc", "EmptyEntry", 11, "", "EmptyEtcdEndpoint"],
  ["etcd://,e:1/svc", "EmptyEntry", 7, "", "EmptyEtcdEndpoint"],
  ["etcd://e:1,/svc", "EmptyEntry", 11, "", "EmptyEtcdEndpoint"]
]

const errorOf = (input: string): Target.TargetError => {
  const result = Target.parse(input)
  if (Result.isSuccess(result)) throw new Error(`expected ${JSON.stringify(input)} to fail`)
  return result.failure
}

describe("Target.parse errors", () => {
  it.each(errors)("%j: %s at %i", (input, problem, position, piece, reason) => {
    const error = errorOf(input)
    expect(error._tag).toBe("TargetError")
    expect(error).toBeInstanceOf(Target.TargetError)
    expect({ input: error.input, problem: error.problem, position: error.position, piece: error.piece }).toEqual({
      input,
      problem,
      position,
      piece
    })
    expect(input.startsWith(piece, position)).toBe(true)
    expect(error.message).toBe(`${REASON[reason]}: ${JSON.stringify(piece)} at position ${position} in ${JSON.stringify(input)}`)
  })

  it("every problem kind has a row", () => {
    const kinds = new Set(errors.map(([, problem]) => problem))
    const all: ReadonlyArray<Target.TargetProblem> = [
      "EmptyTarget", "MissingScheme", "UnknownScheme", "MissingSlashes", "UnexpectedAuthority", "EmptyList", "EmptyEntry",
      "MissingPort", "InvalidPort", "PortOutOfRange", "UnbalancedBracket", "UnbracketedIPv6", "InvalidHost",
      "MissingCount", "InvalidCount", "NegativeCount", "FractionalCount", "ZeroCount", "CountTooLarge",
      "MergedCountTooLarge", "MissingService", "EmptyService", "InvalidService", "IncompleteRange", "InvalidRange",
      "ReversedRange", "EmptyOptions", "EmptyOption", "MissingOptionValue", "UnknownOption", "RepeatedOption",
      "InvalidSubset", "InvalidPick", "MisplacedCount"
    ]
    expect([...kinds].sort()).toEqual([...all].sort())
  })

  it("spells out a message in full", () => {
    expect(errorOf("pass:///a:1#0").message).toBe(
      `the count is 0; expected a whole number 1..256 (remove the entry to open no connections): "0" at position 12 in "pass:///a:1#0"`
    )
    expect(errorOf("pass:///a:1,,b:2").message).toBe(
      `an entry has no address (two commas in a row, a comma at the start or end, or nothing before "#"); expected host:port[#n]: "" at position 12 in "pass:///a:1,,b:2"`
    )
  })

  it("shortens a long piece and leaves out a long input", () => {
    const input = `pass:///a:1#${"9".repeat(500)}`
    const error = errorOf(input)
    expect(error.piece).toBe("9".repeat(500))
    expect(error.message).toBe(
      `${REASON.CountTooLarge}: ${JSON.stringify(`${"9".repeat(79)}…`)} at position 12 in a target of ${input.length} characters`
    )
  })

  it("quotes a piece of exactly 80 characters and an input of exactly 200 in full", () => {
    const at80 = `pass:///a:1#${"9".repeat(80)}`
    expect(errorOf(at80).message).toBe(`${REASON.CountTooLarge}: ${JSON.stringify("9".repeat(80))} at position 12 in ${JSON.stringify(at80)}`)
    const at200 = `pass:///a:1#${"9".repeat(188)}`
    expect(errorOf(at200).message).toBe(
      `${REASON.CountTooLarge}: ${JSON.stringify(`${"9".repeat(79)}…`)} at position 12 in ${JSON.stringify(at200)}`
    )
    const at201 = `${at200}9`
    expect(errorOf(at201).message).toBe(
      `${REASON.CountTooLarge}: ${JSON.stringify(`${"9".repeat(79)}…`)} at position 12 in a target of 201 characters`
    )
  })

  it("names the address of a TargetError built by hand from where its position lies", () => {
    const message = (input: string, position: number, piece: string) =>
      new Target.TargetError({ input, position, piece, problem: "MissingPort" }).message
    // An etcd text without a "/" after the endpoints: the endpoint is meant.
    expect(message("etcd://e", 7, "e")).toBe(`${REASON.EtcdMissingPort}: "e" at position 7 in "etcd://e"`)
    // A position after the "/": the address.
    expect(message("etcd://e:1/h", 11, "h")).toBe(`${REASON.MissingPort}: "h" at position 11 in "etcd://e:1/h"`)
  })

  it("parseUnsafe throws the same TargetError", () => {
    const input = "pass:///a:1,,b:2"
    expect(() => Target.parseUnsafe(input)).toThrow(Target.TargetError)
    try {
      Target.parseUnsafe(input)
    } catch (thrown) {
      expect(thrown).toEqual(errorOf(input))
      expect((thrown as Error).message).toBe(errorOf(input).message)
    }
  })
})

describe("Target.parse results", () => {
  it("parses the README examples", () => {
    expect(Target.parseUnsafe("pass:///10.0.0.1:9080#2,10.0.0.2:9090#1")).toEqual({
      _tag: "Pass",
      endpoints: [
        { address: { host: "10.0.0.1", port: 9080 }, count: 2, maxCount: 2 },
        { address: { host: "10.0.0.2", port: 9090 }, count: 1, maxCount: 1 }
      ],
      options: {}
    })
    expect(Target.parseUnsafe("etcd:///my-service#2")).toEqual({
      _tag: "Etcd",
      etcd: [],
      service: "my-service",
      count: 2,
      maxCount: 2,
      options: {}
    })
    expect(Target.parseUnsafe("etcd:///prod/billing#3")).toEqual({
      _tag: "Etcd",
      etcd: [],
      service: "prod/billing",
      count: 3,
      maxCount: 3,
      options: {}
    })
  })

  it("merges duplicates in first-appearance order", () => {
    expect(Target.parseUnsafe("pass:///a:1#2,b:2,A:1#1")).toEqual({
      _tag: "Pass",
      endpoints: [
        { address: { host: "a", port: 1 }, count: 3, maxCount: 3 },
        { address: { host: "b", port: 2 }, count: 1, maxCount: 1 }
      ],
      options: {}
    })
    expect(Target.parseUnsafe("pass:///a:1#128,a:1#128")).toEqual({
      _tag: "Pass",
      endpoints: [{ address: { host: "a", port: 1 }, count: 256, maxCount: 256 }],
      options: {}
    })
  })

  it("merges duplicates with ranges: minimums added, maximums added", () => {
    expect(Target.parseUnsafe("pass:///a:1#2..8,b:2,a:1#3,a:1#1..100")).toEqual({
      _tag: "Pass",
      endpoints: [
        { address: { host: "a", port: 1 }, count: 6, maxCount: 111 },
        { address: { host: "b", port: 2 }, count: 1, maxCount: 1 }
      ],
      options: {}
    })
    expect(Target.parseUnsafe("pass:///a:1#1..128,a:1#1..128")).toMatchObject({ endpoints: [{ count: 2, maxCount: 256 }] })
  })

  it("parses count ranges for pass and etcd targets", () => {
    expect(Target.parseUnsafe("pass:///a:1#2..8,b:2#1..256")).toEqual({
      _tag: "Pass",
      endpoints: [
        { address: { host: "a", port: 1 }, count: 2, maxCount: 8 },
        { address: { host: "b", port: 2 }, count: 1, maxCount: 256 }
      ],
      options: {}
    })
    expect(Target.parseUnsafe("etcd:///svc#2..8")).toEqual({
      _tag: "Etcd",
      etcd: [],
      service: "svc",
      count: 2,
      maxCount: 8,
      options: {}
    })
    expect(Target.parseUnsafe("etcd:///svc#02..0008")).toMatchObject({ count: 2, maxCount: 8 })
  })

  it("parses options in any order", () => {
    expect(Target.parseUnsafe("etcd:///svc#2?subset=20&pick=least_request")).toEqual({
      _tag: "Etcd",
      etcd: [],
      service: "svc",
      count: 2,
      maxCount: 2,
      options: { subset: 20, pick: "least_request" }
    })
    expect(Target.parseUnsafe("pass:///a:1,b:2?pick=round_robin&subset=1").options).toEqual({ subset: 1, pick: "round_robin" })
    expect(Target.parseUnsafe("etcd://e:1/svc?subset=010000").options).toEqual({ subset: 10_000 })
    // "?" was a service character before 0.3.0; it now starts the options.
    expect(Target.parseUnsafe("etcd:///svc?pick=least_request")).toMatchObject({ service: "svc" })
  })

  it("parseCount and formatCount read and write what follows #", () => {
    expect(Target.parseCount("2..8")).toEqual(Result.succeed({ count: 2, maxCount: 8 }))
    expect(Target.parseCount("4")).toEqual(Result.succeed({ count: 4, maxCount: 4 }))
    expect(Target.parseCount("4..4")).toEqual(Result.succeed({ count: 4, maxCount: 4 }))
    const reversed = Target.parseCount("8..2")
    expect(Result.isFailure(reversed) && [reversed.failure.problem, reversed.failure.position]).toEqual(["ReversedRange", 0])
    const empty = Target.parseCount("")
    expect(Result.isFailure(empty) && empty.failure.problem).toBe("InvalidCount")
    expect(Target.formatCount({ count: 2, maxCount: 8 })).toBe("2..8")
    expect(Target.formatCount({ count: 3, maxCount: 3 })).toBe("3")
    expect(Target.formatOptions({ pick: "least_request", subset: 20 })).toBe("subset=20&pick=least_request")
    expect(Target.formatOptions({})).toBe("")
  })

  it("lists etcd endpoints once, in order", () => {
    expect(Target.parseUnsafe("etcd://E1:2379,[0::1]:2379,e1:2379/svc")).toEqual({
      _tag: "Etcd",
      etcd: [
        { host: "e1", port: 2379 },
        { host: "::1", port: 2379 }
      ],
      service: "svc",
      count: 1,
      maxCount: 1,
      options: {}
    })
  })

  it("accepts the largest count", () => {
    expect(Target.parseUnsafe("pass:///a:1#256")).toEqual({
      _tag: "Pass",
      endpoints: [{ address: { host: "a", port: 1 }, count: Target.MAX_COUNT, maxCount: Target.MAX_COUNT }],
      options: {}
    })
  })
})

describe("Target.parse edges", () => {
  it("takes a service of surrogate pairs at the edges, the largest merged count and subset", () => {
    expect(Target.parseUnsafe("etcd:///\ud800\udc00\udbff\udfff\u{1F600}#2")).toEqual({
      _tag: "Etcd", etcd: [], service: "\ud800\udc00\udbff\udfff\u{1F600}", count: 2, maxCount: 2, options: {}
    })
    expect(Target.parseUnsafe("pass:///a:1#128,a:1#128")).toEqual(Target.parseUnsafe("pass:///a:1#256"))
    expect(Target.parseUnsafe("etcd:///s?subset=10000").options).toStrictEqual({ subset: 10000 })
  })

  it("gives options only the keys that were written", () => {
    expect(Object.keys(Target.parseUnsafe("etcd:///s?pick=ewma").options)).toEqual(["pick"])
    expect(Object.keys(Target.parseUnsafe("etcd:///s?subset=2").options)).toEqual(["subset"])
    expect(Object.keys(Target.parseUnsafe("etcd:///s").options)).toEqual([])
  })

  it("writes a range that starts at 1 and leaves out a fixed count of 1", () => {
    expect(Target.format(Target.parseUnsafe("pass:///a:1#1..4,b:2#1"))).toBe("pass:///a:1#1..4,b:2")
    expect(Target.format(Target.parseUnsafe("etcd:///s#1..3"))).toBe("etcd:///s#1..3")
    expect(Target.format(Target.parseUnsafe("etcd:///s#1"))).toBe("etcd:///s")
  })
})

describe("Target.format", () => {
  it.each([
    ["pass:///10.0.0.1:9080#2,10.0.0.2:9090#1", "pass:///10.0.0.1:9080#2,10.0.0.2:9090"],
    ["pass:///:9080", "pass:///localhost:9080"],
    ["pass:///:1,localhost:1", "pass:///localhost:1#2"],
    ["pass:///EXAMPLE.com:80#3", "pass:///example.com:80#3"],
    ["pass:///[0:0:0:0:0:0:0:1]:80", "pass:///[::1]:80"],
    ["pass:///[2001:DB8:0:0:1:0:0:1]:443", "pass:///[2001:db8::1:0:0:1]:443"],
    ["pass:///a:1#2,b:2,a:1#1", "pass:///a:1#3,b:2"],
    ["pass:///a:1#007", "pass:///a:1#7"],
    ["pass:///a:080", "pass:///a:80"],
    // Pinned from a property failure (seed -801005400): a 7-character port with leading zeros was out of range.
    ["pass:///0.0.0.0:0010000#1", "pass:///0.0.0.0:10000"],
    ["etcd://024.125.037.164:0019006/svc", "etcd://24.125.37.164:19006/svc"],
    ["pass:///a:1#1,b:1#256", "pass:///a:1,b:1#256"],
    ["etcd:///prod/billing#3", "etcd:///prod/billing#3"],
    ["etcd:///svc#1", "etcd:///svc"],
    ["etcd://E1:2379,e1:2379,[::1]:2379/svc", "etcd://e1:2379,[::1]:2379/svc"],
    ["etcd://:2379/svc", "etcd://localhost:2379/svc"],
    ["etcd:///Prod/Billing", "etcd:///Prod/Billing"],
    ["etcd:////leading/and/trailing/", "etcd:////leading/and/trailing/"],
    ["etcd:///caf\u00e9-\u{1F600}", "etcd:///caf\u00e9-\u{1F600}"],
    ["etcd:///a%2Fb", "etcd:///a%2Fb"],
    ["pass:///a:1#2..2", "pass:///a:1#2"],
    ["pass:///a:1#1..1,b:2#1..3", "pass:///a:1,b:2#1..3"],
    ["pass:///a:1#1..4,a:1#2..2?pick=round_robin", "pass:///a:1#3..6?pick=round_robin"],
    ["etcd:///svc#2..2?pick=least_request&subset=20", "etcd:///svc#2?subset=20&pick=least_request"],
    ["etcd:///svc#1..1?subset=007", "etcd:///svc?subset=7"],
    ["etcd://E:1/svc#002..08", "etcd://e:1/svc#2..8"]
  ])("%j is %j", (input, canonical) => {
    const target = Target.parseUnsafe(input)
    expect(Target.format(target)).toBe(canonical)
    expect(Target.format(Target.parseUnsafe(canonical))).toBe(canonical)
    expect(Target.parseUnsafe(canonical)).toEqual(target)
  })
})

describe("the characters of an etcd service, at the edges of each refused range", () => {
  const problemAt = (c: number) => {
    const result = Target.parse(`etcd:///a${String.fromCharCode(c)}b`)
    return Result.isFailure(result) ? [result.failure.problem, result.failure.position] : "ok"
  }
  const hex = (codes: ReadonlyArray<number>) => codes.map((c) => [c.toString(16).toUpperCase().padStart(4, "0"), c] as const)
  it.each(hex([0x7f, 0xa0, 0xad, 0x1680, 0x2000, 0x200f, 0x2028, 0x202f, 0x205f, 0x206f, 0x3000, 0xfeff, 0xdc00, 0xdfff]))(
    "refuses U+%s",
    (_, c) => {
      expect(problemAt(c)).toEqual(["InvalidService", 9])
    }
  )
  it.each(hex([0x7e, 0xa1, 0xac, 0xae, 0x167f, 0x1681, 0x1fff, 0x2010, 0x2027, 0x2030, 0x205e, 0x2070, 0x2fff, 0x3001, 0xfefe, 0xff00]))(
    "accepts U+%s",
    (_, c) => {
      expect(problemAt(c)).toBe("ok")
    }
  )
})
