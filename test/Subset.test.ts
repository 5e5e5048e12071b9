import { describe, expect, it } from "@effect/vitest"
import * as Subset from "../src/core/Subset.js"

const TEN = Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}:9080`)

describe("Subset.select", () => {
  // Pinned: every client of a fleet must compute the same subsets, across
  // versions of grpc-anchor too. A change here breaks mixed-version fleets'
  // balance and must be deliberate (and noted in the changelog).
  it.each([
    [0, ["10.0.0.3:9080", "10.0.0.7:9080", "10.0.0.8:9080"]],
    [1, ["10.0.0.4:9080", "10.0.0.5:9080", "10.0.0.6:9080"]],
    [2, ["10.0.0.2:9080", "10.0.0.7:9080", "10.0.0.9:9080"]],
    [3, ["10.0.0.1:9080", "10.0.0.4:9080", "10.0.0.10:9080"]],
    ["7", ["10.0.0.1:9080", "10.0.0.3:9080", "10.0.0.10:9080"]],
    ["client-a", ["10.0.0.2:9080", "10.0.0.3:9080", "10.0.0.6:9080"]],
    ["client-b", ["10.0.0.2:9080", "10.0.0.3:9080", "10.0.0.8:9080"]]
  ] as const)("client %j of 10 backends, subset 3: %j", (id, expected) => {
    expect(Subset.select(TEN, 3, id)).toEqual(expected)
  })

  it("gives the same subset whatever the order of the list, in the list's order", () => {
    const reversed = [...TEN].reverse()
    expect(Subset.select(reversed, 3, 0)).toEqual([...Subset.select(TEN, 3, 0)].reverse())
    expect(Subset.select(reversed, 3, "client-a")).toEqual([...Subset.select(TEN, 3, "client-a")].reverse())
  })

  it("a number and its decimal text are the same client", () => {
    expect(Subset.select(TEN, 4, 12)).toEqual(Subset.select(TEN, 4, "12"))
    expect(Subset.select(TEN, 4, "012")).not.toEqual(Subset.select(TEN, 4, 12)) // "012" is a name
  })

  it("returns every backend, once, when the subset is not smaller than the list", () => {
    expect(Subset.select(["b:1", "a:1", "b:1"], 2, 0)).toEqual(["b:1", "a:1"])
    expect(Subset.select(TEN, 10, "x")).toEqual(TEN)
    expect(Subset.select([], 3, 0)).toEqual([])
  })

  it("counts duplicates once", () => {
    const doubled = [...TEN, ...TEN]
    expect(Subset.select(doubled, 3, 5)).toEqual(Subset.select(TEN, 3, 5))
  })

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("refuses a subset size of %s", (size) => {
    expect(() => Subset.select(TEN, size, 0)).toThrow(RangeError)
    expect(() => Subset.select(TEN, size, 0)).toThrow(`the subset size must be a whole number >= 1, got ${size}`)
  })

  it("accepts a subset size of 1 and the largest client index", () => {
    expect(Subset.select(TEN, 1, 0)).toHaveLength(1)
    expect(Subset.select(TEN, 3, 4294967295)).toEqual(Subset.select(TEN, 3, "4294967295"))
  })

  // Pinned like the table above, with indices whose high bits are set (the
  // van der Corput point of a large index) and a longer list.
  it.each([
    [4294967295, ["10.0.0.1:9080", "10.0.0.3:9080", "10.0.0.8:9080"]],
    [305419896, ["10.0.0.7:9080", "10.0.0.8:9080", "10.0.0.9:9080"]],
    [2863311530, ["10.0.0.2:9080", "10.0.0.6:9080", "10.0.0.9:9080"]],
    [1431655765, ["10.0.0.4:9080", "10.0.0.5:9080", "10.0.0.10:9080"]],
    // Bit 16 alone is 2^-16 around the ring: the same start as client 0.
    [65536, ["10.0.0.3:9080", "10.0.0.7:9080", "10.0.0.8:9080"]]
  ] as const)("client %j of 10 backends, subset 3: %j (pinned)", (id, expected) => {
    expect(Subset.select(TEN, 3, id)).toEqual(expected)
  })
})

describe("Subset.clientIndex", () => {
  it.each([
    [0, 0],
    [7, 7],
    ["7", 7],
    ["0", 0],
    ["4294967295", 4294967295],
    ["4294967296", undefined],
    ["07", undefined],
    ["-1", undefined],
    ["7 ", undefined],
    [" 7", undefined],
    ["+7", undefined],
    ["x7", undefined],
    [4294967295, 4294967295],
    ["", undefined],
    ["host-a/123", undefined]
  ] as const)("%j is %j", (id, index) => {
    expect(Subset.clientIndex(id)).toBe(index)
  })

  it.each([-1, 1.5, 2 ** 32, Number.NaN])("refuses the number %s", (id) => {
    expect(() => Subset.clientIndex(id)).toThrow(`a client index must be a whole number 0..4294967295, got ${id}`)
  })
})

describe("Subset.moves", () => {
  it("is 0 for the same members and subset", () => {
    const choice = { members: ["a", "b", "c"], subset: ["a", "b"] }
    expect(Subset.moves(choice, choice)).toBe(0)
  })

  it("counts a replacement for a backend that left, not the leaving itself", () => {
    expect(Subset.moves({ members: ["a", "b", "c"], subset: ["a", "b"] }, { members: ["b", "c"], subset: ["b", "c"] })).toBe(1)
    expect(Subset.moves({ members: ["a", "b", "c"], subset: ["a", "b"] }, { members: ["b", "c"], subset: ["b"] })).toBe(0)
  })

  it("counts a member that left the subset while still a member, not one that joined and was chosen", () => {
    // d joins and is chosen, a (still a member) leaves the subset: one move.
    expect(Subset.moves({ members: ["a", "b", "c"], subset: ["a", "b"] }, { members: ["a", "b", "c", "d"], subset: ["b", "d"] })).toBe(1)
    // d joins and is chosen, nothing else changes: no move.
    expect(Subset.moves({ members: ["a", "b", "c"], subset: ["a", "b"] }, { members: ["a", "b", "c", "d"], subset: ["a", "b", "d"] })).toBe(0)
    // Two old members swap in for two others: four moves.
    expect(Subset.moves({ members: ["a", "b", "c", "d"], subset: ["a", "b"] }, { members: ["a", "b", "c", "d"], subset: ["c", "d"] })).toBe(4)
  })
})
