import { describe, expect, it } from "@effect/vitest"
import * as Expansion from "../src/core/Expansion.js"
import * as Picker from "../src/core/Picker.js"
import * as Rotation from "../src/core/Rotation.js"

const slot = (address: string, index = 0): Expansion.Slot => ({ address, index })
const A = slot("a:1")
const B = slot("b:2")
const C = slot("c:3")
const D = slot("d:4")

const flags = (...ready: ReadonlyArray<boolean>): Picker.Readiness => ({ flags: ready })

/** The keys of `n` successive picks, "-" for NoneReady, and the picker after them. */
const run = (picker: Picker.Picker, ready: Picker.Readiness, n: number) => {
  const keys: Array<string> = []
  let current = picker
  for (let i = 0; i < n; i++) {
    const result = Picker.pick(current, ready)
    if (result._tag === "NoneReady") {
      keys.push("-")
      continue
    }
    expect(result.slot).toBe(current.slots[result.index])
    keys.push(Expansion.key(result.slot))
    current = result.next
  }
  return { keys, picker: current }
}

describe("Picker.readiness / setReady", () => {
  it("builds all-unready or all-ready flags", () => {
    expect(Picker.readiness(3).flags).toEqual([false, false, false])
    expect(Picker.readiness(2, true).flags).toEqual([true, true])
    expect(Picker.readiness(0).flags).toEqual([])
  })

  it("returns a new object on a change, the same one otherwise", () => {
    const r = Picker.readiness(3)
    const changed = Picker.setReady(r, 1, true)
    expect(changed).not.toBe(r)
    expect(changed.flags).toEqual([false, true, false])
    expect(r.flags).toEqual([false, false, false])
    expect(Picker.setReady(changed, 1, true)).toBe(changed)
    expect(Picker.setReady(r, 0, false)).toBe(r)
  })

  it.each([-1, 3, 1.5, Number.NaN])("rejects slot %d", (index) => {
    expect(() => Picker.setReady(Picker.readiness(3), index, true)).toThrow(RangeError)
  })

  it.each([-1, 1.5])("rejects size %d", (size) => {
    expect(() => Picker.readiness(size)).toThrow(RangeError)
  })
})

describe("Picker.pick", () => {
  it("goes round the slots in order when all are ready", () => {
    expect(run(Picker.make([A, B, C]), Picker.readiness(3, true), 7).keys).toEqual([
      "a:1#0", "b:2#0", "c:3#0", "a:1#0", "b:2#0", "c:3#0", "a:1#0"
    ])
  })

  it("starts at offset mod the number of slots", () => {
    expect(Picker.make([A, B, C], 4).position).toBe(1)
    expect(Picker.make([A, B, C], -1).position).toBe(2)
    expect(run(Picker.make([A, B, C], 5), Picker.readiness(3, true), 3).keys).toEqual(["c:3#0", "a:1#0", "b:2#0"])
    expect(() => Picker.make([A], 0.5)).toThrow(RangeError)
  })

  it("skips unready slots and shares calls equally among the ready ones", () => {
    expect(run(Picker.make([A, B, C, D]), flags(true, false, true, false), 6).keys).toEqual([
      "a:1#0", "c:3#0", "a:1#0", "c:3#0", "a:1#0", "c:3#0"
    ])
    expect(run(Picker.make([A, B, C, D], 1), flags(false, false, false, true), 3).keys).toEqual([
      "d:4#0", "d:4#0", "d:4#0"
    ])
  })

  it("follows each address's number of ready connections", () => {
    const slots = Rotation.slotOrder([
      { address: "a:1", count: 3 },
      { address: "b:2", count: 1 }
    ])
    const share = (ready: Picker.Readiness, picks: number) => {
      const counts: Record<string, number> = {}
      for (const key of run(Picker.make(slots), ready, picks).keys) {
        const address = key.slice(0, key.indexOf("#"))
        counts[address] = (counts[address] ?? 0) + 1
      }
      return counts
    }
    expect(share(Picker.readiness(4, true), 40)).toEqual({ "a:1": 30, "b:2": 10 })
    const aZero = slots.findIndex((s) => s.address === "a:1" && s.index === 0)
    // Three ready slots left, two of them a's: a gets 2/3 of the calls.
    expect(share(Picker.setReady(Picker.readiness(4, true), aZero, false), 30)).toEqual({ "a:1": 20, "b:2": 10 })
  })

  it("keeps its place when readiness changes", () => {
    const picker = Picker.make([A, B, C, D])
    const first = run(picker, Picker.readiness(4, true), 2) // a, b; next tries c
    expect(first.keys).toEqual(["a:1#0", "b:2#0"])
    expect(run(first.picker, flags(true, true, false, true), 3).keys).toEqual(["d:4#0", "a:1#0", "b:2#0"])
  })

  it("returns NoneReady when no slot is ready, and for no slots", () => {
    expect(Picker.pick(Picker.make([A, B]), Picker.readiness(2))).toEqual({ _tag: "NoneReady" })
    expect(Picker.pick(Picker.make([]), Picker.readiness(0))).toEqual({ _tag: "NoneReady" })
    expect(Picker.pick(Picker.make([], 3), Picker.readiness(0, true))).toEqual({ _tag: "NoneReady" })
  })

  it("rejects a readiness of another size", () => {
    expect(() => Picker.pick(Picker.make([A, B]), Picker.readiness(3, true))).toThrow(RangeError)
  })

  it("is pure: the same picker and readiness give the same result whatever happened in between", () => {
    const picker = Picker.make([A, B, C])
    const r1 = flags(false, true, true)
    const r2 = flags(true, false, false)
    const before = Picker.pick(picker, r1)
    Picker.pick(picker, r2)
    const other = Picker.pick(picker, r2)
    if (other._tag === "Picked") Picker.pick(other.next, r1)
    expect(Picker.pick(picker, r1)).toEqual(before)
    expect(Picker.pick(picker, r1)).toMatchObject({ _tag: "Picked", index: 1 })
  })

  it("reads the flags once per Readiness object, and reuses its results", () => {
    let reads = 0
    const counted: Picker.Readiness = {
      flags: new Proxy([true, false, true, true], {
        get(target, property, receiver) {
          if (typeof property === "string" && /^[0-9]+$/.test(property)) reads++
          return Reflect.get(target, property, receiver)
        }
      })
    }
    const { picker } = run(Picker.make([A, B, C, D]), counted, 1)
    const afterFirst = reads
    expect(afterFirst).toBeGreaterThan(0)
    run(picker, counted, 1000)
    expect(reads).toBe(afterFirst) // the next pickers share the cache
    expect(Picker.pick(picker, counted)).toBe(Picker.pick(picker, counted)) // no allocation per pick
  })
})

describe("Picker.update", () => {
  it("continues at the slot it would try next when that slot is still there", () => {
    const { picker } = run(Picker.make([A, B, C]), Picker.readiness(3, true), 1) // next tries b
    const updated = Picker.update(picker, [D, C, A, B])
    expect(updated.slots).toEqual([D, C, A, B])
    expect(updated.position).toBe(3)
    expect(run(updated, Picker.readiness(4, true), 3).keys).toEqual(["b:2#0", "d:4#0", "c:3#0"])
  })

  it("matches the slot by identity, not by object", () => {
    const { picker } = run(Picker.make([A, B, C]), Picker.readiness(3, true), 2) // next tries c
    expect(Picker.update(picker, [slot("c:3"), slot("a:1")]).position).toBe(0)
    expect(Picker.update(picker, [slot("c:3", 1), slot("a:1")]).position).toBe(0 /* 2 mod 2 */)
  })

  it("keeps the same position mod the new length when the slot is gone", () => {
    const { picker } = run(Picker.make([A, B, C, D]), Picker.readiness(4, true), 3) // next tries d
    expect(Picker.update(picker, [A, B, C]).position).toBe(0) // 3 mod 3
    expect(Picker.update(picker, [A, B]).position).toBe(1) // 3 mod 2
  })

  it("handles empty slot lists both ways, and returns the picker itself for the same list", () => {
    const picker = Picker.make([A, B], 1)
    const empty = Picker.update(picker, [])
    expect(Picker.pick(empty, Picker.readiness(0, true))).toEqual({ _tag: "NoneReady" })
    expect(Picker.update(empty, [A, B, C]).position).toBe(0)
    expect(Picker.update(picker, picker.slots)).toBe(picker)
  })

  it("continues the weighted order after an address is added", () => {
    const before = Rotation.slotOrder([
      { address: "a:1", count: 2 },
      { address: "b:2", count: 1 }
    ])
    const { picker } = run(Picker.make(before), Picker.readiness(3, true), 1) // a#0 picked, next tries b#0
    const after = Rotation.slotOrder([
      { address: "a:1", count: 2 },
      { address: "b:2", count: 1 },
      { address: "c:3", count: 1 }
    ])
    const updated = Picker.update(picker, after)
    expect(Picker.pick(updated, Picker.readiness(after.length, true))).toMatchObject({ slot: { address: "b:2", index: 0 } })
  })
})

describe("Picker is opaque", () => {
  it("cannot be written by hand: a literal does not type-check, and pick/update reject it with a TypeError", () => {
    // @ts-expect-error a Picker only comes from make, update or a pick's next
    const forged: Picker.Picker = { slots: [A, B], position: 0 }
    expect(Picker.isPicker(forged)).toBe(false)
    expect(() => Picker.pick(forged, Picker.readiness(2, true))).toThrow(/not a Picker; build one with Picker.make/)
    expect(() => Picker.update(forged, [A])).toThrow(TypeError)
  })

  it("recognises the pickers it makes, including the ones picks and updates return", () => {
    const picker = Picker.make([A, B], 1)
    const result = Picker.pick(picker, Picker.readiness(2, true))
    expect(Picker.isPicker(picker)).toBe(true)
    expect(result._tag === "Picked" && Picker.isPicker(result.next)).toBe(true)
    expect(Picker.isPicker(Picker.update(picker, [C]))).toBe(true)
    expect(Picker.isPicker({ ...picker })).toBe(false) // a copy loses the cache it relies on
  })
})

describe("Picker as JSON", () => {
  it("shows its slots and position, without the cache that refers back to it", () => {
    const picker = Picker.make([A, B], 1)
    Picker.pick(picker, Picker.readiness(2, true))
    expect(JSON.parse(JSON.stringify({ picker }))).toEqual({ picker: { _id: "Picker", slots: [A, B], position: 1 } })
  })
})
