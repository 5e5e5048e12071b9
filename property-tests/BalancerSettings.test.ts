/**
 * Properties of the policy's settings (`Balancer.decodeSettings`), against
 * the README's table written out here (not read from `Balancer.SETTINGS`):
 *
 * - every setting comes from the policy config's field when it is given,
 *   else from its channel option, else its default;
 * - a value out of its documented range, wherever it is given, fails the
 *   whole decode with a `SettingError` that names a setting and a place
 *   where that setting was given a bad value; in-range values never fail.
 *
 * The statistics printed show that the runs mix the three sources and both
 * outcomes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import * as Balancer from "../src/core/Balancer.js"

const DOCUMENTED = [
  { field: "startWaitMs", option: "grpc_anchor.start_wait_ms", min: 0, max: 60_000, def: 250 },
  { field: "maxConnections", option: "grpc_anchor.max_connections", min: 1, max: 1_000_000, def: 4096 },
  { field: "removalGraceMs", option: "grpc_anchor.removal_grace_ms", min: 0, max: 3_600_000, def: 30_000 },
  { field: "maxStreamsPerConnection", option: "grpc_anchor.max_streams_per_connection", min: 1, max: 1_000_000, def: 100 },
  { field: "shrinkIdleMs", option: "grpc_anchor.shrink_idle_ms", min: 1, max: 86_400_000, def: 30_000 }
] as const

type Given = { readonly kind: "absent" } | { readonly kind: "good" | "bad"; readonly value: unknown }

/** Mostly good values (at the edges too), sometimes bad ones (just outside, fractional, text, null). */
const given = (min: number, max: number): fc.Arbitrary<Given> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant({ kind: "absent" } as const) },
    {
      weight: 8,
      arbitrary: fc.oneof(fc.constantFrom(min, max), fc.integer({ min, max })).map((value) => ({ kind: "good", value }) as const)
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom<unknown>(min - 1, max + 1, min + 0.5, String(min), null, true)
        .map((value) => ({ kind: "bad", value }) as const)
    }
  )

const inputs = fc.tuple(
  ...DOCUMENTED.map(({ max, min }) => fc.record({ config: given(min, max), option: given(min, max) }))
)

const run = (sources: ReadonlyArray<{ readonly config: Given; readonly option: Given }>) => {
  const config: Record<string, unknown> = {}
  const options: Record<string, unknown> = { "grpc.keepalive_time_ms": "not ours" }
  sources.forEach((source, i) => {
    const { field, option } = DOCUMENTED[i]!
    if (source.config.kind !== "absent") config[field] = source.config.value
    if (source.option.kind !== "absent") options[option] = source.option.value
  })
  const result = Balancer.decodeSettings(config, options)
  const anyBad = sources.some((s) => s.config.kind === "bad" || s.option.kind === "bad")
  if (anyBad) {
    expect(Result.isFailure(result)).toBe(true)
    if (Result.isSuccess(result)) return "failure"
    const error = result.failure
    expect(error._tag).toBe("SettingError")
    if (error._tag !== "SettingError") return "failure"
    const i = DOCUMENTED.findIndex((d) => d.field === error.setting)
    expect(i).toBeGreaterThanOrEqual(0)
    const place = error.source === "policy config" ? sources[i]!.config : sources[i]!.option
    expect(place.kind).toBe("bad")
    expect(error.key).toBe(error.source === "policy config" ? DOCUMENTED[i]!.field : DOCUMENTED[i]!.option)
    expect(error.message).toContain(error.key)
    return "failure"
  }
  expect(Result.isSuccess(result)).toBe(true)
  if (Result.isFailure(result)) return "failure"
  const from: Array<string> = []
  sources.forEach((source, i) => {
    const { def, field } = DOCUMENTED[i]!
    const expected = source.config.kind === "good" ? source.config.value : source.option.kind === "good" ? source.option.value : def
    expect(result.success[field]).toBe(expected)
    from.push(source.config.kind === "good" ? "config" : source.option.kind === "good" ? "option" : "default")
  })
  const both = sources.some((s) => s.config.kind === "good" && s.option.kind === "good")
  return `success, ${new Set(from).size} kinds of source${both ? ", config over option" : ""}`
}

describe("Balancer.decodeSettings (properties)", () => {
  it("takes each setting from the config, else its channel option, else its default; fails exactly when a value is out of range", () => {
    fc.assert(fc.property(inputs, (sources) => void run(sources)))
  })

  it("mixes the sources and both outcomes (statistics)", () => {
    fc.statistics(inputs, (sources) => run(sources), { numRuns: 1000 })
  })
})
