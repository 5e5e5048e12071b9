/**
 * From a resolver's answer to an `Addresses` event: each address's count
 * and adaptive range (the resolver's, else the settings' defaults), the pick
 * mode the target asks for, and what to do over the cap.
 *
 * @since 0.3.0
 */
import type * as Expansion from "../Expansion.js"
import type { Settings } from "./config.js"
import { PICK_MODES, type PickMode } from "./options.js"

/**
 * What an address list over the cap does: `"fail"` refuses it with a
 * `ConnectionCapError` (a list its author wrote by hand, as a `pass:`
 * target: the fix is to lower its counts), `"keepFirst"` keeps whole
 * addresses in ascending address order while they fit (a registry's set,
 * which grows under the client: it keeps serving).
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * const mode: Balancer.OverCap = "keepFirst"
 * ```
 *
 * @category models
 * @since 0.3.0
 */
export type OverCap = "fail" | "keepFirst"

/**
 * The over-cap mode of a list whose resolver says none: `"keepFirst"`. Such
 * a list comes from a resolver that is not grpc-anchor's (DNS, a static
 * `ipv4:` list, a resolver of your own): the policy cannot tell whether a
 * person wrote it, and its size may change under the client (a DNS name
 * that returns more records), so it keeps serving with the addresses that
 * fit and traces the others rather than failing every call.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * Balancer.listing(["a:1"], undefined, Balancer.defaultSettings).overCap // "keepFirst" (Balancer.DEFAULT_OVER_CAP)
 * ```
 *
 * @category models
 * @since 0.3.0
 */
export const DEFAULT_OVER_CAP: OverCap = "keepFirst"

/**
 * What a resolver may say beside its addresses (grpc-anchor's resolvers
 * say all of it; any field may be absent or malformed, and is then
 * ignored): per address (`Address.format` text) the count to start with
 * and the most an adaptive count may grow to, the pick mode the target
 * names, and the over-cap mode.
 *
 * @example
 * ```ts
 * import type { Balancer } from "grpc-anchor/core"
 * const hints: Balancer.Hints = { counts: new Map([["10.0.0.1:9080", 2]]), pick: "least_request", overCap: "fail" }
 * ```
 *
 * @category models
 * @since 0.3.0
 */
export interface Hints {
  readonly counts?: ReadonlyMap<string, number> | undefined
  readonly maxCounts?: ReadonlyMap<string, number> | undefined
  readonly pick?: string | undefined
  readonly overCap?: string | undefined
}

/**
 * The fields of an `Addresses` event that {@link listing} decides.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * const listing: Balancer.Listing = Balancer.listing(["a:1"], undefined, Balancer.defaultSettings)
 * // { endpoints: [{ address: "a:1", count: 1 }], overCap: "keepFirst", pick: undefined }
 * ```
 *
 * @category models
 * @since 0.3.0
 */
export interface Listing {
  readonly endpoints: ReadonlyArray<Expansion.Weighted>
  readonly overCap: OverCap
  readonly pick: PickMode | undefined
}

const isMap = (u: unknown): u is ReadonlyMap<string, number> => u instanceof Map

/**
 * The endpoints, the over-cap mode and the pick mode of one address list.
 * `addresses` are distinct addresses in resolver order (a repeated one is
 * taken once). An address the resolver gave a count keeps it, with the
 * resolver's maximum (if any) as its adaptive range; one it gave none gets
 * the settings' `connectionsPerAddress` and `maxConnectionsPerAddress`. A
 * maximum not above the count means a fixed count. The pick mode and the
 * over-cap mode are the resolver's when it names a known one, else
 * `undefined` (the `pickMode` setting applies) and {@link DEFAULT_OVER_CAP}.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * const settings = { ...Balancer.defaultSettings, connectionsPerAddress: 2 }
 * Balancer.listing(["a:1", "b:2"], { counts: new Map([["a:1", 3]]), overCap: "fail" }, settings)
 * // { endpoints: [{ address: "a:1", count: 3 }, { address: "b:2", count: 2 }], overCap: "fail", pick: undefined }
 * ```
 *
 * @category constructors
 * @since 0.3.0
 */
export const listing = (
  addresses: Iterable<string>,
  hints: Hints | undefined,
  settings: Pick<Settings, "connectionsPerAddress" | "maxConnectionsPerAddress">
): Listing => {
  const counts = isMap(hints?.counts) ? hints.counts : undefined
  const maxCounts = isMap(hints?.maxCounts) ? hints.maxCounts : undefined
  const endpoints: Array<Expansion.Weighted> = []
  const seen = new Set<string>()
  for (const address of addresses) {
    if (seen.has(address)) continue
    seen.add(address)
    const given = counts?.get(address)
    const count = given ?? settings.connectionsPerAddress
    const maxCount = given !== undefined ? maxCounts?.get(address) : settings.maxConnectionsPerAddress
    endpoints.push(maxCount !== undefined && maxCount > count ? { address, count, maxCount } : { address, count })
  }
  const pick = PICK_MODES.find((mode) => mode === hints?.pick)
  const overCap: OverCap = hints?.overCap === "fail" || hints?.overCap === "keepFirst" ? hints.overCap : DEFAULT_OVER_CAP
  return { endpoints, overCap, pick }
}
