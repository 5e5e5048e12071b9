/**
 * The smooth weighted rotation: the order in which a client takes its
 * connections. One period of W = sum of weights steps in which item i
 * appears exactly w_i times, interleaved as evenly as an order can be. At
 * every prefix of length t, item i has appeared strictly less than one time
 * away from its exact share t * w_i / W (nginx's smooth weighted round robin
 * does not guarantee this).
 *
 * The order is earliest-deadline-first over copies of the items: copy j
 * (j = 0..w_i-1) of item i is released at time j * W / w_i and is due at
 * (j + 1) * W / w_i; at each step the released, unscheduled copy with the
 * earliest deadline goes next, the lower item index on ties. Those windows
 * are feasible, so every copy meets its deadline, which is what bounds the
 * lag. All arithmetic is on integers (deadlines compared by
 * cross-multiplication); a heap makes a period cost O(W log n).
 *
 * The module was called `Schedule` before 0.2.0; it was renamed so that it
 * does not collide with `effect`'s `Schedule` in Effect code. Its two
 * functions are {@link period} (indices) and {@link slotOrder} (connection
 * slots, the ring `Balancer` picks from).
 *
 * @example
 * ```ts
 * import { Rotation } from "grpc-anchor/core"
 * Rotation.period([5, 1]) // [0, 1, 0, 0, 0, 0]
 * Rotation.period([5, 1], 2) // [0, 0, 0, 0, 0, 1]
 * ```
 *
 * @since 0.1.0
 */
import * as Expansion from "./Expansion.js"

/**
 * The largest total weight {@link period} accepts (2^26): products of two
 * weights-sums stay exact in a double.
 */
const MAX_TOTAL = 2 ** 26

/**
 * One period of the rotation: indices into `weights`, of length
 * W = sum of weights, each index i appearing `weights[i]` times, rotated left
 * by `offset` mod W. The offset is how a caller spreads many clients over
 * the backends (pass a random whole number); the core never draws one.
 * Weights of 0 never appear; all-zero or empty weights give `[]`.
 *
 * @throws RangeError when a weight is not a whole number >= 0, the total is
 * over 2^26, or the offset is not a whole number (defects in the caller).
 *
 * @example
 * ```ts
 * import { Rotation } from "grpc-anchor/core"
 * Rotation.period([2, 1]) // [0, 1, 0]
 * Rotation.period([1, 1, 1], 4) // [1, 2, 0]
 * ```
 *
 * @category combinators
 * @since 0.2.0
 */
export const period = (weights: ReadonlyArray<number>, offset = 0): ReadonlyArray<number> => {
  if (!Number.isSafeInteger(offset)) throw new RangeError(`the offset must be a whole number, got ${offset}`)
  const n = weights.length
  let total = 0
  for (let i = 0; i < n; i++) {
    const w = weights[i]!
    if (!Number.isSafeInteger(w) || w < 0) throw new RangeError(`weight ${i} must be a whole number >= 0, got ${w}`)
    total += w
    if (total > MAX_TOTAL) throw new RangeError(`the weights add up to more than ${MAX_TOTAL}`)
  }
  if (total === 0) return []

  const w = Int32Array.from(weights)
  // next[i]: the index j of item i's next unscheduled copy.
  const next = new Int32Array(n)
  // Released items wait in a binary min-heap ordered by the deadline of their
  // next copy, (next[i] + 1) * W / w[i]; the W cancels when comparing.
  const heap = new Int32Array(n)
  let size = 0
  const before = (a: number, b: number): boolean => {
    const da = (next[a]! + 1) * w[b]!
    const db = (next[b]! + 1) * w[a]!
    return da < db || (da === db && a < b)
  }
  const push = (item: number) => {
    let at = size++
    while (at > 0) {
      const parent = (at - 1) >> 1
      if (!before(item, heap[parent]!)) break
      heap[at] = heap[parent]!
      at = parent
    }
    heap[at] = item
  }
  const pop = (): number => {
    const top = heap[0]!
    const last = heap[--size]!
    let at = 0
    for (;;) {
      let child = 2 * at + 1
      if (child >= size) break
      if (child + 1 < size && before(heap[child + 1]!, heap[child]!)) child++
      if (!before(heap[child]!, last)) break
      heap[at] = heap[child]!
      at = child
    }
    heap[at] = last
    return top
  }
  // Items whose next copy is not released yet wait in a bucket per release
  // step (a linked list through `link`): copy j is released at the first
  // whole step t >= j * W / w[i], that is ceil(j * W / w[i]).
  const bucket = new Int32Array(total).fill(-1)
  const link = new Int32Array(n)
  const release = (item: number, at: number) => {
    link[item] = bucket[at]!
    bucket[at] = item
  }
  for (let i = 0; i < n; i++) if (w[i]! > 0) push(i) // copy 0 is released at 0

  const order = new Array<number>(total)
  for (let t = 0; t < total; t++) {
    for (let item = bucket[t]!; item !== -1; item = link[item]!) push(item)
    // Never empty: the windows are feasible, so EDF never idles (see the module doc).
    const item = pop()
    order[t] = item
    const j = ++next[item]!
    if (j < w[item]!) {
      const numerator = j * total + w[item]! - 1 // ceil(j * W / w) = floor((j * W + w - 1) / w), exact below 2^53
      const at = (numerator - (numerator % w[item]!)) / w[item]!
      if (at <= t) push(item)
      else release(item, at)
    }
  }

  const shift = ((offset % total) + total) % total
  return shift === 0 ? order : [...order.slice(shift), ...order.slice(0, shift)]
}

/**
 * The slots of `endpoints` in rotation order: {@link period} of the counts,
 * with the k-th occurrence of endpoint i mapped to slot
 * `{ address: endpoints[i].address, index: k }`, so each slot of
 * `Expansion.expand(endpoints)` appears exactly once (an address listed
 * twice is merged first, as `expand` does). The offset, if any, belongs to
 * balancer's start position (an `Addresses` event's `offset`), so this order is shared by
 * every client.
 *
 * @example
 * ```ts
 * import { Expansion, Rotation } from "grpc-anchor/core"
 * Rotation.slotOrder([{ address: "a:1", count: 2 }, { address: "b:2", count: 1 }]).map(Expansion.key)
 * // ["a:1#0", "b:2#0", "a:1#1"]
 * ```
 *
 * @category combinators
 * @since 0.2.0
 */
export const slotOrder = (endpoints: ReadonlyArray<Expansion.Weighted>): ReadonlyArray<Expansion.Slot> => {
  // expand merges duplicates and groups slots by address, index 0..count-1.
  const slots = Expansion.expand(endpoints)
  const starts: Array<number> = []
  const counts: Array<number> = []
  for (let s = 0; s < slots.length; s++) {
    if (slots[s]!.index === 0) {
      starts.push(s)
      counts.push(0)
    }
    counts[counts.length - 1]!++
  }
  const seen = new Int32Array(counts.length)
  return period(counts).map((group) => slots[starts[group]! + seen[group]!++]!)
}
