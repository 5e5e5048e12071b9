import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as Expansion from "../src/core/Expansion.js"
import * as Rotation from "../src/core/Rotation.js"

// size "max": fast-check's default size would keep arrays to about 10 items.
const weights = fc.array(fc.integer({ min: 1, max: 256 }), { minLength: 1, maxLength: 64, size: "max" })
const weightsWithZeros = fc.array(fc.integer({ min: 0, max: 256 }), { minLength: 1, maxLength: 64, size: "max" })
const sixtyFour = fc.array(fc.integer({ min: 1, max: 256 }), { minLength: 64, maxLength: 64 })
const offset = fc.integer({ min: -1_000_000, max: 1_000_000 })

describe("Rotation properties", () => {
  it("runs at least 1,000 cases per property", () => {
    expect(fc.readConfigureGlobal().numRuns ?? 100).toBeGreaterThanOrEqual(process.env.FC_RUNS ? 1 : 1000)
  })

  it("places each item exactly its weight times over a period, whatever the offset", () => {
    fc.assert(
      fc.property(weightsWithZeros, offset, (ws, off) => {
        const order = Rotation.period(ws, off)
        const counts = new Array<number>(ws.length).fill(0)
        for (const item of order) counts[item]!++
        expect(counts).toEqual(ws)
      })
    )
  })

  it.each([
    ["1..64 items", weights],
    ["exactly 64 items", sixtyFour]
  ])("keeps every item strictly within 1 of its exact share at every prefix (%s)", (_, arbitrary) => {
    fc.assert(
      fc.property(arbitrary, (ws) => {
        const order = Rotation.period(ws)
        const total = ws.length === 0 ? 0 : ws.reduce((a, b) => a + b, 0)
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
      })
    )
  })

  it("rotates the same period left by the offset", () => {
    fc.assert(
      fc.property(weightsWithZeros, offset, (ws, off) => {
        const base = Rotation.period(ws)
        const rotated = Rotation.period(ws, off)
        const n = base.length
        expect(rotated).toEqual(base.map((_, k) => base[(((k + off) % n) + n) % n]))
      })
    )
  })

  it("is deterministic", () => {
    fc.assert(
      fc.property(weights, offset, (ws, off) => {
        expect(Rotation.period(ws, off)).toEqual(Rotation.period([...ws], off))
      })
    )
  })

  it("orders every slot of expand exactly once, the k-th occurrence of an address as its slot k", () => {
    const endpoints = fc.array(
      fc.record({ address: fc.constantFrom("a:1", "b:2", "c:3", "[::1]:4", "e:5", "f:6", "g:7"), count: fc.nat(40) }),
      { maxLength: 10, size: "max" }
    )
    fc.assert(
      fc.property(endpoints, (eps) => {
        const ordered = Rotation.slotOrder(eps)
        const keys = ordered.map(Expansion.key)
        expect(new Set(keys).size).toBe(keys.length)
        expect([...keys].sort()).toEqual(Expansion.expand(eps).map(Expansion.key).sort())
        const seen = new Map<string, number>()
        for (const slot of ordered) {
          expect(slot.index).toBe(seen.get(slot.address) ?? 0)
          seen.set(slot.address, slot.index + 1)
        }
      })
    )
  })
})
