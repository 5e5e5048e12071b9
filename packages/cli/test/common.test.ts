/**
 * The command's pure pieces, without running it: the caret under a bad
 * target's piece (shared by resolve, watch and demo), watch's diff of two
 * endpoint sets, and the demo's checks.
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { describe, expect, it } from "@effect/vitest"
import { type EtcdRecord, Target } from "grpc-anchor/core"
import { evaluate } from "../src/demo/judge.js"
import { MIN_PHASE_CALLS, SHARE_TOLERANCE, type PhaseName, type State } from "../src/demo/state.js"
import { caretLines, EXIT_USAGE, parseTarget } from "../src/internal/common.js"
import { diff } from "../src/watch.js"

describe("caretLines", () => {
  const long = `pass:///${Array.from({ length: 40 }, (_, i) => `10.0.0.${i}:80`).join(",")},10.9.9.9:99999`
  // [name, input, position, piece length, excerpt (after the indent), caret column in it, underline width]
  it.each([
    ["the caret under a one-character piece", "pass:///a:1#0", 12, 1, "pass:///a:1#0", 12, 1],
    ["the underline covers the piece", "pass:///127.0.0.1:99999", 18, 5, "pass:///127.0.0.1:99999", 18, 5],
    ["an empty piece at the end gets one column past the text", "etcd://127.0.0.1:2379/", 22, 0, "etcd://127.0.0.1:2379/", 22, 1],
    ["the whole text", "10.0.0.1:9080", 0, 13, "10.0.0.1:9080", 0, 13],
    ["an invisible character is escaped and underlined whole", "etcd:///a\u200bb", 9, 1, "etcd:///a\\u{200b}b", 9, 8],
    ["a control character before the piece shifts the caret by its escape", "etcd:///\tx y", 10, 1, "etcd:///\\u{9}x y", 14, 1],
    ["an astral character is one token of two UTF-16 units", "etcd:///\u{1f600} x", 10, 1, "etcd:///\\u{1f600} x", 17, 1],
    ["Latin-1 letters are kept as they are", "etcd:///caf\u00e9 x", 12, 1, "etcd:///caf\u00e9 x", 12, 1],
    // A third of the width before the piece, "..." where the text was cut.
    ["a long text is cut before the piece", long, long.length - 5, 5, `...${long.slice(-38)}`, 36, 5]
  ])("%s", (_name, input, position, length, excerpt, column, underline) => {
    expect(caretLines(input, position, length)).toEqual([`  ${excerpt}`, `  ${" ".repeat(column)}^${"~".repeat(underline - 1)}`])
  })

  it("cuts both ends of a long text around a piece in the middle, within 100 columns", () => {
    const input = `pass:///${"a".repeat(200)}:1#0,${"b".repeat(200)}:2`
    const position = input.indexOf("#0") + 1
    const [excerpt, caret] = caretLines(input, position, 1)
    expect(excerpt.startsWith("  ...")).toBe(true)
    expect(excerpt.endsWith("...")).toBe(true)
    expect(excerpt.length).toBeLessThanOrEqual(2 + 3 + 100 + 3)
    expect(excerpt[caret.indexOf("^")]).toBe("0")
  })
})

describe("parseTarget", () => {
  it.each([
    ["", "EmptyTarget"],
    ["10.0.0.1:9080", "MissingScheme"],
    ["pass:///a:1,,b:2", "EmptyEntry"],
    ["pass:///a:1#0", "ZeroCount"],
    ["etcd://127.0.0.1:2379/", "EmptyService"],
    ["etcd:///my service", "InvalidService"],
    ["etcd://http://127.0.0.1:2379/demo#2", "MissingPort"],
    ["etcd://127.0.0.1:2379/a#b#2", "InvalidCount"]
  ] as const)("%j: a usage error with the core's message and a caret under the piece", (input, problem) => {
    const error = Result.getOrThrow(Result.flip(Target.parse(input)))
    expect(error.problem).toBe(problem)
    const failed = Effect.runSync(Effect.flip(parseTarget(input)))
    expect(failed.exitCode).toBe(EXIT_USAGE)
    const [first, excerpt, caret, ...rest] = failed.message.split("\n")
    expect(rest).toEqual([])
    expect(first).toBe(`bad target: ${error.message}`)
    expect([excerpt, caret]).toEqual(caretLines(input, error.position, error.piece.length))
    expect(caret!.indexOf("^") - 2).toBe(error.position)
  })

  it("names what the target came from", () => {
    const failed = Effect.runSync(Effect.flip(parseTarget("etcd:///a b#2", "--service makes a bad target")))
    expect(failed.message).toMatch(/^--service makes a bad target: the etcd service may not contain whitespace/)
  })

  it("gives the parsed target", () => {
    expect(Effect.runSync(parseTarget("etcd://LOCALHOST:2379/svc#2"))).toEqual(Target.parseUnsafe("etcd://localhost:2379/svc#2"))
  })
})

describe("watch: diff", () => {
  const e = (address: string, metadata: unknown = null): EtcdRecord.Endpoint => ({ address, metadata })
  it.each([
    ["nothing to nothing", [], [], []],
    ["the same set", [e("a:1"), e("b:2")], [e("b:2"), e("a:1")], []],
    ["one added", [e("a:1")], [e("a:1"), e("b:2")], [["added", "b:2"]]],
    ["one removed", [e("a:1"), e("b:2")], [e("b:2")], [["removed", "a:1"]]],
    ["metadata changed", [e("a:1", { zone: "a" })], [e("a:1", { zone: "b" })], [["updated", "a:1"]]],
    ["equal metadata in another key order is no change", [e("a:1", { x: 1, y: 2 })], [e("a:1", { y: 2, x: 1 })], []],
    ["metadata from null", [e("a:1")], [e("a:1", 1)], [["updated", "a:1"]]],
    [
      "removals first, then additions and updates in the new order",
      [e("a:1"), e("b:2"), e("c:3", 1)],
      [e("d:4"), e("c:3", 2), e("b:2")],
      [["removed", "a:1"], ["added", "d:4"], ["updated", "c:3"]]
    ]
  ] as const)("%s", (_name, before, after, expected) => {
    expect(diff(before, after).map((c) => [c.kind, c.endpoint.address])).toEqual(expected)
  })

  it("reports the endpoint as it is after the change", () => {
    expect(diff([e("a:1", "old")], [e("a:1", "new")])).toEqual([{ kind: "updated", endpoint: e("a:1", "new") }])
  })
})

describe("demo: evaluate", () => {
  const NAMES = ["s1", "s2", "s3"] as const

  /** A phase with `answers` answered calls per server and the shares expected of it. */
  const phase = (
    name: PhaseName,
    startMs: number,
    answers: ReadonlyArray<number>,
    expected?: ReadonlyArray<number>
  ): State["phases"][number] => ({
    name,
    judged: expected !== undefined,
    startMs,
    endMs: undefined,
    calls: answers.reduce((a, b) => a + b, 0),
    failed: 0,
    answers: new Map(NAMES.map((n, i) => [n, answers[i]!])),
    expected: expected === undefined ? undefined : new Map(NAMES.map((n, i) => [n, expected[i]!]))
  })

  /** A run in which every check holds: weights 3/2/1, the third killed, seen, restarted, rejoined. */
  const passing = (mode: "pass" | "etcd" = "pass"): State => ({
    mode,
    target: "pass:///127.0.0.1:1#3,127.0.0.1:2#2,127.0.0.1:3",
    durationMs: 4_000,
    backends: NAMES.map((name, i) => ({
      name,
      weight: 3 - i,
      expectedConnections: 3 - i,
      port: i + 1,
      process: undefined,
      answered: 0,
      slots: 3 - i,
      ready: 3 - i,
      serverConnections: 3 - i,
      serverCalls: 0,
      perConnection: []
    })),
    phases: [
      phase("all up", 0, [300, 200, 100], [3 / 6, 2 / 6, 1 / 6]),
      phase("kill -> seen", 1_000, [5, 3, 0]),
      phase("third down", 1_020, [300, 200, 0], [3 / 5, 2 / 5, 0]),
      phase("restart -> rejoined", 2_000, [30, 20, 0]),
      phase("rejoined", 2_600, [300, 200, 100], [3 / 6, 2 / 6, 1 / 6])
    ],
    events: [],
    failures: [],
    failedTotal: 2,
    failedAfterKillSeen: 0,
    failedBeforeKill: 0,
    okTotal: 1_758,
    inFlight: 0,
    t0: 0,
    killSentMs: 1_000,
    killSeenMs: 1_020,
    recordGoneMs: mode === "etcd" ? 3_000 : undefined,
    restartMs: 2_000,
    restartedMs: 2_500,
    rejoinedMs: 2_600,
    endMs: 4_000
  })

  const at = (state: State, name: PhaseName) => state.phases.find((p) => p.name === name)!

  it.each<[string, (state: State) => void, ReadonlyArray<string>]>([
    ["every check holds", () => {}, []],
    [
      `a share within ${SHARE_TOLERANCE} points holds`,
      (s) => {
        const p = at(s, "all up")
        // s1 51.5% (expected 50%), s2 31.8% (expected 33.3%).
        p.answers.set("s1", 309).set("s2", 191)
      },
      []
    ],
    [
      `a share more than ${SHARE_TOLERANCE} points off fails its phase`,
      (s) => {
        // s1 62.5%, s2 37.5% of the third-down calls (expected 60% / 40%).
        at(s, "third down").answers.set("s1", 300).set("s2", 180)
      },
      ["shares while third down"]
    ],
    [
      `a phase of fewer than ${MIN_PHASE_CALLS} calls is not judged a pass`,
      (s) => {
        at(s, "rejoined").calls = MIN_PHASE_CALLS - 1
      },
      ["shares while rejoined"]
    ],
    [
      "a phase that never started fails",
      (s) => {
        s.phases.pop()
      },
      ["shares while rejoined"]
    ],
    [
      "a server seeing another number of connections fails",
      (s) => {
        ;(s.backends[1] as { serverConnections: number | undefined }).serverConnections = 3
      },
      ["connections seen by the servers at the end"]
    ],
    [
      "an unknown connection count fails",
      (s) => {
        ;(s.backends[2] as { serverConnections: number | undefined }).serverConnections = undefined
      },
      ["connections seen by the servers at the end"]
    ],
    [
      "a failed call started after the kill was seen fails",
      (s) => {
        s.failedTotal++
        s.failedAfterKillSeen++
        s.failures.push({ phase: "third down", startMs: 1_500, endMs: 1_510, error: "UNAVAILABLE: x" })
      },
      ["no failed call started after the kill was seen"]
    ],
    [
      "a failed call before the kill fails",
      (s) => {
        s.failedTotal++
        s.failedBeforeKill++
      },
      ["no failed call before the kill"]
    ],
    [
      "a kill never seen fails two checks",
      (s) => {
        s.killSeenMs = undefined
      },
      ["no failed call started after the kill was seen", "the channel saw the kill"]
    ],
    [
      "a server that never rejoined fails",
      (s) => {
        s.rejoinedMs = undefined
      },
      ["the restarted server rejoined"]
    ]
  ])("%s", (_name, change, failing) => {
    const state = passing()
    change(state)
    const summary = evaluate(state, 2)
    expect(summary.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(failing)
    expect(summary.ok).toBe(failing.length === 0)
  })

  it("explains a phase with too few calls, and a phase that never started", () => {
    const few = passing()
    at(few, "all up").calls = 10
    expect(evaluate(few, 2).checks.find((c) => c.name === "shares while all up")!.detail).toMatch(/only 10 calls, fewer than \d+: too few to judge/)
    const missing = passing()
    missing.phases.splice(2, 1)
    expect(evaluate(missing, 2).checks.find((c) => c.name === "shares while third down")!.detail).toBe("the phase never started")
  })

  it("with etcd, also checks that the killed server's record expired", () => {
    expect(evaluate(passing("pass"), 2).checks.map((c) => c.name)).not.toContain("the killed server's record expired")
    const expired = evaluate(passing("etcd"), 2)
    expect(expired.ok).toBe(true)
    expect(expired.checks.find((c) => c.name === "the killed server's record expired")!.detail).toBe("2.0s after the SIGKILL (lease TTL 2 s)")
    const stale = passing("etcd")
    stale.recordGoneMs = undefined
    const summary = evaluate(stale, 2)
    expect(summary.ok).toBe(false)
    expect(summary.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(["the killed server's record expired"])
  })

  it("sums the run up: shares per phase against the expected ones, servers' counts", () => {
    const summary = evaluate(passing(), 2)
    expect(summary.phases.map((p) => [p.name, p.judged, p.calls])).toEqual([
      ["all up", true, 600],
      ["kill -> seen", false, 8],
      ["third down", true, 500],
      ["restart -> rejoined", false, 50],
      ["rejoined", true, 600]
    ])
    expect(summary.phases[2]!.shares).toEqual([
      { server: "s1", calls: 300, share: 0.6, expected: 0.6 },
      { server: "s2", calls: 200, share: 0.4, expected: 0.4 },
      { server: "s3", calls: 0, share: 0, expected: 0 }
    ])
    expect(summary.servers.map((s) => [s.name, s.address, s.connections])).toEqual([
      ["s1", "127.0.0.1:1", 3],
      ["s2", "127.0.0.1:2", 2],
      ["s3", "127.0.0.1:3", 1]
    ])
  })
})
