/**
 * Admission of an address list (src/core/balancer/admission.ts), tested on
 * its own: trim and cap (at exactly the limit and one over), the mass-removal
 * grace in both directions (READY addresses are kept, addresses with no READY
 * connection are not), and the cap with the grace.
 */
import { describe, expect, it } from "@effect/vitest"
import { admit, type PoolAddress, trim } from "../src/core/balancer/admission.js"

const noLog = () => {}
const limits = { maxConnections: 10, removalGraceMs: 1_000, removalThreshold: 0.5 }
const pool = (...entries: Array<[string, number, number]>): Map<string, PoolAddress> =>
  new Map(entries.map(([address, count, connected]) => [address, { address, count, min: count, max: count, connected, retainedUntil: 0 }]))

describe("admission", () => {
  it.each([
    { total: 10, overCap: "fail" as const, tag: "Trimmed" },
    { total: 11, overCap: "fail" as const, tag: "Refused" },
    { total: 11, overCap: "keepFirst" as const, tag: "Trimmed" }
  ])("trim: $total connections against a cap of 10 with $overCap is $tag", ({ overCap, tag, total }) => {
    const result = trim([{ address: "b:1", count: total - 5 }, { address: "a:1", count: 5 }], overCap, 10, noLog)
    expect(result._tag).toBe(tag)
    if (result._tag === "Trimmed" && total > 10) expect([...result.merged]).toEqual([["a:1", 5]])
    if (result._tag === "Trimmed" && total === 10) expect([...result.merged]).toEqual([["b:1", 5], ["a:1", 5]])
  })

  it("trim merges duplicates, counts and maxima added, in first-appearance order", () => {
    const result = trim([{ address: "b:1", count: 1, maxCount: 2 }, { address: "a:1", count: 1 }, { address: "b:1", count: 2 }], "fail", 10, noLog)
    expect(result._tag === "Trimmed" && [...result.merged]).toEqual([["b:1", 3], ["a:1", 1]])
    expect(result._tag === "Trimmed" && [...result.maxima]).toEqual([["b:1", 4], ["a:1", 1]])
  })

  it("the grace keeps READY addresses a mass removal drops, and only those", () => {
    const p = pool(["a:1", 1, 1], ["b:1", 1, 1], ["c:1", 1, 0], ["d:1", 1, 1])
    const trimmed = trim([{ address: "d:1", count: 1 }], "fail", 10, noLog)
    if (trimmed._tag !== "Trimmed") throw new Error("refused")
    const { next, retain } = admit(p, trimmed, limits, noLog)
    expect([...retain]).toEqual(["a:1", "b:1"])
    expect(next.map((w) => w.address)).toEqual(["d:1", "a:1", "b:1"])
  })

  it("no grace when the update drops no more than the threshold's share", () => {
    const p = pool(["a:1", 1, 1], ["b:1", 1, 1])
    const trimmed = trim([{ address: "b:1", count: 1 }], "fail", 10, noLog)
    if (trimmed._tag !== "Trimmed") throw new Error("refused")
    const { next, retain } = admit(p, trimmed, limits, noLog)
    expect(retain.size).toBe(0)
    expect(next.map((w) => w.address)).toEqual(["b:1"])
  })

  it("addresses kept by the grace give way to the list at the cap, in address order", () => {
    const p = pool(["b:1", 3, 1], ["a:1", 3, 1], ["c:1", 1, 1])
    const trimmed = trim([{ address: "c:1", count: 5 }], "fail", 10, noLog)
    if (trimmed._tag !== "Trimmed") throw new Error("refused")
    const { next } = admit(p, trimmed, { ...limits, maxConnections: 8 }, noLog)
    expect(next).toEqual([{ address: "c:1", count: 5, min: 5, max: 5 }, { address: "a:1", count: 3, min: 3, max: 3 }])
  })
})

describe("admission: StrykerJS survivors, killed", () => {
  const admitted = (p: Map<string, PoolAddress>, list: ReadonlyArray<string>, max = 10) => {
    const trimmed = trim(list.map((address) => ({ address, count: 1 })), "fail", max, noLog)
    if (trimmed._tag !== "Trimmed") throw new Error("refused")
    return admit(p, trimmed, { ...limits, maxConnections: max }, noLog)
  }

  it.each([-1, 1.5, Number.NaN])("trim refuses a count of %s as a defect", (count) => {
    expect(() => trim([{ address: "a:1", count }], "fail", 10, noLog)).toThrow(RangeError)
  })

  it("trim keeps no address after the first one that does not fit, even a small one", () => {
    const result = trim([{ address: "c:1", count: 1 }, { address: "b:1", count: 9 }, { address: "a:1", count: 3 }], "keepFirst", 10, noLog)
    expect(result._tag === "Trimmed" && [...result.merged]).toEqual([["a:1", 3]])
  })

  it("listed addresses with nothing READY do not count among the READY ones", () => {
    // 1 READY address of 1 dropped: a mass removal.
    expect([...admitted(pool(["a:1", 1, 1], ["b:1", 1, 0], ["c:1", 1, 0]), ["b:1", "c:1"]).retain]).toEqual(["a:1"])
  })

  it("addresses the grace already keeps count as removed, and stay in the pool", () => {
    const p = pool(["a:1", 1, 1], ["b:1", 1, 1], ["c:1", 1, 1], ["d:1", 1, 1])
    p.set("a:1", { ...p.get("a:1")!, retainedUntil: 5 })
    // a (already kept) + b + c of 4 READY: 3 > 2, so b and c are kept too.
    const { next, retain } = admitted(p, ["d:1"])
    expect([...retain]).toEqual(["b:1", "c:1"])
    expect(next.map((w) => w.address)).toEqual(["d:1", "a:1", "b:1", "c:1"])
  })

  it("the addresses the grace keeps fit when they reach exactly the cap", () => {
    const { next } = admitted(pool(["a:1", 2, 1], ["b:1", 1, 1]), ["c:1"], 3)
    expect(next.map((w) => w.address)).toEqual(["c:1", "a:1"])
    expect(admitted(pool(["a:1", 2, 1], ["b:1", 1, 1]), ["c:1"], 4).next.map((w) => w.address)).toEqual(["c:1", "a:1", "b:1"])
  })
})
