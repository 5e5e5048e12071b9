/**
 * The policy's settings in the core: one precedence (policy config, then
 * channel option, then default), the documented ranges with a typed error
 * naming the setting and where it was given, and `listing` (each address's
 * count and range, the target's pick mode, the over-cap mode from the
 * resolver, and what a foreign resolver gets). The ranges and defaults
 * are the README's settings table, read from the README, not from `SETTINGS`.
 */
import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Result } from "effect"
import * as Balancer from "../src/core/Balancer.js"

/** The README's settings table ("## Settings"): one row per setting, as a reader sees it. */
const README_ROWS = (() => {
  const readme = readFileSync(fileURLToPath(new URL("../README.md", import.meta.url)), "utf8")
  const section = readme.slice(readme.indexOf("\n## Settings\n"), readme.indexOf("\n## Semantics\n"))
  return section
    .split("\n")
    .filter((line) => line.startsWith("| `"))
    .map((line) => {
      const [field, option, range, def] = line.split("|").slice(1, 5).map((cell) => cell.trim())
      return { field: field!.replaceAll("`", ""), option: option!.replaceAll("`", ""), range: range!, def: def! }
    })
})()

const number = (text: string): number => Number(text.replaceAll(",", ""))

/** The README's rows of whole-number settings with a channel option. */
const DOCUMENTED = README_ROWS.filter((row) => row.option !== "none").map((row) => {
  const [min, max] = row.range.split("..").map(number)
  return { field: row.field as "startWaitMs", option: row.option, min: min!, max: max!, def: number(row.def) }
})

describe("the README's settings table", () => {
  it("lists every setting once, in the core's order, with its channel option and default", () => {
    expect(README_ROWS.map((row) => row.field)).toEqual(Object.keys(Balancer.SETTINGS))
    for (const row of README_ROWS) {
      const setting = Balancer.SETTINGS[row.field as keyof typeof Balancer.SETTINGS]
      expect(setting.option ?? "none", row.field).toBe(row.option)
    }
    expect(DOCUMENTED.length).toBe(7)
    expect(README_ROWS.find((row) => row.field === "connectionsPerAddress")).toMatchObject({ range: "1..256", def: "1" })
    expect(README_ROWS.find((row) => row.field === "pickMode")).toMatchObject({ range: "`round_robin`, `least_request`, `ewma`", def: "`round_robin`" })
  })
})

const decoded = (config: unknown, options: Record<string, unknown> = {}): Balancer.Settings => {
  const result = Balancer.decodeSettings(config, options)
  if (Result.isFailure(result)) throw new Error(`expected success, got ${result.failure.message}`)
  return result.success
}

const failure = (config: unknown, options: Record<string, unknown> = {}) => {
  const result = Balancer.decodeSettings(config, options)
  if (Result.isSuccess(result)) throw new Error(`expected a failure, got ${JSON.stringify(result.success)}`)
  return result.failure
}

describe("Balancer.decodeSettings: one precedence", () => {
  it.each(DOCUMENTED)("$field: the config's field, else $option, else $def", ({ def, field, max, min, option }) => {
    const a = min + 1
    const b = Math.min(max, min + 2)
    expect(decoded({})[field]).toBe(def)
    expect(decoded(undefined)[field]).toBe(def)
    expect(decoded(null, { [option]: a })[field]).toBe(a)
    expect(decoded({ [field]: b })[field]).toBe(b)
    expect(decoded({ [field]: b }, { [option]: a })[field]).toBe(b)
  })

  it("defaults of the config-only settings: 1 connection per address, fixed, round robin", () => {
    expect(decoded({})).toMatchObject({ connectionsPerAddress: 1, maxConnectionsPerAddress: undefined, pickMode: "round_robin" })
    expect(Balancer.defaultSettings).toEqual(decoded({}))
    expect(decoded({ connectionsPerAddress: 2, maxConnectionsPerAddress: 8, pickMode: "least_request" })).toMatchObject({
      connectionsPerAddress: 2,
      maxConnectionsPerAddress: 8,
      pickMode: "least_request"
    })
  })

  it("reads only its own channel options (others may hold anything)", () => {
    expect(decoded({}, { "grpc.keepalive_time_ms": "soon", "grpc.primary_user_agent": () => 1 })).toEqual(Balancer.defaultSettings)
  })

  it("a decoded config from AnchorRoundRobinConfig and the JSON form give the same settings", () => {
    const json = { connectionsPerAddress: 2, maxConnections: 7 }
    expect(decoded(Balancer.decodeConfigUnsafe(json))).toEqual(decoded(json))
  })

  it("optionsOf: what the machine takes, at the same values", () => {
    const settings = decoded({ pickMode: "least_request", startWaitMs: 5 }, { "grpc_anchor.max_connections": 9 })
    expect(Balancer.optionsOf(settings)).toEqual({
      startWaitMs: 5,
      maxConnections: 9,
      removalGraceMs: 30_000,
      maxStreamsPerConnection: 100,
      shrinkIdleMs: 30_000,
      pickMode: "least_request",
      hungAfterMs: 1_000,
      ewmaDecayMs: 10_000
    })
    const { replacementWaitMs, removalThreshold, suspicionMs, trace, ...rest } = Balancer.defaultOptions
    void replacementWaitMs, removalThreshold, suspicionMs, trace
    expect(Balancer.optionsOf(Balancer.defaultSettings)).toEqual(rest)
  })
})

describe("Balancer.decodeSettings: ranges, with an error naming the setting", () => {
  const edges = DOCUMENTED.flatMap(({ field, max, min, option }) => [
    { field, option, value: min, ok: true },
    { field, option, value: max, ok: true },
    { field, option, value: min - 1, ok: false },
    { field, option, value: max + 1, ok: false },
    { field, option, value: min + 0.5, ok: false },
    { field, option, value: String(min + 1), ok: false }
  ])

  it.each(edges)("$field = $value as a channel option: ok $ok", ({ field, ok, option, value }) => {
    const result = Balancer.decodeSettings({}, { [option]: value })
    expect(Result.isSuccess(result)).toBe(ok)
    if (Result.isFailure(result)) {
      expect(result.failure).toMatchObject({ _tag: "SettingError", setting: field, source: "channel option", key: option, value })
      expect(result.failure.message).toMatch(new RegExp(`^channel option ${option.replace(".", "\\.")} must be a whole number from \\d+ to \\d+, got `))
      expect(result.failure.message).toContain(`the policy config's ${field}, when set, wins over it`)
    }
  })

  it.each(edges)("$field = $value in the policy config: ok $ok", ({ field, ok, value }) => {
    const result = Balancer.decodeSettings({ [field]: value }, {})
    expect(Result.isSuccess(result)).toBe(ok)
    if (Result.isFailure(result)) {
      expect(result.failure).toMatchObject({ _tag: "SettingError", setting: field, source: "policy config", key: field })
      expect(result.failure.message).toMatch(new RegExp(`^policy config field ${field} must be a whole number from`))
    }
  })

  it("a bad channel option is reported even when the config's field wins over it", () => {
    expect(failure({ maxConnections: 10 }, { "grpc_anchor.max_connections": 0 })).toMatchObject({ setting: "maxConnections", source: "channel option" })
  })

  it("the config's fields are checked before the channel options", () => {
    expect(failure({ startWaitMs: -1 }, { "grpc_anchor.max_connections": 0 })).toMatchObject({ setting: "startWaitMs", source: "policy config" })
  })

  it.each([
    { config: { connectionsPerAddress: 0 }, setting: "connectionsPerAddress", expected: "a whole number from 1 to 256" },
    { config: { connectionsPerAddress: 257 }, setting: "connectionsPerAddress", expected: "a whole number from 1 to 256" },
    { config: { maxConnectionsPerAddress: 257 }, setting: "maxConnectionsPerAddress", expected: "a whole number from 1 to 256" },
    { config: { pickMode: "random" }, setting: "pickMode", expected: 'one of "round_robin", "least_request"' },
    { config: { connectionsPerAddress: 4, maxConnectionsPerAddress: 3 }, setting: "maxConnectionsPerAddress", expected: "at least connectionsPerAddress (4)" }
  ])("config $config: $setting must be $expected", ({ config, expected, setting }) => {
    const error = failure(config)
    expect(error).toMatchObject({ _tag: "SettingError", setting, source: "policy config" })
    expect(error.message).toContain(expected)
  })

  it("accepts a range whose maximum equals its minimum (decodeSettings and decodeConfig alike)", () => {
    expect(decoded({ connectionsPerAddress: 4, maxConnectionsPerAddress: 4 })).toMatchObject({ connectionsPerAddress: 4, maxConnectionsPerAddress: 4 })
    expect(Balancer.decodeConfigUnsafe({ connectionsPerAddress: 4, maxConnectionsPerAddress: 4 })).toEqual({ connectionsPerAddress: 4, maxConnectionsPerAddress: 4 })
    expect(failure({ connectionsPerAddress: 4, maxConnectionsPerAddress: 3 })).toMatchObject({ key: "maxConnectionsPerAddress", value: 3 })
  })

  it("decodeConfigUnsafe throws the PolicyConfigError, naming a config it cannot print as JSON too", () => {
    expect(() => Balancer.decodeConfigUnsafe({ connectionsPerAddress: 3, maxConnectionsPerAddress: 2 })).toThrow(Balancer.PolicyConfigError)
    const cyclic: Record<string, unknown> = { startWaitMs: "soon" }
    cyclic.self = cyclic
    expect(() => Balancer.decodeConfigUnsafe(cyclic)).toThrow(/^anchor_round_robin config \[object Object\] is not valid/)
  })

  it.each(["x", 3, [1]])("a config that is not an object (%j) is a PolicyConfigError", (config) => {
    expect(failure(config)).toMatchObject({ _tag: "PolicyConfigError", input: config })
  })
})

describe("Balancer.listing", () => {
  const settings = { connectionsPerAddress: 2, maxConnectionsPerAddress: undefined }

  it("keeps the resolver's counts and ranges; addresses it gave no count get the settings'", () => {
    const hints = { counts: new Map([["a:1", 3], ["b:2", 1]]), maxCounts: new Map([["b:2", 4], ["c:3", 9]]), overCap: "fail" }
    expect(Balancer.listing(["a:1", "b:2", "c:3"], hints, settings)).toEqual({
      endpoints: [{ address: "a:1", count: 3 }, { address: "b:2", count: 1, maxCount: 4 }, { address: "c:3", count: 2 }],
      overCap: "fail",
      pick: undefined
    })
    expect(Balancer.listing(["a:1", "c:3"], hints, { connectionsPerAddress: 1, maxConnectionsPerAddress: 5 }).endpoints).toEqual([
      { address: "a:1", count: 3 },
      { address: "c:3", count: 1, maxCount: 5 }
    ])
  })

  it("a maximum not above the count is a fixed count", () => {
    const hints = { counts: new Map([["a:1", 3], ["b:2", 3]]), maxCounts: new Map([["a:1", 3], ["b:2", 2]]) }
    expect(Balancer.listing(["a:1", "b:2"], hints, { connectionsPerAddress: 2, maxConnectionsPerAddress: 2 }).endpoints).toEqual([
      { address: "a:1", count: 3 },
      { address: "b:2", count: 3 }
    ])
  })

  it("takes a repeated address once, in first-seen order", () => {
    expect(Balancer.listing(["b:2", "a:1", "b:2"], undefined, settings).endpoints).toEqual([{ address: "b:2", count: 2 }, { address: "a:1", count: 2 }])
  })

  it.each([
    { hints: undefined, overCap: "keepFirst", pick: undefined },
    { hints: {}, overCap: "keepFirst", pick: undefined },
    { hints: { overCap: "fail", pick: "least_request" }, overCap: "fail", pick: "least_request" },
    { hints: { overCap: "keepFirst", pick: "round_robin" }, overCap: "keepFirst", pick: "round_robin" },
    { hints: { overCap: "refuse", pick: "fastest" }, overCap: "keepFirst", pick: undefined }
  ])("hints $hints: over the cap $overCap, pick $pick", ({ hints, overCap, pick }) => {
    expect(Balancer.listing(["a:1"], hints, settings)).toMatchObject({ overCap, pick })
  })

  it("ignores count maps that are not maps", () => {
    const hints = { counts: { "a:1": 5 }, maxCounts: [["a:1", 9]] } as unknown as Balancer.Hints
    expect(Balancer.listing(["a:1"], hints, settings).endpoints).toEqual([{ address: "a:1", count: 2 }])
  })

  it("a list from a foreign resolver (no hints) over the cap is trimmed, not refused", () => {
    const b = Balancer.make({ maxConnections: 3, startWaitMs: 0 })
    const out = Balancer.step(b, {
      _tag: "Addresses",
      now: 0,
      target: "the channel's target",
      ...Balancer.listing(["a:1", "b:2"], undefined, settings),
      offset: 0
    })
    expect(out.create.map((slot) => slot.address)).toEqual(["a:1", "a:1"])
    const refused = Balancer.make({ maxConnections: 3, startWaitMs: 0 })
    const hints = { overCap: "fail" }
    expect(Balancer.step(refused, { _tag: "Addresses", now: 0, target: "pass:///", ...Balancer.listing(["a:1", "b:2"], hints, settings), offset: 0 }).create).toEqual([])
  })
})
