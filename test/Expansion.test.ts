import { describe, expect, it } from "@effect/vitest"
import * as Expansion from "../src/core/Expansion.js"
import * as Target from "../src/core/Target.js"

describe("Expansion", () => {
  it.each([
    [{ address: "a:1", index: 0 }, "a:1#0"],
    [{ address: "[::1]:9080", index: 3 }, "[::1]:9080#3"]
  ])("key(%j) is %j", (slot, key) => {
    expect(Expansion.key(slot)).toBe(key)
  })

  it("groups slots by address in input order, index 0..count-1", () => {
    expect(
      Expansion.expand([
        { address: "b:2", count: 2 },
        { address: "a:1", count: 1 },
        { address: "c:3", count: 3 }
      ]).map(Expansion.key)
    ).toEqual(["b:2#0", "b:2#1", "a:1#0", "c:3#0", "c:3#1", "c:3#2"])
  })

  it("merges an address listed twice, keeping its first place", () => {
    expect(
      Expansion.expand([
        { address: "a:1", count: 1 },
        { address: "b:2", count: 1 },
        { address: "a:1", count: 2 }
      ]).map(Expansion.key)
    ).toEqual(["a:1#0", "a:1#1", "a:1#2", "b:2#0"])
  })

  it("gives no slots for a count of 0 and for no addresses", () => {
    expect(Expansion.expand([{ address: "a:1", count: 0 }])).toEqual([])
    expect(Expansion.expand([])).toEqual([])
  })

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("rejects a count of %d as a defect", (count) => {
    expect(() => Expansion.expand([{ address: "a:1", count }])).toThrow(RangeError)
    expect(() => Expansion.expand([{ address: "a:1", count }])).toThrow(`the count of a:1 must be a whole number >= 0, got ${count}`)
  })

  it("keeps every other address's slots when one is added or removed", () => {
    const before = Expansion.expand([
      { address: "a:1", count: 2 },
      { address: "b:2", count: 3 }
    ]).map(Expansion.key)
    const added = Expansion.expand([
      { address: "a:1", count: 2 },
      { address: "n:9", count: 4 },
      { address: "b:2", count: 3 }
    ]).map(Expansion.key)
    const removed = Expansion.expand([{ address: "b:2", count: 3 }]).map(Expansion.key)
    expect(added.filter((k) => !k.startsWith("n:9#"))).toEqual(before)
    expect(removed).toEqual(before.filter((k) => k.startsWith("b:2#")))
  })

  it("takes the canonical addresses of a pass target", () => {
    const target = Target.parseUnsafe("pass:///A:1#2,[0:0::1]:2,:3") as Target.PassTarget
    expect(Expansion.fromTarget(target)).toEqual([
      { address: "a:1", count: 2 },
      { address: "[::1]:2", count: 1 },
      { address: "localhost:3", count: 1 }
    ])
  })

  it("keeps a count range of a pass target as maxCount, and expands the minimum", () => {
    const target = Target.parseUnsafe("pass:///a:1#2..8,b:2#3..3,c:3#1..2") as Target.PassTarget
    const weighted = Expansion.fromTarget(target)
    expect(weighted).toEqual([
      { address: "a:1", count: 2, maxCount: 8 },
      { address: "b:2", count: 3 },
      { address: "c:3", count: 1, maxCount: 2 }
    ])
    expect(Expansion.expand(weighted).map(Expansion.key)).toEqual(["a:1#0", "a:1#1", "b:2#0", "b:2#1", "b:2#2", "c:3#0"])
  })

  it("weighted sets maxCount only above count", () => {
    expect(Expansion.weighted("a:1", { count: 2, maxCount: 8 })).toEqual({ address: "a:1", count: 2, maxCount: 8 })
    expect(Expansion.weighted("a:1", { count: 2, maxCount: 2 })).toEqual({ address: "a:1", count: 2 })
  })
})
