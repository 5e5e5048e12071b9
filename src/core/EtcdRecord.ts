/**
 * The etcd record codec of etcd's Go naming package
 * (`go.etcd.io/etcd/client/v3/naming/endpoints`): the key format and the
 * encoding and decoding of the value. The set of endpoints a service's
 * records make is {@link EndpointSet}'s concern.
 *
 * A backend `10.0.0.1:9080` of service `my-service` is the key
 * `my-service/10.0.0.1:9080` with the value
 * `{"Op":0,"Addr":"10.0.0.1:9080","Metadata":null}`, byte for byte what Go's
 * `endpoints.Manager.AddEndpoint` writes (it marshals
 * `struct{ Op uint8; Addr string; Metadata interface{} }` with `encoding/json`).
 *
 * Decoding is an `effect/Schema` (pure and synchronous: no services, no I/O) that follows Go's
 * `json.Unmarshal` where it matters for interoperation
 * (extra fields are ignored, field names match case-insensitively, a missing
 * `Op` is 0, a missing `Metadata` is null) and is stricter where Go's reader
 * would hand garbage to gRPC:
 *
 * - `Addr` must parse with {@link Address.parse}; the endpoint keeps its
 *   canonical text, so `[0:0::1]:80` and `[::1]:80` are one backend.
 * - `Op` must be 0 (Add). Go's watcher ignores `Op` on a put and treats every
 *   decodable value as Add, but no Go writer ever stores `Op: 1` (Delete is an
 *   etcd delete of the key). A stored `"Op":1` can only mean a writer that
 *   wanted the endpoint gone, so it is *not* an endpoint here: it is reported
 *   as problem `"DeleteOp"` and, like any bad value, removes whatever good
 *   record that key held. Any other `Op` is `"InvalidOp"`.
 *
 * **Per-endpoint connection counts.** A record whose `Metadata` is a JSON
 * object with the key {@link CONNECTIONS_KEY} (`"grpc_anchor.connections"`)
 * asks for its own number of connections: a whole number (`4`, or `"4"`) or
 * a count range (`"2..8"`), with the grammar and limits of a target's `#N`
 * (`Target.parseCount`). It overrides the `#N` of `etcd:///svc#N` for that
 * endpoint only ({@link Endpoint}'s `connections`). A bad value does not lose
 * the record: the endpoint is kept with the target's count, and the record
 * carries a `warning` (problem `"InvalidConnections"`) to log.
 *
 * **Go interop caveat.** Go's etcd resolver (`go.etcd.io/etcd/client/v3/naming/resolver`)
 * puts `Metadata` into `resolver.Address.Metadata`, and with `round_robin`
 * grpc-go hashes addresses: any record whose `Metadata` is a JSON object
 * (which Go decodes to `map[string]interface{}`) crashes a Go client with
 * `hash of unhashable type map[string]interface {}` (etcd-io/etcd#19700). In a
 * fleet with Go clients, leave per-endpoint counts (and any object metadata)
 * off; a Go client on a service name containing `/` also needs
 * `grpc.WithAuthority`.
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * EtcdRecord.encode("svc", { address: "10.0.0.1:9080", metadata: null })
 * // { key: "svc/10.0.0.1:9080", value: '{"Op":0,"Addr":"10.0.0.1:9080","Metadata":null}' }
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Address from "./Address.js"
import * as decoding from "./etcdRecord/decoding.js"
import { compareCodePoints as codePointOrder, goJson, goQuote } from "./etcdRecord/goJson.js"
import { describe, kindOf, shorten } from "./etcdRecord/problems.js"
import * as Target from "./Target.js"

/**
 * The metadata key of a per-endpoint connection count (see the module doc):
 * `{"grpc_anchor.connections": 4}` or `{"grpc_anchor.connections": "2..8"}`.
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * const metadata = { [EtcdRecord.CONNECTIONS_KEY]: "2..8", zone: "a" }
 * ```
 *
 * @category constants
 * @since 0.2.0
 */
export const CONNECTIONS_KEY = decoding.CONNECTIONS_KEY

/**
 * One backend of a service: its canonical address text (as
 * {@link Address.format} writes it), the record's `Metadata` (JSON data, or
 * null), and, when the metadata asks for one, its own connection count
 * (`connections`, from {@link CONNECTIONS_KEY}; absent means "use the
 * target's `#N`"). Given to {@link encode}, `connections` is written into the
 * metadata.
 *
 * @example
 * ```ts
 * import type { EtcdRecord } from "grpc-anchor/core"
 * const endpoint: EtcdRecord.Endpoint = { address: "10.0.0.7:9080", metadata: { serverName: "billing.internal" } }
 * const adaptive: EtcdRecord.Endpoint = {
 *   address: "10.0.0.8:9080",
 *   metadata: { "grpc_anchor.connections": "2..8" },
 *   connections: { count: 2, maxCount: 8 }
 * }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Endpoint {
  readonly address: string
  readonly metadata: unknown
  readonly connections?: Target.CountRange
}

/**
 * A decoded record: the etcd key it was stored under and its endpoint, and
 * `warning` when part of it was ignored (a bad per-endpoint connection count,
 * problem `"InvalidConnections"`): the endpoint is still good, the warning is
 * for the log.
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * const record: EtcdRecord.Record = EtcdRecord.decodeUnsafe("svc/a", '{"Op":0,"Addr":"h:1","Metadata":null}')
 * // { key: "svc/a", endpoint: { address: "h:1", metadata: null } }
 * EtcdRecord.decodeUnsafe("svc/b", '{"Addr":"h:2","Metadata":{"grpc_anchor.connections":0}}').warning?.problem
 * // "InvalidConnections"
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Record {
  readonly key: string
  readonly endpoint: Endpoint
  readonly warning?: EtcdRecordError
}

/**
 * Why a stored value is not an endpoint (`OverCap` comes from
 * `EndpointSet.applyBatch`, the others from {@link decode}), or, for
 * `InvalidConnections`, what part of a good record was ignored (a
 * {@link Record}'s `warning`).
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { EtcdRecord } from "grpc-anchor/core"
 * const result = EtcdRecord.decode("svc/a", '{"Op":1,"Addr":"h:1"}')
 * Result.isFailure(result) && result.failure.problem // "DeleteOp"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export type RecordProblem =
  | "InvalidJson"
  | "NotAnObject"
  | "InvalidOp"
  | "DeleteOp"
  | "MissingAddr"
  | "InvalidAddr"
  | "OverCap"
  | "InvalidConnections"

/**
 * A stored value that is not an endpoint. `key` is the etcd key, `detail` says
 * what exactly was wrong (never the whole value).
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * try {
 *   EtcdRecord.decodeUnsafe("svc/a", '{"Op":0,"Addr":"10.0.0.1"}')
 * } catch (error) {
 *   // EtcdRecordError, problem "InvalidAddr", reason "Addr is not a valid host:port address",
 *   // message 'etcd record "svc/a": Addr is not a valid host:port address (the address has no port; ...)'
 * }
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class EtcdRecordError extends Data.TaggedError("EtcdRecordError")<{
  readonly key: string
  readonly problem: RecordProblem
  readonly detail: string
}> {
  override get message(): string {
    return `etcd record ${JSON.stringify(shorten(this.key))}: ${describe[this.problem]}${
      this.detail.length > 0 ? ` (${this.detail})` : ""
    }`
  }

  /** The explanation without the key, for callers that show their own context. */
  get reason(): string {
    return describe[this.problem]
  }
}

/**
 * The key prefix of a service's records: `${service}/`. Watching this prefix
 * (not `service` alone) is what keeps `svc` from seeing `svc2/...`.
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * EtcdRecord.prefix("prod/billing") // "prod/billing/"
 * ```
 *
 * @category keys
 * @since 0.1.0
 */
export const prefix = (service: string): string => `${service}/`

/**
 * Whether `key` is a record of `service`: it starts with `${service}/` and has
 * something after the slash.
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * EtcdRecord.owns("svc", "svc/10.0.0.1:80") // true
 * EtcdRecord.owns("svc", "svc2/10.0.0.1:80") // false
 * EtcdRecord.owns("svc", "svc/") // false
 * ```
 *
 * @category keys
 * @since 0.1.0
 */
export const owns = (service: string, key: string): boolean => {
  const p = prefix(service)
  return key.length > p.length && key.startsWith(p)
}

/**
 * The key Go's convention (and the Registrar) uses for an address:
 * `${service}/${address}`.
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * EtcdRecord.keyOf("billing", "[::1]:9080") // "billing/[::1]:9080"
 * ```
 *
 * @category keys
 * @since 0.1.0
 */
export const keyOf = (service: string, address: string): string => `${prefix(service)}${address}`
/**
 * Orders strings as Go orders map keys and etcd orders keys: by their UTF-8
 * bytes, which is code point order (not JavaScript's UTF-16 order).
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * ["\u{1F600}", "\uFFFF"].sort(EtcdRecord.compareCodePoints) // ["\uFFFF", "\u{1F600}"]; .sort() alone gives the reverse
 * ```
 *
 * @category ordering
 * @since 0.1.0
 */
export const compareCodePoints: (a: string, b: string) => number = codePointOrder

/**
 * The key and value Go's endpoints manager writes for `endpoint`:
 * key `${service}/${address}`, value `{"Op":0,"Addr":...,"Metadata":...}`.
 * `endpoint.address` is written as given (pass canonical
 * {@link Address.format} text, as {@link decode} returns). Metadata that is
 * JSON data (objects, arrays, strings, finite numbers, booleans, null) is
 * written byte-exact with Go's `json.Marshal`; undefined metadata is null.
 * With `endpoint.connections`, the count is written into the metadata under
 * {@link CONNECTIONS_KEY} (see {@link withConnections}). Throws a TypeError
 * when the metadata contains a cycle, or has connections but is not an
 * object or null (check with {@link withConnections} first for a typed error).
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * EtcdRecord.encode("billing", { address: "10.0.0.7:9080", metadata: { zone: "b", serverName: "billing.internal" } })
 * // { key: "billing/10.0.0.7:9080",
 * //   value: '{"Op":0,"Addr":"10.0.0.7:9080","Metadata":{"serverName":"billing.internal","zone":"b"}}' }
 * EtcdRecord.encode("billing", { address: "10.0.0.8:9080", metadata: null, connections: { count: 2, maxCount: 8 } }).value
 * // '{"Op":0,"Addr":"10.0.0.8:9080","Metadata":{"grpc_anchor.connections":"2..8"}}'
 * ```
 *
 * @category encoding
 * @since 0.1.0
 */
export const encode = (service: string, endpoint: Endpoint): { readonly key: string; readonly value: string } => {
  const metadata =
    endpoint.connections === undefined
      ? endpoint.metadata
      : Result.getOrThrowWith(withConnections(endpoint.metadata, endpoint.connections), (error) => new TypeError(error.message))
  return {
    key: keyOf(service, endpoint.address),
    value: `{"Op":0,"Addr":${goQuote(endpoint.address)},"Metadata":${goJson(metadata, new Set()) ?? "null"}}`
  }
}
/**
 * Metadata that asks for a connection count could not be written: the
 * metadata is not an object (nor null), or the count is out of range.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { EtcdRecord } from "grpc-anchor/core"
 * const result = EtcdRecord.withConnections("zone-a", { count: 2, maxCount: 8 })
 * Result.isFailure(result) && result.failure.message
 * // 'cannot set "grpc_anchor.connections": the metadata is a string, not a JSON object or null'
 * ```
 *
 * @category errors
 * @since 0.2.0
 */
export class MetadataError extends Data.TaggedError("MetadataError")<{ readonly reason: string }> {
  override get message(): string {
    return `cannot set ${JSON.stringify(CONNECTIONS_KEY)}: ${this.reason}`
  }
}

/**
 * The metadata with a per-endpoint connection count set under
 * {@link CONNECTIONS_KEY}: a number for a fixed count, `"min..max"` for a
 * range. `metadata` must be null/undefined (gives a new object) or a JSON
 * object (copied, its other keys kept); `connections` is a count range, or
 * its text (`4`, `"4"`, `"2..8"`) as a flag gives it. This is what
 * `Registrar`, `registerEndpoint` and `grpc-anchor register` write for a
 * `connections` option.
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * EtcdRecord.withConnections({ zone: "a" }, "2..8") // Success({ zone: "a", "grpc_anchor.connections": "2..8" })
 * EtcdRecord.withConnections(null, { count: 4, maxCount: 4 }) // Success({ "grpc_anchor.connections": 4 })
 * EtcdRecord.withConnections(null, "0") // Failure(MetadataError: the count is 0; ...)
 * ```
 *
 * @category combinators
 * @since 0.2.0
 */
export const withConnections = (
  metadata: unknown,
  connections: Target.CountRange | number | string
): Result.Result<{ readonly [key: string]: unknown }, MetadataError> => {
  let range: Target.CountRange
  if (typeof connections === "object") {
    const checked = Target.parseCount(Target.formatCount(connections))
    if (Result.isFailure(checked) || checked.success.count !== connections.count || checked.success.maxCount !== connections.maxCount) {
      return Result.fail(new MetadataError({ reason: `${JSON.stringify(connections)} is not a count range with 1 <= count <= maxCount <= ${Target.MAX_COUNT}` }))
    }
    range = checked.success
  } else {
    const parsed = Target.parseCount(String(connections))
    if (Result.isFailure(parsed)) return Result.fail(new MetadataError({ reason: parsed.failure.message }))
    range = parsed.success
  }
  if (metadata !== null && metadata !== undefined && !decoding.isPlainObject(metadata)) {
    return Result.fail(new MetadataError({ reason: `the metadata is ${kindOf(metadata)}, not a JSON object or null` }))
  }
  const value = range.count === range.maxCount ? range.count : Target.formatCount(range)
  return Result.succeed({ ...(metadata ?? {}), [CONNECTIONS_KEY]: value })
}
/**
 * Decodes the value stored under `key`, with `effect/Schema`: JSON, then
 * Go's field matching (extra fields ignored, names matched ignoring case, the
 * last match wins); `Op` must be 0, null or absent; `Addr` must parse with
 * {@link Address.parse} and comes back in canonical form; `Metadata` is any
 * JSON, null when absent. A failure names its {@link RecordProblem}.
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * EtcdRecord.decode("svc/a", '{"Op":0,"Addr":"[0:0::1]:80","Metadata":{"zone":"a"}}')
 * // Success({ key: "svc/a", endpoint: { address: "[::1]:80", metadata: { zone: "a" } } })
 * EtcdRecord.decode("svc/b", '{"Op":0,"Addr":"10.0.0.1"}') // Failure(EtcdRecordError, problem "InvalidAddr")
 * ```
 *
 * @category decoding
 * @since 0.1.0
 */
export const decode = (key: string, value: string): Result.Result<Record, EtcdRecordError> =>
  decoding.decodeRecord(key, value, (problem, detail) => new EtcdRecordError({ key, problem, detail }))

/**
 * Like {@link decode}, but throws the {@link EtcdRecordError}.
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * EtcdRecord.decodeUnsafe("svc/a", '{"addr":"H:1"}') // { key: "svc/a", endpoint: { address: "h:1", metadata: null } }
 * EtcdRecord.decodeUnsafe("svc/a", "nope") // throws EtcdRecordError (InvalidJson)
 * ```
 *
 * @category decoding
 * @since 0.3.0
 */
export const decodeUnsafe = (key: string, value: string): Record =>
  Result.getOrThrowWith(decode(key, value), (error) => error)

/**
 * Two endpoints are the same when their addresses are equal and their metadata
 * encode to the same JSON (so key order inside the metadata does not matter).
 *
 * @example
 * ```ts
 * import { EtcdRecord } from "grpc-anchor/core"
 * EtcdRecord.sameEndpoint({ address: "h:1", metadata: { a: 1, b: 2 } }, { address: "h:1", metadata: { b: 2, a: 1 } }) // true
 * EtcdRecord.sameEndpoint({ address: "h:1", metadata: null }, { address: "h:2", metadata: null }) // false
 * ```
 *
 * @category equivalence
 * @since 0.1.0
 */
export const sameEndpoint = (a: Endpoint, b: Endpoint): boolean =>
  a.address === b.address && (a.metadata === b.metadata || goJson(a.metadata, new Set()) === goJson(b.metadata, new Set()))
