/**
 * The expansion of weighted addresses into connection slots. A slot is one
 * connection; its identity is `(address, index)` with `index` counting
 * 0..count-1 within its address, so adding or removing one address leaves
 * the identities of every other address's slots unchanged, and a pool keyed
 * by {@link key} keeps those connections open across updates.
 *
 * @example
 * ```ts
 * import { Expansion } from "grpc-anchor/core"
 * Expansion.expand([{ address: "10.0.0.1:9080", count: 2 }, { address: "10.0.0.2:9090", count: 1 }])
 * // [{ address: "10.0.0.1:9080", index: 0 }, { address: "10.0.0.1:9080", index: 1 },
 * //  { address: "10.0.0.2:9090", index: 0 }]
 * ```
 *
 * @since 0.1.0
 */
import * as Address from "./Address.js"
import type * as Target from "./Target.js"

/**
 * An address (canonical `Address.format` text) and its number of
 * connections, a whole number >= 0. `maxCount`, when present and above
 * `count`, is the most connections an adaptive count (`#2..8`) may grow to;
 * absent, the count is fixed. {@link expand} expands `count`: growing is the
 * policy's decision.
 *
 * @example
 * ```ts
 * import type { Expansion } from "grpc-anchor/core"
 * const fixed: Expansion.Weighted = { address: "10.0.0.1:9080", count: 2 }
 * const adaptive: Expansion.Weighted = { address: "10.0.0.2:9080", count: 2, maxCount: 8 }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Weighted {
  readonly address: string
  readonly count: number
  readonly maxCount?: number
}

/**
 * The stable identity of one connection: the `index`-th connection to `address`.
 *
 * @example
 * ```ts
 * import type { Expansion } from "grpc-anchor/core"
 * const second: Expansion.Slot = { address: "10.0.0.1:9080", index: 1 } // the 2nd connection to 10.0.0.1:9080
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Slot {
  readonly address: string
  readonly index: number
}

/**
 * The text key of a slot, `${address}#${index}`, for maps and logs.
 *
 * @example
 * ```ts
 * import { Expansion } from "grpc-anchor/core"
 * Expansion.key({ address: "[::1]:9080", index: 1 }) // "[::1]:9080#1"
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const key = (slot: Slot): string => `${slot.address}#${slot.index}`

/**
 * The slots of a list of weighted addresses: grouped by address in input
 * order, indices 0..count-1. An address listed twice is one address whose
 * counts add up (first-appearance order), so every slot is unique. A count
 * of 0 gives no slots.
 *
 * @throws RangeError when a count is not a whole number >= 0 (a defect in the
 * caller: counts come from a parsed target or a decoded record).
 *
 * @example
 * ```ts
 * import { Expansion } from "grpc-anchor/core"
 * Expansion.expand([{ address: "a:1", count: 1 }, { address: "b:2", count: 2 }]).map(Expansion.key)
 * // ["a:1#0", "b:2#0", "b:2#1"]
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const expand = (endpoints: ReadonlyArray<Weighted>): ReadonlyArray<Slot> => {
  const counts = new Map<string, number>()
  for (const endpoint of endpoints) {
    if (!Number.isSafeInteger(endpoint.count) || endpoint.count < 0) {
      throw new RangeError(`the count of ${endpoint.address} must be a whole number >= 0, got ${endpoint.count}`)
    }
    counts.set(endpoint.address, (counts.get(endpoint.address) ?? 0) + endpoint.count)
  }
  const slots: Array<Slot> = []
  // Map iteration follows first insertion, which is the first-appearance order.
  for (const [address, count] of counts) {
    for (let index = 0; index < count; index++) slots.push({ address, index })
  }
  return slots
}

/**
 * The weighted addresses of a `pass:///` target, addresses in canonical text;
 * `maxCount` only for an address with a count range (`#2..8`).
 *
 * @example
 * ```ts
 * import { Expansion, Target } from "grpc-anchor/core"
 * Expansion.fromTarget(Target.parseUnsafe("pass:///A:1#2,[0::1]:2#1..4") as Target.PassTarget)
 * // [{ address: "a:1", count: 2 }, { address: "[::1]:2", count: 1, maxCount: 4 }]
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const fromTarget = (target: Target.PassTarget): ReadonlyArray<Weighted> =>
  target.endpoints.map((endpoint) => weighted(Address.format(endpoint.address), endpoint))

/**
 * One weighted address from a canonical address text and a count range:
 * `maxCount` is set only when it is above `count`, so fixed counts give the
 * same `{ address, count }` as before ranges existed.
 *
 * @example
 * ```ts
 * import { Expansion } from "grpc-anchor/core"
 * Expansion.weighted("a:1", { count: 2, maxCount: 8 }) // { address: "a:1", count: 2, maxCount: 8 }
 * Expansion.weighted("a:1", { count: 2, maxCount: 2 }) // { address: "a:1", count: 2 }
 * ```
 *
 * @category combinators
 * @since 0.2.0
 */
export const weighted = (address: string, range: Target.CountRange): Weighted =>
  range.maxCount > range.count ? { address, count: range.count, maxCount: range.maxCount } : { address, count: range.count }
