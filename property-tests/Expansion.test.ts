import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as Expansion from "../src/core/Expansion.js"

const distinct = fc.uniqueArray(
  fc.record({ address: fc.stringMatching(/^[a-z]{1,6}:[1-9][0-9]{0,3}$/), count: fc.integer({ min: 0, max: 256 }) }),
  { selector: (e) => e.address, maxLength: 12, size: "max" }
)

/** The keys of each address's slots, in order. */
const byAddress = (slots: ReadonlyArray<Expansion.Slot>) => {
  const out = new Map<string, Array<string>>()
  for (const slot of slots) out.set(slot.address, [...(out.get(slot.address) ?? []), Expansion.key(slot)])
  return out
}

describe("Expansion properties", () => {
  it("gives count slots per address, indices 0..count-1, all keys unique", () => {
    fc.assert(
      fc.property(distinct, (endpoints) => {
        const slots = Expansion.expand(endpoints)
        expect(slots.length).toBe(endpoints.reduce((sum, e) => sum + e.count, 0))
        expect(new Set(slots.map(Expansion.key)).size).toBe(slots.length)
        for (const e of endpoints) {
          expect(slots.filter((s) => s.address === e.address).map((s) => s.index)).toEqual(
            Array.from({ length: e.count }, (_, i) => i)
          )
        }
      })
    )
  })

  it("leaves every other address's slot identities unchanged when one address is added or removed", () => {
    const change = distinct.chain((endpoints) =>
      fc.record({
        endpoints: fc.constant(endpoints),
        at: fc.nat(endpoints.length),
        added: fc.record({ address: fc.constant("added:1"), count: fc.integer({ min: 1, max: 256 }) })
      })
    )
    fc.assert(
      fc.property(change, ({ endpoints, at, added }) => {
        const before = byAddress(Expansion.expand(endpoints))
        const withAdded = byAddress(Expansion.expand([...endpoints.slice(0, at), added, ...endpoints.slice(at)]))
        withAdded.delete(added.address)
        expect(withAdded).toEqual(before)
        if (at < endpoints.length) {
          const removed = endpoints[at]!.address
          const withRemoved = byAddress(Expansion.expand(endpoints.filter((e) => e.address !== removed)))
          const expected = new Map(before)
          expected.delete(removed)
          expect(withRemoved).toEqual(expected)
        }
      })
    )
  })
})
