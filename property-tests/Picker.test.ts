import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as Expansion from "../src/core/Expansion.js"
import * as Picker from "../src/core/Picker.js"

const slotsOf = (n: number): ReadonlyArray<Expansion.Slot> =>
  Array.from({ length: n }, (_, i) => ({ address: `h${i % 7}:1`, index: Math.floor(i / 7) }))

const setup = fc
  .integer({ min: 1, max: 200 })
  .chain((n) =>
    fc.record({
      n: fc.constant(n),
      flags: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      offset: fc.integer(),
      rounds: fc.integer({ min: 1, max: 5 })
    })
  )

describe("Picker properties", () => {
  it("over k full passes picks each ready slot exactly k times and never an unready one", () => {
    fc.assert(
      fc.property(setup, ({ n, flags, offset, rounds }) => {
        const ready: Picker.Readiness = { flags }
        const readyCount = flags.filter(Boolean).length
        const picked = new Array<number>(n).fill(0)
        let picker = Picker.make(slotsOf(n), offset)
        for (let i = 0; i < Math.max(1, rounds * readyCount); i++) {
          const result = Picker.pick(picker, ready)
          if (readyCount === 0) {
            expect(result._tag).toBe("NoneReady")
            return
          }
          if (result._tag !== "Picked") throw new Error("NoneReady with a ready slot")
          picked[result.index]!++
          picker = result.next
        }
        expect(picked).toEqual(flags.map((f) => (f ? rounds : 0)))
      })
    )
  })

  it("picks the first ready slot at or after its position, cyclically", () => {
    fc.assert(
      fc.property(setup, ({ n, flags, offset }) => {
        const picker = Picker.make(slotsOf(n), offset)
        const result = Picker.pick(picker, { flags })
        const expected = Array.from({ length: n }, (_, k) => (picker.position + k) % n).find((p) => flags[p])
        if (expected === undefined) expect(result._tag).toBe("NoneReady")
        else expect(result).toMatchObject({ _tag: "Picked", index: expected, next: { position: (expected + 1) % n } })
      })
    )
  })

  it("continues at the same slot after an update when it is still there, else at the same position mod length", () => {
    const change = fc.record({
      n: fc.integer({ min: 1, max: 60 }),
      offset: fc.integer(),
      keep: fc.func(fc.boolean()),
      added: fc.integer({ min: 0, max: 20 }),
      shuffle: fc.func(fc.integer())
    })
    fc.assert(
      fc.property(change, ({ n, offset, keep, added, shuffle }) => {
        const before = slotsOf(n)
        const picker = Picker.make(before, offset)
        const after = [
          ...before.filter((s) => keep(Expansion.key(s))),
          ...Array.from({ length: added }, (_, i) => ({ address: "new:9", index: i }))
        ]
          .map((s) => ({ s: { ...s }, k: shuffle(Expansion.key(s)) }))
          .sort((a, b) => a.k - b.k)
          .map(({ s }) => s)
        const updated = Picker.update(picker, after)
        expect(updated.slots).toBe(after)
        const current = Expansion.key(before[picker.position]!)
        const found = after.findIndex((s) => Expansion.key(s) === current)
        const expected = found !== -1 ? found : after.length === 0 ? 0 : picker.position % after.length
        expect(updated.position).toBe(expected)
      })
    )
  })

  it("gives the same result for the same picker and readiness, whatever was picked in between", () => {
    fc.assert(
      fc.property(setup, fc.array(fc.array(fc.boolean()), { maxLength: 5 }), ({ n, flags, offset }, others) => {
        const picker = Picker.make(slotsOf(n), offset)
        const ready: Picker.Readiness = { flags }
        const first = Picker.pick(picker, ready)
        for (const other of others) {
          const padded = Array.from({ length: n }, (_, i) => other[i] ?? false)
          const result = Picker.pick(picker, { flags: padded })
          if (result._tag === "Picked") Picker.pick(result.next, { flags: padded })
        }
        expect(Picker.pick(picker, ready)).toEqual(first)
      })
    )
  })
})
