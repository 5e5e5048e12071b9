/**
 * The endpoint set of one service: the pure state machine that turns etcd
 * events (a listing, then watch responses) into the backends of the service,
 * using the record codec of {@link EtcdRecord}.
 *
 * - Only keys the service owns count (`svc` owns `svc/...`, never `svc2/...`).
 * - A value that does not decode is skipped, reported once, and removes the
 *   good record its key held before.
 * - The same address under two keys is one backend (the smallest key wins).
 * - At most a cap of records is kept (default {@link DEFAULT_CAP}).
 * - A record's own connection count (`EtcdRecord.CONNECTIONS_KEY` in its
 *   metadata) is kept on its endpoint; {@link weighted} applies it over the
 *   target's count. A bad count keeps the record and is reported in `warnings`.
 *
 * @example
 * ```ts
 * import { EndpointSet, EtcdRecord } from "grpc-anchor/core"
 * const { value } = EtcdRecord.encode("svc", { address: "10.0.0.1:9080", metadata: null })
 * const { set, skipped } = EndpointSet.applyBatch(EndpointSet.empty, "svc", [{ _tag: "Put", key: "svc/a", value }])
 * EndpointSet.addresses(set) // ["10.0.0.1:9080"]; skipped is []
 * ```
 *
 * @since 0.2.0
 */
import * as Result from "effect/Result"
import * as EtcdRecord from "./EtcdRecord.js"
import * as Expansion from "./Expansion.js"
import type * as Target from "./Target.js"

/**
 * A change to one etcd key, as a watch response or a listing reports it.
 *
 * @example
 * ```ts
 * import type { EndpointSet } from "grpc-anchor/core"
 * const events: ReadonlyArray<EndpointSet.Event> = [
 *   { _tag: "Put", key: "svc/a", value: '{"Op":0,"Addr":"10.0.0.1:9080","Metadata":null}' },
 *   { _tag: "Delete", key: "svc/b" }
 * ]
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type Event =
  | { readonly _tag: "Put"; readonly key: string; readonly value: string }
  | { readonly _tag: "Delete"; readonly key: string }

/**
 * The good records of one service, by etcd key. Build it from {@link empty}
 * with {@link applyBatch}; read it with {@link endpoints} or {@link addresses}.
 *
 * @example
 * ```ts
 * import { EndpointSet } from "grpc-anchor/core"
 * const { set } = EndpointSet.applyBatch(EndpointSet.empty, "svc", [{ _tag: "Put", key: "svc/a", value: '{"Addr":"h:1"}' }])
 * set.records.get("svc/a") // { address: "h:1", metadata: null }
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface EndpointSet {
  readonly records: ReadonlyMap<string, EtcdRecord.Endpoint>
}

/**
 * The set with no records.
 *
 * @example
 * ```ts
 * import { EndpointSet } from "grpc-anchor/core"
 * EndpointSet.addresses(EndpointSet.empty) // []
 * ```
 *
 * @category constructors
 * @since 0.2.0
 */
export const empty: EndpointSet = { records: new Map() }

/**
 * The default cap on records per service.
 *
 * @example
 * ```ts
 * import { EndpointSet } from "grpc-anchor/core"
 * EndpointSet.DEFAULT_CAP // 10000; pass { cap } to applyBatch for another
 * ```
 *
 * @category constants
 * @since 0.2.0
 */
export const DEFAULT_CAP = 10_000

/**
 * Applies the events of one etcd watch response (or a whole listing, as puts)
 * at once. Keys that `service` does not own are ignored. A put that does not
 * decode removes the good record that key held (the key's current value is
 * bad, so the old endpoint is no longer what etcd says) and is returned in
 * `skipped`. With `cap` (default {@link DEFAULT_CAP}), a put of a new key when
 * the set already holds `cap` records is ignored and reported with problem
 * `"OverCap"`; keys already in the set are always updated. A put that decodes
 * with a warning (a bad per-endpoint connection count, problem
 * `"InvalidConnections"`) is kept, without its count, and its warning is
 * returned in `warnings` (log it; the record is not skipped).
 *
 * Applying a batch gives the same set as applying its events one by one.
 *
 * @example
 * ```ts
 * import { EndpointSet } from "grpc-anchor/core"
 * const { set, skipped } = EndpointSet.applyBatch(EndpointSet.empty, "svc", [
 *   { _tag: "Put", key: "svc/a", value: '{"Op":0,"Addr":"10.0.0.1:9080","Metadata":null}' },
 *   { _tag: "Put", key: "svc/b", value: "garbage" },
 *   { _tag: "Put", key: "svc2/c", value: '{"Op":0,"Addr":"10.0.0.3:9080","Metadata":null}' } // not svc's
 * ])
 * EndpointSet.addresses(set) // ["10.0.0.1:9080"]
 * skipped.map((error) => error.problem) // ["InvalidJson"]; warnings is []
 * ```
 *
 * @category combinators
 * @since 0.2.0
 */
export const applyBatch = (
  set: EndpointSet,
  service: string,
  events: ReadonlyArray<Event>,
  options?: { readonly cap?: number }
): {
  readonly set: EndpointSet
  readonly skipped: ReadonlyArray<EtcdRecord.EtcdRecordError>
  readonly warnings: ReadonlyArray<EtcdRecord.EtcdRecordError>
} => {
  const cap = options?.cap ?? DEFAULT_CAP
  const skipped: Array<EtcdRecord.EtcdRecordError> = []
  const warnings: Array<EtcdRecord.EtcdRecordError> = []
  let records: Map<string, EtcdRecord.Endpoint> | undefined
  const writable = (): Map<string, EtcdRecord.Endpoint> => (records ??= new Map(set.records))
  for (const event of events) {
    if (!EtcdRecord.owns(service, event.key)) continue
    const current = records ?? set.records
    if (event._tag === "Delete") {
      if (current.has(event.key)) writable().delete(event.key)
      continue
    }
    const decoded = EtcdRecord.decode(event.key, event.value)
    if (Result.isFailure(decoded)) {
      if (current.has(event.key)) writable().delete(event.key)
      skipped.push(decoded.failure)
    } else if (current.has(event.key) || current.size < cap) {
      const before = current.get(event.key)
      const endpoint = decoded.success.endpoint
      if (decoded.success.warning !== undefined) warnings.push(decoded.success.warning)
      if (before === undefined || !EtcdRecord.sameEndpoint(before, endpoint)) writable().set(event.key, endpoint)
    } else {
      skipped.push(
        new EtcdRecord.EtcdRecordError({ key: event.key, problem: "OverCap", detail: `cap ${cap} reached` })
      )
    }
  }
  return { set: records === undefined ? set : { records }, skipped, warnings }
}

/**
 * The endpoints of a set, one per address: ordered by etcd key (byte order),
 * and for an address stored under several keys, the record with the smallest
 * key.
 *
 * @example
 * ```ts
 * import { EndpointSet, EtcdRecord } from "grpc-anchor/core"
 * const put = (key: string, address: string) =>
 *   ({ _tag: "Put", key, value: EtcdRecord.encode("svc", { address, metadata: key }).value }) as const
 * const { set } = EndpointSet.applyBatch(EndpointSet.empty, "svc", [put("svc/z", "h:1"), put("svc/a", "h:1")])
 * EndpointSet.endpoints(set) // [{ address: "h:1", metadata: "svc/a" }]: one per address, the smallest key's
 * ```
 *
 * @category getters
 * @since 0.2.0
 */
export const endpoints = (set: EndpointSet): ReadonlyArray<EtcdRecord.Endpoint> => {
  const keys = Array.from(set.records.keys()).sort(EtcdRecord.compareCodePoints)
  const seen = new Set<string>()
  const out: Array<EtcdRecord.Endpoint> = []
  for (const key of keys) {
    const endpoint = set.records.get(key)!
    if (seen.has(endpoint.address)) continue
    seen.add(endpoint.address)
    out.push(endpoint)
  }
  return out
}

/**
 * The unique addresses of a set, ordered by the etcd key (byte order) of the
 * first record that holds each.
 *
 * @example
 * ```ts
 * import { EndpointSet } from "grpc-anchor/core"
 * const { set } = EndpointSet.applyBatch(EndpointSet.empty, "svc", [
 *   { _tag: "Put", key: "svc/b", value: '{"Addr":"h:2"}' },
 *   { _tag: "Put", key: "svc/a", value: '{"Addr":"H:1"}' }
 * ])
 * EndpointSet.addresses(set) // ["h:1", "h:2"]
 * ```
 *
 * @category getters
 * @since 0.2.0
 */
export const addresses = (set: EndpointSet): ReadonlyArray<string> => endpoints(set).map((e) => e.address)

/**
 * The weighted addresses of discovered endpoints: each endpoint's own
 * connection count (from its record's metadata) when it has one, else
 * `fallback`, the target's count (`etcd:///svc#2..8` gives
 * `{ count: 2, maxCount: 8 }`). Feed the result to the policy (or to
 * `Subset.select` first, by address).
 *
 * @example
 * ```ts
 * import { EndpointSet } from "grpc-anchor/core"
 * EndpointSet.weighted(
 *   [
 *     { address: "10.0.0.1:9080", metadata: null },
 *     { address: "10.0.0.2:9080", metadata: { "grpc_anchor.connections": 4 }, connections: { count: 4, maxCount: 4 } }
 *   ],
 *   { count: 2, maxCount: 8 }
 * )
 * // [{ address: "10.0.0.1:9080", count: 2, maxCount: 8 }, { address: "10.0.0.2:9080", count: 4 }]
 * ```
 *
 * @category combinators
 * @since 0.2.0
 */
export const weighted = (
  endpoints: ReadonlyArray<EtcdRecord.Endpoint>,
  fallback: Target.CountRange
): ReadonlyArray<Expansion.Weighted> =>
  endpoints.map((endpoint) => Expansion.weighted(endpoint.address, endpoint.connections ?? fallback))
