/**
 * Decoding a stored value with `effect/Schema` (see `EtcdRecord.decode`):
 * JSON, Go's field matching, the `Addr` and `Op` checks, and a per-endpoint
 * connection count. Pure and synchronous; the caller builds the errors.
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as SchemaIssue from "effect/SchemaIssue"
import * as SchemaTransformation from "effect/SchemaTransformation"
import * as Address from "../Address.js"
import type { EtcdRecordError, Record, RecordProblem } from "../EtcdRecord.js"
import * as Target from "../Target.js"
import { describeCount, kindOf, shorten } from "./problems.js"

/** See `EtcdRecord.CONNECTIONS_KEY`. */
export const CONNECTIONS_KEY = "grpc_anchor.connections"

/** Whether a JSON value is an object (not null, not an array). */
export const isPlainObject = (value: unknown): value is { readonly [key: string]: unknown } =>
  typeof value === "object" && value !== null && !Array.isArray(value)
/** The fields of Go's `internal.Update`, in the order Go's decoder checks them here. */
const GO_FIELDS = ["Op", "Addr", "Metadata"] as const

/**
 * Go's field matching: for every key of the object in order, a key equal to
 * the field name, or else equal ignoring case, sets the field; the last such
 * key wins. Other keys are dropped (Go ignores unknown fields).
 */
const goFields = (obj: { readonly [key: string]: unknown }): { readonly [key: string]: unknown } => {
  const out: { [key: string]: unknown } = {}
  const keys = Object.keys(obj)
  for (const name of GO_FIELDS) {
    const lower = name.toLowerCase()
    for (const key of keys) if (key === name || key.toLowerCase() === lower) out[name] = obj[key]
  }
  return out
}

/** `Addr`: a string that {@link Address.parse} accepts, decoded to its canonical text. */
const Addr = Schema.String.check(
  Schema.makeFilter<string>((text) => {
    const parsed = Address.parse(text)
    // The reason only: the whole message would quote the input, which can be megabytes.
    return Result.isSuccess(parsed) ? undefined : parsed.failure.reason
  })
).pipe(
  Schema.decodeTo(
    Schema.String,
    SchemaTransformation.transform({
      decode: (text: string) => Address.format(Address.parseUnsafe(text)),
      encode: (text: string) => text
    })
  )
)

/**
 * A JSON object, read as Go's `json.Unmarshal` reads it into
 * `struct{ Op uint8; Addr string; Metadata interface{} }`, but stricter: `Op`
 * must be 0 (or null or absent), `Addr` must be a `host:port` address.
 */
const GoFields = Schema.Struct({
  Op: Schema.optionalKey(Schema.NullOr(Schema.Literal(0))),
  Addr,
  Metadata: Schema.optionalKey(Schema.Unknown)
})

const GoUpdate = Schema.Record(Schema.String, Schema.Unknown).pipe(
  Schema.decodeTo(
    GoFields,
    SchemaTransformation.transform({
      // Typed as GoFields' input because GoFields checks it next: the fields
      // are only picked out here, not validated.
      decode: (obj) => goFields(obj) as typeof GoFields.Encoded,
      encode: (fields) => fields
    })
  )
)

/**
 * A per-endpoint connection count: a JSON number or string that
 * `Target.parseCount` accepts (`4`, `"4"`, `"2..8"`), decoded to its range.
 */
const Connections = Schema.Union([Schema.Number, Schema.String]).check(
  Schema.makeFilter<number | string>((value) => {
    const parsed = Target.parseCount(String(value))
    return Result.isSuccess(parsed) ? undefined : parsed.failure.message
  })
).pipe(
  Schema.decodeTo(
    Schema.Struct({ count: Schema.Number, maxCount: Schema.Number }),
    SchemaTransformation.transform<Target.CountRange, number | string>({
      decode: (value) => Target.parseCountUnsafe(String(value)),
      encode: (range) => Target.formatCount(range)
    })
  )
)

const decodeConnections = Schema.decodeUnknownResult(Connections)

const decodeJson = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))
const decodeUpdate = Schema.decodeUnknownResult(GoUpdate)

/** The field a failed {@link GoUpdate} decoding points at (the first one), if any. */
const failedField = (issue: SchemaIssue.Issue): PropertyKey | undefined => {
  switch (issue._tag) {
    case "Pointer":
      return issue.path[0]
    case "Encoding":
    case "Filter":
      return failedField(issue.issue)
    case "Composite":
    case "AnyOf":
      for (const inner of issue.issues) {
        const found = failedField(inner)
        if (found !== undefined) return found
      }
      return undefined
    default:
      return undefined
  }
}
/** Builds the error for `problem` of the record being decoded. */
export type MakeError = (problem: RecordProblem, detail: string) => EtcdRecordError

/** Names the problem of a JSON value that {@link GoUpdate} rejected. */
const problemOf = (json: unknown, issue: SchemaIssue.Issue, error: MakeError): Result.Result<never, EtcdRecordError> => {
  const fail = (problem: RecordProblem, detail: string) => Result.fail(error(problem, detail))
  const field = failedField(issue)
  if (field === undefined || typeof json !== "object" || json === null) return fail("NotAnObject", kindOf(json))
  const fields = goFields(json as { readonly [key: string]: unknown })
  if (field === "Op") {
    return fields["Op"] === 1
      ? fail("DeleteOp", "Op 1")
      : fail("InvalidOp", `Op ${shorten(JSON.stringify(fields["Op"]))}`)
  }
  const addr = fields["Addr"]
  if (typeof addr !== "string") {
    return fail("MissingAddr", addr === undefined ? "no Addr field" : `Addr is ${shorten(JSON.stringify(addr))}`)
  }
  const parsed = Address.parse(addr)
  return fail("InvalidAddr", Result.isFailure(parsed) ? shorten(parsed.failure.message) : shorten(addr))
}

/** The value stored under `key` as a record (see `EtcdRecord.decode`). */
export const decodeRecord = (key: string, value: string, error: MakeError): Result.Result<Record, EtcdRecordError> => {
  const json = decodeJson(value)
  if (Result.isFailure(json)) {
    const detail = value.length === 0 ? "empty" : `${value.length} characters, starting ${shorten(JSON.stringify(value.slice(0, 40)))}`
    return Result.fail(error("InvalidJson", detail))
  }
  const update = decodeUpdate(json.success)
  if (Result.isFailure(update)) return problemOf(json.success, update.failure.issue, error)
  const metadata = update.success.Metadata === undefined ? null : update.success.Metadata
  const address = update.success.Addr
  if (!isPlainObject(metadata) || !Object.hasOwn(metadata, CONNECTIONS_KEY)) {
    return Result.succeed({ key, endpoint: { address, metadata } })
  }
  const raw = metadata[CONNECTIONS_KEY]
  const connections = decodeConnections(raw)
  if (Result.isSuccess(connections)) return Result.succeed({ key, endpoint: { address, metadata, connections: connections.success } })
  const parsed = typeof raw === "number" || typeof raw === "string" ? Target.parseCount(String(raw)) : undefined
  const detail =
    parsed !== undefined && Result.isFailure(parsed)
      ? `${shorten(JSON.stringify(raw))}: ${describeCount(parsed.failure)}`
      : `${shorten(JSON.stringify(raw) ?? String(raw))} is ${kindOf(raw)}`
  return Result.succeed({ key, endpoint: { address, metadata }, warning: error("InvalidConnections", detail) })
}
