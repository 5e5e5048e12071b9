/**
 * `grpc-anchor resolve`, run from the build: canonical targets, slots and one
 * period of the schedule; bad targets exit 2 with a caret under the piece
 * the core's TargetError names.
 */
import * as Result from "effect/Result"
import { afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { Subset, Target } from "grpc-anchor/core"
import { hasAnsi, hasStackTrace, killAll, requireBuild, run } from "./run.js"

beforeAll(requireBuild)
afterEach(killAll)

describe("resolve: good targets", () => {
  it("prints the canonical pass target, its slots and one period of the schedule", async () => {
    const result = await run(["resolve", "pass:///10.0.0.1:9080#2,10.0.0.2:9090"])
    expect(result.code).toBe(0)
    expect(result.stderr).toBe("")
    expect(hasAnsi(result.stdout)).toBe(false)
    const lines = result.stdout.split("\n")
    expect(lines[0]).toMatch(/^target\s+pass:\/\/\/10\.0\.0\.1:9080#2,10\.0\.0\.2:9090\s+\(canonical\)$/)
    expect(result.stdout).toContain("2 addresses, 3 connections")
    expect(result.stdout).toMatch(/0\s+10\.0\.0\.1:9080#0\n\s+1\s+10\.0\.0\.1:9080#1\n\s+2\s+10\.0\.0\.2:9090#0/)
    expect(result.stdout).toMatch(/one period of 3 picks/)
    expect(result.stdout).toMatch(/\n\s+0 2 1\n/)
  })

  it("prints JSON: canonical form, shares, slots and the period as slot numbers", async () => {
    const result = await run(["resolve", "--json", "pass:///A.example:1#1,a.example:1#2,[0:0::1]:9090"])
    expect(result.code).toBe(0)
    const json = JSON.parse(result.stdout) as {
      ok: boolean
      target: string
      kind: string
      connections: number
      addresses: Array<{ address: string; count: number; share: number }>
      slots: Array<{ slot: number; address: string; index: number }>
      period: { length: number; order: Array<number>; truncated: boolean }
    }
    expect(json.ok).toBe(true)
    expect(json.kind).toBe("pass")
    expect(json.target).toBe("pass:///a.example:1#3,[::1]:9090")
    expect(json.connections).toBe(4)
    expect(json.addresses).toEqual([
      { address: "a.example:1", count: 3, share: 0.75 },
      { address: "[::1]:9090", count: 1, share: 0.25 }
    ])
    expect(json.slots.map((s) => `${s.address}#${s.index}`)).toEqual(["a.example:1#0", "a.example:1#1", "a.example:1#2", "[::1]:9090#0"])
    expect(json.period.length).toBe(4)
    expect(json.period.truncated).toBe(false)
    // Smooth: [::1]:9090's one slot (3) between a.example:1's slots 0 and 1, not after all three.
    expect(json.period.order).toEqual([0, 3, 1, 2])
  })

  it("prints an etcd target's service, count and endpoints without any network", async () => {
    // Port 1 on loopback: nothing listens; resolve must not try.
    const result = await run(["resolve", "--json", "etcd://127.0.0.1:1,LOCALHOST:2379/prod/billing#3"])
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual({
      ok: true,
      input: "etcd://127.0.0.1:1,LOCALHOST:2379/prod/billing#3",
      target: "etcd://127.0.0.1:1,localhost:2379/prod/billing#3",
      kind: "etcd",
      service: "prod/billing",
      prefix: "prod/billing/",
      count: 3,
      etcd: ["127.0.0.1:1", "localhost:2379"]
    })
    const text = await run(["resolve", "etcd:///my-service"])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^service\s+my-service$/m)
    expect(text.stdout).toMatch(/^count\s+1 connection to every endpoint/m)
    expect(text.stdout).toMatch(/^etcd\s+\(none in the target/m)
  })
})

describe("resolve: count ranges and options", () => {
  it("shows a range's starting and largest counts, the pick mode and the subset", async () => {
    const result = await run(["resolve", "pass:///a:1#1..4,b:1#2,c:1,d:1?pick=least_request&subset=2"])
    expect(result.code).toBe(0)
    expect(result.stderr).toBe("")
    const out = result.stdout
    expect(out).toMatch(/^target\s+pass:\/\/\/a:1#1\.\.4,b:1#2,c:1,d:1\?subset=2&pick=least_request\s+\(canonical form of /)
    expect(out).toMatch(/^kind\s+pass: 4 addresses, 5 connections to start with, at most 8 \(adaptive counts grow while saturated\)$/m)
    expect(out).toMatch(/^pick\s+least_request: /m)
    expect(out).toMatch(/^subset\s+each client connects to 2 of the 4 addresses, chosen by its client id \(channel option grpc_anchor\.client_id/m)
    expect(out).toMatch(/^a:1\s+1\.\.4\s+20\.0%$/m)
  })

  it("shows the ewma pick mode, in text and JSON", async () => {
    const text = await run(["resolve", "pass:///a:1#2,b:1?pick=ewma"])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^pick\s+ewma: of two ready connections drawn at random, the one with the lower peak-EWMA latency/m)
    const json = await run(["resolve", "--json", "pass:///a:1#2,b:1?pick=ewma"])
    expect(JSON.parse(json.stdout)).toMatchObject({ target: "pass:///a:1#2,b:1?pick=ewma", options: { pick: "ewma" } })
  })

  it("with --client-id, shows that client's subset and its slots, as Subset.select chooses", async () => {
    const input = "pass:///a:1#2,b:1,c:1,d:1?subset=2"
    const addresses = ["a:1", "b:1", "c:1", "d:1"]
    for (const id of ["0", "3", "web-7/4711"]) {
      const result = await run(["resolve", "--json", "--client-id", id, input])
      expect(result.code).toBe(0)
      const json = JSON.parse(result.stdout) as {
        subset: { clientId: string; of: number; addresses: Array<string> }
        addresses: Array<{ address: string }>
        slots: Array<{ address: string }>
        options: { subset: number }
      }
      const expected = Subset.select(addresses, 2, id)
      expect(json.options).toEqual({ subset: 2 })
      expect(json.subset).toEqual({ clientId: id, of: 4, addresses: expected })
      expect(json.addresses.map((a) => a.address)).toEqual(expected)
      expect(new Set(json.slots.map((slot) => slot.address))).toEqual(new Set(expected))
    }
    const text = await run(["resolve", "--client-id", "3", input])
    expect(text.stdout).toMatch(new RegExp(`^subset\\s+client 3 connects to 2 addresses of the 4: ${Subset.select(addresses, 2, 3).join(", ")}$`, "m"))
  })

  it("shows an etcd target's range and options, in JSON only when present", async () => {
    const result = await run(["resolve", "--json", "etcd:///svc#2..8?subset=20&pick=round_robin"])
    expect(JSON.parse(result.stdout)).toMatchObject({ count: 2, maxCount: 8, options: { subset: 20, pick: "round_robin" } })
    const plain = JSON.parse((await run(["resolve", "--json", "etcd:///svc#2"])).stdout) as Record<string, unknown>
    expect(plain["maxCount"]).toBeUndefined()
    expect(plain["options"]).toBeUndefined()
    const text = await run(["resolve", "etcd:///svc#2..8?subset=20"])
    expect(text.stdout).toMatch(/^count\s+2\.\.8 connections to every endpoint registered in etcd, unless its record sets its own \(start with 2, grow to at most 8/m)
    expect(text.stdout).toMatch(/^subset\s+each client connects to 20 of the endpoints/m)
    expect(text.stdout).toContain("grpc-anchor watch etcd:///svc`")
  })

  it.each([
    ["a reversed range", "pass:///a:1#8..2"],
    ["an unknown option", "pass:///a:1?weight=2"],
    ["a bad pick mode", "etcd:///svc?pick=random"],
    ["a subset of 0", "etcd:///svc?subset=0"]
  ])("%s: exits 2 with the core's message", async (_name, input) => {
    const parsed = Target.parse(input)
    if (Result.isSuccess(parsed)) throw new Error(`${input} parses`)
    const result = await run(["resolve", input])
    expect(result.code).toBe(2)
    expect(result.stderr.split("\n")[0]).toBe(`grpc-anchor: bad target: ${parsed.failure.message}`)
  })
})

describe("resolve: bad targets", () => {
  // The caret line and the excerpt start with the same two-space indent.
  const caretColumn = (stderr: string) => {
    const lines = stderr.split("\n")
    const caret = lines.findIndex((l) => /^\s*\^~*$/.test(l))
    return { excerpt: lines[caret - 1]!, caret: lines[caret]!, column: lines[caret]!.indexOf("^") - 2, lines }
  }

  it.each([
    ["empty", ""],
    ["no scheme", "10.0.0.1:9080"],
    ["unknown scheme", "http://10.0.0.1:9080"],
    ["empty entry", "pass:///a:1,,b:2"],
    ["zero count", "pass:///a:1#0"],
    ["count too large", "pass:///a:1#2,b:2#999"],
    ["port out of range", "pass:///127.0.0.1:99999"],
    ["unbalanced bracket", "pass:///[::1:80"],
    ["empty service", "etcd://127.0.0.1:2379/"],
    ["space in service", "etcd:///my service"],
    ["bad etcd endpoint", "etcd://127.0.0.1:2379,nope/svc"]
  ])("%s: exits 2, prints the error with a caret under the offending piece", async (_name, input) => {
    const parsed = Target.parse(input)
    if (Result.isSuccess(parsed)) throw new Error(`${input} parses`)
    const error = parsed.failure
    const result = await run(["resolve", input])
    expect(result.code).toBe(2)
    expect(result.stdout).toBe("")
    expect(hasStackTrace(result.stderr)).toBe(false)
    expect(hasAnsi(result.stderr)).toBe(false)
    const { caret, column, excerpt, lines } = caretColumn(result.stderr)
    expect(lines[0]).toBe(`grpc-anchor: bad target: ${error.message}`)
    expect(excerpt).toBe(`  ${input}`)
    expect(column).toBe(error.position)
    // The underline covers the piece (at least one column for an empty piece).
    expect(caret.trim().length).toBe(Math.max(1, error.piece.length))
  })

  it("prints the error as JSON with --json, exit 2", async () => {
    const result = await run(["resolve", "--json", "pass:///a:1#0"])
    expect(result.code).toBe(2)
    expect(result.stderr).toBe("")
    const json = JSON.parse(result.stdout) as { ok: boolean; error: { problem: string; position: number; piece: string; input: string } }
    expect(json).toMatchObject({ ok: false, error: { problem: "ZeroCount", position: 12, piece: "0", input: "pass:///a:1#0" } })
  })

  it("keeps the caret exact around invisible characters and in a long target", async () => {
    // A zero-width space in the service is shown escaped, and the caret sits under its escape.
    const zw = await run(["resolve", "etcd:///my\u200bservice"])
    expect(zw.code).toBe(2)
    const shown = caretColumn(zw.stderr)
    expect(shown.excerpt).toBe("  etcd:///my\\u{200b}service")
    expect(shown.excerpt.slice(2 + shown.column)).toMatch(/^\\u\{200b\}/)
    expect(shown.caret.trim()).toBe("^~~~~~~~")

    // 300 good entries, then a bad one: the excerpt is cut, the caret is under the bad port.
    const entries = Array.from({ length: 300 }, (_, i) => `10.0.${i >> 8}.${i & 255}:80`)
    const input = `pass:///${entries.join(",")},10.9.9.9:99999`
    const long = await run(["resolve", input])
    expect(long.code).toBe(2)
    const cut = caretColumn(long.stderr)
    expect(cut.excerpt.startsWith("  ...")).toBe(true)
    expect(cut.excerpt.length).toBeLessThan(120)
    expect(cut.excerpt.slice(2 + cut.column)).toMatch(/^99999$/)
  })
})
