import { describe, expect, it } from "@effect/vitest"
import * as Expansion from "../src/core/Expansion.js"
import * as Rotation from "../src/core/Rotation.js"

/** The largest |count_i(t) - t * w_i / W| over every prefix t of `order`. */
const maxLag = (order: ReadonlyArray<number>, weights: ReadonlyArray<number>): number => {
  const total = weights.reduce((a, b) => a + b, 0)
  const counts = weights.map(() => 0)
  let worst = 0
  order.forEach((item, t) => {
    counts[item]!++
    weights.forEach((w, i) => {
      worst = Math.max(worst, Math.abs(counts[i]! - ((t + 1) * w) / total))
    })
  })
  return worst
}

/** nginx's smooth weighted round robin (ngx_http_upstream_get_peer), first of equal maxima wins. */
const nginx = (weights: ReadonlyArray<number>): ReadonlyArray<number> => {
  const total = weights.reduce((a, b) => a + b, 0)
  const current = weights.map(() => 0)
  const out: Array<number> = []
  for (let t = 0; t < total; t++) {
    let best = 0
    weights.forEach((w, i) => {
      current[i]! += w
      if (current[i]! > current[best]!) best = i
    })
    current[best]! -= total
    out.push(best)
  }
  return out
}

describe("Rotation.period", () => {
  it.each([
    [[5, 1], 0, [0, 1, 0, 0, 0, 0]],
    [[2, 1], 0, [0, 1, 0]],
    [[3, 2], 0, [0, 1, 0, 1, 0]],
    [[1, 1, 1], 0, [0, 1, 2]],
    [[1, 1, 1], 1, [1, 2, 0]],
    [[1, 1, 1], 4, [1, 2, 0]],
    [[1, 1, 1], -1, [2, 0, 1]],
    [[5, 1], 2, [0, 0, 0, 0, 0, 1]],
    [[0, 3], 0, [1, 1, 1]],
    [[2, 0, 2], 0, [0, 2, 0, 2]],
    [[4], 3, [0, 0, 0, 0]],
    [[], 0, []],
    [[0, 0], 5, []]
  ])("period(%j, %i) is %j", (weights, offset, expected) => {
    expect(Rotation.period(weights, offset)).toEqual(expected)
  })

  it("interleaves 5:1 instead of running A five times in a row", () => {
    const order = Rotation.period([5, 1])
    expect(order).not.toEqual([0, 0, 0, 0, 0, 1])
    // B comes as soon as its share allows, then A fills the rest: within 1 of the exact share at every prefix.
    expect(maxLag(order, [5, 1])).toBeLessThan(1)
  })

  it("stays within 1 of the exact share where nginx's smooth WRR does not (15,1,15,3,1,15,3)", () => {
    const weights = [15, 1, 15, 3, 1, 15, 3]
    const theirs = maxLag(nginx(weights), weights)
    const ours = maxLag(Rotation.period(weights), weights)
    expect(theirs).toBeCloseTo(56 / 53, 10) // 1.0566...
    expect(theirs).toBeGreaterThan(1)
    expect(ours).toBeLessThan(1)
    expect(ours).toBeCloseTo(44 / 53, 10) // 0.830..., pinned
  })

  it("stays within 1 where nginx does not on [1, 133, 1, 14, 1] (found by the prefix property run against nginx)", () => {
    const weights = [1, 133, 1, 14, 1]
    expect(maxLag(nginx(weights), weights)).toBeGreaterThan(1)
    expect(maxLag(Rotation.period(weights), weights)).toBeLessThan(1)
  })

  it("places each item exactly its weight times in a larger case", () => {
    const weights = Array.from({ length: 64 }, (_, i) => ((i * 37) % 256) + 1)
    const order = Rotation.period(weights)
    const counts = weights.map(() => 0)
    for (const item of order) counts[item]!++
    expect(counts).toEqual(weights)
    expect(maxLag(order, weights)).toBeLessThan(1)
  })

  it.each([
    [[-1], 0],
    [[1.5], 0],
    [[Number.NaN], 0],
    [[1, 2], 0.5],
    [[2 ** 26, 1], 0]
  ])("rejects weights %j with offset %d as a defect", (weights, offset) => {
    expect(() => Rotation.period(weights, offset)).toThrow(RangeError)
  })

  it.each([
    [[-1], 0, "weight 0 must be a whole number >= 0, got -1"],
    [[1, 1.5], 0, "weight 1 must be a whole number >= 0, got 1.5"],
    [[1, 2], 0.5, "the offset must be a whole number, got 0.5"],
    [[2 ** 26, 1], 0, `the weights add up to more than ${2 ** 26}`]
  ])("says why weights %j with offset %d are refused", (weights, offset, message) => {
    expect(() => Rotation.period(weights, offset)).toThrow(message)
  })
})

describe("Rotation.slotOrder", () => {
  it("maps the k-th occurrence of an address to its slot k", () => {
    expect(
      Rotation.slotOrder([
        { address: "a:1", count: 2 },
        { address: "b:2", count: 1 }
      ]).map(Expansion.key)
    ).toEqual(["a:1#0", "b:2#0", "a:1#1"])
    expect(
      Rotation.slotOrder([
        { address: "a:1", count: 5 },
        { address: "b:2", count: 1 }
      ]).map(Expansion.key)
    ).toEqual(["a:1#0", "b:2#0", "a:1#1", "a:1#2", "a:1#3", "a:1#4"])
  })

  it("is a permutation of expand, duplicates merged and zero counts dropped", () => {
    const endpoints = [
      { address: "a:1", count: 1 },
      { address: "z:0", count: 0 },
      { address: "b:2", count: 3 },
      { address: "a:1", count: 2 }
    ]
    const ordered = Rotation.slotOrder(endpoints).map(Expansion.key)
    expect([...ordered].sort()).toEqual(Expansion.expand(endpoints).map(Expansion.key).sort())
    expect(ordered).toEqual(["a:1#0", "b:2#0", "a:1#1", "b:2#1", "a:1#2", "b:2#2"])
  })

  it("is empty for no endpoints", () => {
    expect(Rotation.slotOrder([])).toEqual([])
  })
})
