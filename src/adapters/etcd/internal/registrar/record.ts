/**
 * The record a registration writes, checked from its options: the canonical
 * address, the key and the exact value (Go's `endpoints.Manager` format).
 * Internal to the Registrar.
 */
import * as Result from "effect/Result"
import * as Address from "../../../../core/Address.js"
import * as EtcdRecord from "../../../../core/EtcdRecord.js"
import type { RegistrarError, RegistrarOptions } from "../../Registrar.js"

/** Options that passed the checks: what every part of the registration works from. */
export interface Checked {
  readonly ttl: number
  /** The canonical address (see Address.format). */
  readonly address: string
  readonly key: string
  readonly value: string
}

/** Why options were refused: the fields of a `RegistrarError`. */
export type Invalid = Pick<RegistrarError, "reason" | "detail" | "cause">

/** Checks `options` and builds the record; the first problem found is the failure. */
export const check = (options: RegistrarOptions): Result.Result<Checked, Invalid> => {
  if (options.service.length === 0) return Result.fail({ reason: "InvalidService", detail: "the service name is empty" })
  const ttl = options.ttl ?? 10
  if (!Number.isInteger(ttl) || ttl < 1) {
    return Result.fail({ reason: "InvalidTtl", detail: `the TTL must be a whole number of seconds >= 1, got ${ttl}` })
  }
  const parsed = Address.parse(options.address)
  if (Result.isFailure(parsed)) return Result.fail({ reason: "InvalidAddress", detail: parsed.failure.message, cause: parsed.failure })
  const address = Address.format(parsed.success)
  let metadata = options.metadata
  if (options.connections !== undefined) {
    const withCount = EtcdRecord.withConnections(metadata, options.connections)
    if (Result.isFailure(withCount)) {
      return Result.fail({ reason: "InvalidConnections", detail: withCount.failure.message, cause: withCount.failure })
    }
    metadata = withCount.success
  }
  try {
    return Result.succeed({ ttl, address, ...EtcdRecord.encode(options.service, { address, metadata }) })
  } catch (cause) {
    return Result.fail({ reason: "InvalidMetadata", detail: `the metadata cannot be written as JSON (${String(cause)})`, cause })
  }
}
