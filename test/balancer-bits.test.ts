/** The bitset the round robin searches (src/core/balancer/bits.ts), across words and levels. */
import { describe, expect, it } from "@effect/vitest"
import { Bits } from "../src/core/balancer/bits.js"

describe("Bits", () => {
  const cost = { work: 0 }

  it("finds the next member across emptied words (an emptied word leaves the level above)", () => {
    const bits = new Bits(100)
    bits.add(5, cost)
    bits.add(40, cost)
    bits.delete(40, cost)
    bits.add(70, cost)
    expect(bits.next(6)).toBe(70)
    expect(bits.next(0)).toBe(5)
  })

  it("answers -1 past the last member and past the end", () => {
    const bits = new Bits(100)
    bits.add(5, cost)
    expect(bits.next(6)).toBe(-1)
    expect(bits.next(500)).toBe(-1)
  })

  it("counts one unit of work per level touched", () => {
    const c = { work: 0 }
    const bits = new Bits(2000) // 3 levels
    bits.add(1000, c)
    expect(c.work).toBe(3)
    bits.add(1001, c) // the word was not empty: one level
    expect(c.work).toBe(4)
  })
})
