import { describe, expect, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Schema from "effect/Schema"
import * as Expansion from "../src/core/Expansion.js"
import { int, propOptions } from "./arbitraries.js"

// Effect's generator grows collections with `size`; 40 lets lists reach 12 addresses.
const SIZE = 40

/** Addresses to draw from; a list keeps the first appearance of each, so its addresses are distinct. */
const ADDRESSES = Array.from({ length: 24 }, (_, i) => `${"abcdefghijklmnopqrstuvwx"[i]!.repeat(1 + (i % 6))}:${1 + i * 397}`)

const distinct = Arbitrary.array(
  Arbitrary.all({ address: Arbitrary.schema(Schema.Literals(ADDRESSES)), count: int(0, 256) }),
  { maxLength: 12 }
).pipe(
  Arbitrary.map((endpoints) => {
    const seen = new Set<string>()
    return endpoints.filter((e) => !seen.has(e.address) && seen.add(e.address) !== undefined)
  })
)

/** The keys of each address's slots, in order. */
const byAddress = (slots: ReadonlyArray<Expansion.Slot>) => {
  const out = new Map<string, Array<string>>()
  for (const slot of slots) {
    const keys = out.get(slot.address) ?? []
    keys.push(Expansion.key(slot))
    out.set(slot.address, keys)
  }
  return out
}

describe("Expansion properties", () => {
  let cases = 0

  it.prop(
    "gives count slots per address, indices 0..count-1, all keys unique",
    [distinct],
    ([endpoints]) => {
      cases++
      const slots = Expansion.expand(endpoints)
      expect(slots.length).toBe(endpoints.reduce((sum, e) => sum + e.count, 0))
      expect(new Set(slots.map(Expansion.key)).size).toBe(slots.length)
      for (const e of endpoints) {
        expect(slots.filter((s) => s.address === e.address).map((s) => s.index)).toEqual(
          Array.from({ length: e.count }, (_, i) => i)
        )
      }
    },
    propOptions(SIZE)
  )

  it("runs at least 1,000 cases per property", () => {
    expect(cases).toBeGreaterThanOrEqual(process.env.FC_RUNS || process.env.PROP_REPLAY ? 1 : 1000)
  })

  const change = distinct.pipe(
    Arbitrary.flatMap((endpoints) =>
      Arbitrary.all({
        endpoints: Arbitrary.Constant(endpoints),
        at: int(0, endpoints.length),
        added: Arbitrary.all({ address: Arbitrary.Constant("added:1"), count: int(1, 256) })
      })
    )
  )

  it.prop(
    "leaves every other address's slot identities unchanged when one address is added or removed",
    [change],
    ([{ endpoints, at, added }]) => {
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
    },
    propOptions(SIZE)
  )
  it.prop(
    "weighted keeps a count range: maxCount present exactly when above count, expand ignores it",
    [int(1, 256), int(0, 255)],
    ([count, extra]) => {
      const maxCount = Math.min(256, count + extra)
      const w = Expansion.weighted("a:1", { count, maxCount })
      expect(w.count).toBe(count)
      expect(w.maxCount ?? w.count).toBe(maxCount)
      expect("maxCount" in w).toBe(maxCount > count)
      expect(Expansion.expand([w])).toHaveLength(count)
    },
    propOptions()
  )
})
