import { describe, expect, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Schema from "effect/Schema"
import fc from "fast-check"
import * as Expansion from "../src/core/Expansion.js"
import * as Rotation from "../src/core/Rotation.js"
import { int, propOptions } from "./arbitraries.js"

// Effect's generator grows collections with `size`; 100 lets arrays reach 64 items.
const SIZE = 100
const weights = Arbitrary.array(int(1, 256), { minLength: 1, maxLength: 64 })
const weightsWithZeros = Arbitrary.array(int(0, 256), { minLength: 1, maxLength: 64 })
const sixtyFour = Arbitrary.array(int(1, 256), { minLength: 64, maxLength: 64 })
const offset = int(-1_000_000, 1_000_000)

describe("Rotation properties", () => {
  let cases = 0

  it.prop(
    "places each item exactly its weight times over a period, whatever the offset",
    [weightsWithZeros, offset],
    ([ws, off]) => {
      cases++
      const order = Rotation.period(ws, off)
      const counts = new Array<number>(ws.length).fill(0)
      for (const item of order) counts[item]!++
      expect(counts).toEqual(ws)
    },
    propOptions(SIZE)
  )

  it("runs at least 1,000 cases per property", () => {
    expect(fc.readConfigureGlobal().numRuns ?? 100).toBeGreaterThanOrEqual(process.env.FC_RUNS ? 1 : 1000)
    expect(cases).toBeGreaterThanOrEqual(process.env.FC_RUNS || process.env.PROP_REPLAY ? 1 : 1000)
  })

  for (const [name, arbitrary] of [
    ["1..64 items", weights],
    ["exactly 64 items", sixtyFour]
  ] as const) {
    it.prop(
      `keeps every item strictly within 1 of its exact share at every prefix (${name})`,
      [arbitrary],
      ([ws]) => {
        const order = Rotation.period(ws)
        const total = ws.reduce((a, b) => a + b, 0)
        const counts = new Int32Array(ws.length)
        // |count_i(t) - t * w_i / W| < 1, multiplied by W to stay in integers.
        for (let t = 1; t <= total; t++) {
          counts[order[t - 1]!]!++
          for (let i = 0; i < ws.length; i++) {
            const lag = counts[i]! * total - t * ws[i]!
            if (lag <= -total || lag >= total) {
              throw new Error(`item ${i} (weight ${ws[i]}) has ${counts[i]} after ${t} of ${total} steps`)
            }
          }
        }
      },
      propOptions(SIZE)
    )
  }

  it.prop(
    "rotates the same period left by the offset",
    [weightsWithZeros, offset],
    ([ws, off]) => {
      const base = Rotation.period(ws)
      const rotated = Rotation.period(ws, off)
      const n = base.length
      expect(rotated).toEqual(base.map((_, k) => base[(((k + off) % n) + n) % n]))
    },
    propOptions(SIZE)
  )

  it.prop(
    "is deterministic",
    [weights, offset],
    ([ws, off]) => {
      expect(Rotation.period(ws, off)).toEqual(Rotation.period([...ws], off))
    },
    propOptions(SIZE)
  )

  const endpoints = Arbitrary.array(
    Arbitrary.schema(
      Schema.Struct({
        address: Schema.Literals(["a:1", "b:2", "c:3", "[::1]:4", "e:5", "f:6", "g:7"]),
        count: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 40 }))
      })
    ),
    { maxLength: 10 }
  )

  it.prop(
    "orders every slot of expand exactly once, the k-th occurrence of an address as its slot k",
    [endpoints],
    ([eps]) => {
      const ordered = Rotation.slotOrder(eps)
      const keys = ordered.map(Expansion.key)
      expect(new Set(keys).size).toBe(keys.length)
      expect([...keys].sort()).toEqual(Expansion.expand(eps).map(Expansion.key).sort())
      const seen = new Map<string, number>()
      for (const slot of ordered) {
        expect(slot.index).toBe(seen.get(slot.address) ?? 0)
        seen.set(slot.address, slot.index + 1)
      }
    },
    propOptions(SIZE)
  )
})
