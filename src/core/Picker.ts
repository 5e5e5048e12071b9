/**
 * The picker: round robin over connection slots in rotation order, skipping
 * the slots that are not ready, as a pure step
 * `pick(picker, readiness) -> { slot, next }`. Ready slots share calls
 * equally, so each address's share follows its number of ready connections.
 *
 * A pick costs O(1) whatever the number of slots: the picker caches, per
 * {@link Readiness} object, a table from each position to the next ready
 * slot (built in O(n) the first time that object is seen; readiness changes
 * are rare compared with picks), and the results of picks are built once per
 * slot and reused, so a pick allocates nothing in the steady state. The
 * cache is invisible: `pick` returns the same result for the same picker and
 * readiness whatever was picked before.
 *
 * @example
 * ```ts
 * import { Picker, Rotation } from "grpc-anchor/core"
 * const slots = Rotation.slotOrder([{ address: "a:1", count: 2 }, { address: "b:2", count: 1 }])
 * let picker = Picker.make(slots)
 * const ready = Picker.setReady(Picker.readiness(slots.length, true), 1, false)
 * const result = Picker.pick(picker, ready)
 * if (result._tag === "Picked") picker = result.next // result.slot is { address: "a:1", index: 0 }
 * ```
 *
 * @since 0.1.0
 */
import type * as Expansion from "./Expansion.js"

/**
 * Which slots of a picker are ready, one flag per slot, in the picker's slot
 * order. Treat it as immutable: the picker caches work per `Readiness`
 * object, so a change must be a new object ({@link setReady} makes one).
 *
 * @example
 * ```ts
 * import { Picker } from "grpc-anchor/core"
 * const ready: Picker.Readiness = Picker.setReady(Picker.readiness(3), 2, true) // flags [false, false, true]
 * ```
 *
 * @since 0.1.0
 */
export interface Readiness {
  readonly flags: ReadonlyArray<boolean>
}

/**
 * A readiness of `size` slots, all `ready` (default `false`: connections
 * start out connecting).
 *
 * @throws RangeError when `size` is not a whole number >= 0.
 *
 * @example
 * ```ts
 * import { Picker } from "grpc-anchor/core"
 * Picker.readiness(3).flags // [false, false, false]
 * ```
 *
 * @since 0.1.0
 */
export const readiness = (size: number, ready = false): Readiness => {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`the size must be a whole number >= 0, got ${size}`)
  return { flags: Object.freeze(new Array<boolean>(size).fill(ready)) }
}

/**
 * The readiness with slot `index` set to `ready`: a new object, or `r`
 * itself when the flag already has that value (so the picker's cache
 * survives no-op updates).
 *
 * @throws RangeError when `index` is not a slot index of `r`.
 *
 * @example
 * ```ts
 * import { Picker } from "grpc-anchor/core"
 * const r = Picker.setReady(Picker.readiness(2), 1, true) // flags [false, true]
 * Picker.setReady(r, 1, true) === r // true
 * ```
 *
 * @since 0.1.0
 */
export const setReady = (r: Readiness, index: number, ready: boolean): Readiness => {
  if (!Number.isSafeInteger(index) || index < 0 || index >= r.flags.length) {
    throw new RangeError(`slot ${index} is outside 0..${r.flags.length - 1}`)
  }
  if (r.flags[index] === ready) return r
  const flags = r.flags.slice()
  flags[index] = ready
  return { flags: Object.freeze(flags) }
}

/**
 * Brands the {@link Picker} type. Not exported: a picker can only come from
 * {@link make}, {@link update} or a pick's `next`, so an object written by
 * hand (which `pick` could not use) does not type-check.
 */
const TypeId: unique symbol = Symbol.for("grpc-anchor/Picker")

/**
 * A position in the round robin over `slots` (slot order as given, usually
 * `Rotation.slotOrder`). `position` is the slot it tries first on the next
 * pick. Opaque: create pickers with {@link make} and {@link update} only (a
 * hand-built `{ slots, position }` does not type-check); `slots` and
 * `position` are there to read.
 *
 * @example
 * ```ts
 * import { Picker } from "grpc-anchor/core"
 * const picker: Picker.Picker = Picker.make([{ address: "a:1", index: 0 }])
 * picker.position // 0
 * // const forged: Picker.Picker = { slots: [], position: 0 } // type error
 * ```
 *
 * @since 0.1.0
 */
export interface Picker {
  readonly [TypeId]: typeof TypeId
  readonly slots: ReadonlyArray<Expansion.Slot>
  readonly position: number
}

/**
 * Whether `u` is a picker made by this module.
 *
 * @example
 * ```ts
 * import { Picker } from "grpc-anchor/core"
 * Picker.isPicker(Picker.make([])) // true
 * Picker.isPicker({ slots: [], position: 0 }) // false
 * ```
 *
 * @since 0.2.0
 */
export const isPicker = (u: unknown): u is Picker => u instanceof PickerImpl

/**
 * The outcome of a pick: the slot at `index` in `picker.slots` and the
 * picker to use for the next call, or `NoneReady` when no slot is ready.
 *
 * @example
 * ```ts
 * import { Picker } from "grpc-anchor/core"
 * let picker = Picker.make([{ address: "a:1", index: 0 }])
 * const result: Picker.Pick = Picker.pick(picker, Picker.readiness(1, true))
 * if (result._tag === "Picked") picker = result.next // result.slot: { address: "a:1", index: 0 }
 * ```
 *
 * @since 0.1.0
 */
export type Pick =
  | { readonly _tag: "Picked"; readonly index: number; readonly slot: Expansion.Slot; readonly next: Picker }
  | { readonly _tag: "NoneReady" }

type Picked = Extract<Pick, { _tag: "Picked" }>

const NONE_READY: Pick = Object.freeze({ _tag: "NoneReady" })

/** What every picker over the same slot list shares. */
interface Ring {
  readonly slots: ReadonlyArray<Expansion.Slot>
  /** The picker at each position, built on first use. */
  readonly pickers: Array<PickerImpl | undefined>
  /** The result of picking each slot (its `next` is the picker after it), built on first use. */
  readonly picks: Array<Picked | undefined>
  /** The readiness `nextReady` was computed from. */
  readiness: Readiness | undefined
  /** For each position, the first ready position at or after it (cyclically); -1 when none is ready. */
  nextReady: Int32Array
}

class PickerImpl implements Picker {
  readonly [TypeId]: typeof TypeId = TypeId
  constructor(
    readonly slots: ReadonlyArray<Expansion.Slot>,
    readonly position: number,
    readonly ring: Ring
  ) {}

  /** What logs and JSON show: the cache (`ring`) refers back to the picker, so it is left out. */
  toJSON(): { readonly _id: "Picker"; readonly slots: ReadonlyArray<Expansion.Slot>; readonly position: number } {
    return { _id: "Picker", slots: this.slots, position: this.position }
  }
}

const makeRing = (slots: ReadonlyArray<Expansion.Slot>): Ring => ({
  slots,
  pickers: new Array<PickerImpl | undefined>(slots.length).fill(undefined),
  picks: new Array<Picked | undefined>(slots.length).fill(undefined),
  readiness: undefined,
  nextReady: new Int32Array(slots.length)
})

const pickerAt = (ring: Ring, position: number): PickerImpl => {
  const existing = ring.pickers[position]
  if (existing !== undefined) return existing
  const created = new PickerImpl(ring.slots, position, ring)
  if (position < ring.pickers.length) ring.pickers[position] = created
  return created
}

const pickedAt = (ring: Ring, index: number): Picked => {
  const picked: Picked = {
    _tag: "Picked",
    index,
    slot: ring.slots[index]!,
    next: pickerAt(ring, index + 1 === ring.slots.length ? 0 : index + 1)
  }
  ring.picks[index] = picked
  return picked
}

const refresh = (ring: Ring, ready: Readiness): void => {
  const flags = ready.flags
  const n = ring.slots.length
  if (flags.length !== n) {
    throw new RangeError(`the readiness has ${flags.length} flags for ${n} slots; build it for the picker's slots`)
  }
  let first = -1
  for (let p = 0; p < n && first === -1; p++) if (flags[p] === true) first = p
  const table = ring.nextReady
  let following = first
  for (let p = n - 1; p >= 0; p--) {
    if (flags[p] === true) following = p
    table[p] = following
  }
  ring.readiness = ready
}

/** What `pick` and `update` throw for an object that did not come from this module (JavaScript callers, casts). */
const notAPicker = (name: string): TypeError =>
  new TypeError(`Picker.${name}: not a Picker; build one with Picker.make(slots, offset) and keep the picker each pick returns`)

const mod = (a: number, n: number): number => ((a % n) + n) % n

/**
 * A picker over `slots` that starts at position `offset` mod the number of
 * slots. Pass a random whole number as `offset` so that many clients do not
 * all start on the same backend; the core never draws one itself.
 *
 * @throws RangeError when `offset` is not a whole number.
 *
 * @example
 * ```ts
 * import { Picker } from "grpc-anchor/core"
 * const picker = Picker.make([{ address: "a:1", index: 0 }, { address: "b:2", index: 0 }], 7)
 * picker.position // 1
 * ```
 *
 * @since 0.1.0
 */
export const make = (slots: ReadonlyArray<Expansion.Slot>, offset = 0): Picker => {
  if (!Number.isSafeInteger(offset)) throw new RangeError(`the offset must be a whole number, got ${offset}`)
  return pickerAt(makeRing(slots), slots.length === 0 ? 0 : mod(offset, slots.length))
}

/**
 * Picks the first ready slot at or after the picker's position (wrapping
 * around) and returns it with the picker for the next call, which starts
 * just after it; `NoneReady` when no slot is ready. Over k full rounds each
 * ready slot is picked exactly k times. O(1), allocation-free once warm; the
 * first pick with a new `Readiness` object costs O(n).
 *
 * @throws RangeError when `ready` does not have one flag per slot; TypeError
 * when `picker` did not come from this module.
 *
 * @example
 * ```ts
 * import { Picker } from "grpc-anchor/core"
 * const picker = Picker.make([{ address: "a:1", index: 0 }, { address: "b:2", index: 0 }])
 * const ready = Picker.setReady(Picker.readiness(2), 1, true)
 * Picker.pick(picker, ready) // { _tag: "Picked", index: 1, slot: { address: "b:2", index: 0 }, next }
 * Picker.pick(picker, Picker.readiness(2)) // { _tag: "NoneReady" }
 * ```
 *
 * @since 0.1.0
 */
export const pick = (picker: Picker, ready: Readiness): Pick => {
  const { ring, position } = picker as PickerImpl
  // A field read, not instanceof: this is the hot path (the pickers are cached per position).
  if (ring === undefined) throw notAPicker("pick")
  if (ring.readiness !== ready) refresh(ring, ready)
  const index = ring.nextReady[position]
  if (index === undefined || index < 0) return NONE_READY
  return ring.picks[index] ?? pickedAt(ring, index)
}

/**
 * The picker for a new slot order (after addresses were added or removed or
 * counts changed). It continues at the slot the old picker would try next
 * (the slot at its position) if that slot is still in `slots`, else at the
 * same position mod the new length. Pure: it depends only on the picker's
 * slots and position, never on the readiness it has seen.
 *
 * @example
 * ```ts
 * import { Picker } from "grpc-anchor/core"
 * const a = { address: "a:1", index: 0 }, b = { address: "b:2", index: 0 }, c = { address: "c:3", index: 0 }
 * const picker = Picker.make([a, b], 1) // next tries b
 * Picker.update(picker, [c, a, b]).position // 2: still b
 * ```
 *
 * @since 0.1.0
 */
export const update = (picker: Picker, slots: ReadonlyArray<Expansion.Slot>): Picker => {
  if (!(picker instanceof PickerImpl)) throw notAPicker("update")
  if (slots === picker.slots) return picker
  const ring = makeRing(slots)
  if (slots.length === 0) return pickerAt(ring, 0)
  const current = picker.slots[picker.position]
  if (current !== undefined) {
    for (let p = 0; p < slots.length; p++) {
      const slot = slots[p]!
      if (slot.address === current.address && slot.index === current.index) return pickerAt(ring, p)
    }
  }
  return pickerAt(ring, picker.position % slots.length)
}
