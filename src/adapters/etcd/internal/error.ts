/**
 * The etcd adapters' error type and the one mapping from what a call to etcd
 * failed with (a gRPC status with etcd's message, a timeout) to it. Re-exported by the public `Etcd` module.
 */
import { status as Status } from "@grpc/grpc-js"
import * as Data from "effect/Data"

/**
 * What kind of failure an etcd call had:
 * - `Unavailable`: no member answered in time, the connection broke, no leader,
 *   a call timed out. Worth retrying.
 * - `Unauthenticated`: wrong or missing user/password, an expired token, or a
 *   TLS handshake that failed over a certificate (etcd refused the client
 *   certificate or got none; etcd's certificate is not signed by the CA given).
 * - `PermissionDenied`: the user may not read or write that key.
 * - `NotFound`: the lease (or user, role) does not exist, e.g. a lease that
 *   expired or was revoked.
 * - `Compacted`: the revision asked for has been compacted away (a watch that
 *   fell behind is cancelled with this).
 * - `InvalidArgument`: etcd rejected the request (or the options were wrong,
 *   e.g. an unreadable TLS file).
 * - `Closed`: the client was already closed.
 * - `Unknown`: anything else.
 *
 * @example
 * ```ts
 * import { Etcd } from "grpc-anchor"
 * const retryable = (reason: Etcd.EtcdErrorReason) => reason === "Unavailable" || reason === "NotFound"
 * ```
 *
 * @since 0.1.0
 */
export type EtcdErrorReason =
  | "Unavailable"
  | "Unauthenticated"
  | "PermissionDenied"
  | "NotFound"
  | "Compacted"
  | "InvalidArgument"
  | "Closed"
  | "Unknown"

/**
 * A failed etcd operation. `operation` names what was attempted (e.g.
 * `"list svc/"`), `cause` is the original error (a gRPC `ServiceError`). The message never
 * contains the configured password.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd } from "grpc-anchor"
 * const program = Effect.gen(function* () {
 *   const etcd = yield* Etcd.Etcd
 *   return yield* etcd.use("get x", (client) => client.get("x").string())
 * }).pipe(Effect.catchTag("EtcdError", (error) => Effect.logWarning(error.reason, error.message)))
 * ```
 *
 * @since 0.1.0
 */
export class EtcdError extends Data.TaggedError("EtcdError")<{
  readonly reason: EtcdErrorReason
  readonly operation: string
  readonly cause: unknown
  /** The cause's text, already scrubbed of secrets. */
  readonly detail: string
}> {
  override get message(): string {
    return `etcd ${this.operation}: ${this.reason}${this.detail.length > 0 ? `: ${this.detail}` : ""}`
  }
}

/**
 * Whether retrying (possibly with a new lease) can fix the error: everything
 * but `Unauthenticated`, `PermissionDenied`, `InvalidArgument` and `Closed`,
 * which need a person (or a new client) first.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd } from "grpc-anchor"
 * declare const call: Effect.Effect<string, Etcd.EtcdError>
 * const retried = call.pipe(Effect.retry({ schedule: Etcd.backoff("100 millis", "2 seconds"), while: Etcd.isTransient }))
 * ```
 *
 * @since 0.1.0
 */
export const isTransient = (error: EtcdError): boolean =>
  error.reason !== "Unauthenticated" &&
  error.reason !== "PermissionDenied" &&
  error.reason !== "InvalidArgument" &&
  error.reason !== "Closed"

/** The text of any thrown value. */
export const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/**
 * A TLS handshake that failed over a certificate: a configuration problem
 * that retrying cannot fix, so it must not be retried forever in silence.
 * grpc-js reports it as UNAVAILABLE with OpenSSL's or Node's text, e.g.
 * "sslv3 alert bad certificate" (etcd refused our certificate) or "unable to
 * verify the first certificate" (we do not trust etcd's).
 */
export const tlsRefusal = (message: string): string | undefined => {
  if (/alert (bad certificate|certificate required|unknown ca|certificate unknown|certificate expired|certificate revoked|unsupported certificate)/i.test(message)) {
    return "TLS handshake failed: etcd refused the client certificate (none given, or not signed by a CA etcd trusts)"
  }
  if (
    /unable to verify the first certificate|self[- ]signed certificate|unable to get (local )?issuer certificate|certificate has expired|certificate is not yet valid|does not match certificate's altnames|ERR_TLS_CERT_ALTNAME_INVALID/i.test(
      message
    )
  ) {
    return "TLS handshake failed: etcd's certificate is not trusted (not signed by the CA given, expired, or for another name)"
  }
  return undefined
}

/** A gRPC status code, when `cause` carries one. */
export const grpcCode = (cause: unknown): number | undefined => {
  const code = typeof cause === "object" && cause !== null ? (cause as { code?: unknown }).code : undefined
  return typeof code === "number" ? code : undefined
}

/**
 * etcd's messages for a member that cannot serve right now while another
 * may (no leader, an election, a timed-out proposal, a stopping server).
 */
const MEMBER_TROUBLE = /etcdserver: (request timed out|leader changed|no leader|not capable|server stopped|too many requests|unhealthy cluster)|no answer within/

/**
 * Whether another member may answer where this one failed: the member is
 * unreachable, stopped answering, has no leader, or is busy. The client then
 * marks it suspect and tries the next member.
 */
export const isMemberFault = (cause: unknown): boolean => {
  const code = grpcCode(cause)
  const message = messageOf(cause)
  if (tlsRefusal(message) !== undefined) return false
  return (
    code === Status.UNAVAILABLE ||
    code === Status.DEADLINE_EXCEEDED ||
    code === Status.RESOURCE_EXHAUSTED ||
    code === Status.INTERNAL ||
    code === Status.CANCELLED ||
    MEMBER_TROUBLE.test(message)
  )
}

/**
 * Whether etcd refused the auth token the call carried: it expired or etcd
 * forgot it (a restart), or the auth store changed since it was issued
 * (a JWT token). Authenticating again fixes it (clientv3's `shouldRefreshToken`).
 */
export const isStaleToken = (cause: unknown): boolean =>
  /etcdserver: (invalid auth token|revision of auth store is old)/.test(messageOf(cause))

/** The reason of an error that is not a TLS refusal; `message` is its text. */
const reasonOf = (cause: unknown, message: string): EtcdErrorReason => {
  // OpenSSL refusing a TLS key or certificate while the client is built
  // (e.g. a certificate given as the key): the options are wrong.
  if (cause instanceof Error && String((cause as { code?: unknown }).code).startsWith("ERR_OSSL")) return "InvalidArgument"
  if (/client (is )?closed/i.test(message) && grpcCode(cause) === undefined) return "Closed"
  if (message.includes("has been compacted")) return "Compacted"
  if (/etcdserver: (authentication failed|invalid auth token|user name is empty|revision of auth store is old)/.test(message)) {
    return "Unauthenticated"
  }
  if (/etcdserver: permission denied/.test(message)) return "PermissionDenied"
  if (/etcdserver: (requested lease not found|user name not found|role name not found)/.test(message)) return "NotFound"
  if (isMemberFault(cause)) return "Unavailable"
  switch (grpcCode(cause)) {
    case Status.UNAUTHENTICATED:
      return "Unauthenticated"
    case Status.PERMISSION_DENIED:
      return "PermissionDenied"
    case Status.NOT_FOUND:
      return "NotFound"
    case Status.INVALID_ARGUMENT:
    case Status.OUT_OF_RANGE:
    case Status.FAILED_PRECONDITION:
      return "InvalidArgument"
  }
  return "Unknown"
}

const scrub = (text: string, secrets: ReadonlyArray<string>): string =>
  secrets.reduce((acc, secret) => (secret.length > 0 ? acc.split(secret).join("<redacted>") : acc), text)

/**
 * The one mapping from what an etcd call failed with (or a timeout) to an
 * {@link EtcdError}. `secrets` (the password) are cut out of the message.
 *
 * @example
 * ```ts
 * import { Etcd } from "grpc-anchor"
 * const error = Etcd.toEtcdError(new Error("etcdserver: request timed out"), "put x")
 * error.reason // "Unavailable"
 * ```
 *
 * @since 0.1.0
 */
export const toEtcdError = (cause: unknown, operation: string, secrets: ReadonlyArray<string> = []): EtcdError => {
  if (cause instanceof EtcdError) return cause
  const message = messageOf(cause)
  const refusal = tlsRefusal(message)
  return new EtcdError({
    reason: refusal === undefined ? reasonOf(cause, message) : "Unauthenticated",
    operation,
    cause,
    // Scrubbed before it is cut, so that no part of a secret crossing the cut survives.
    detail: scrub(`${refusal === undefined ? "" : `${refusal}; `}${message}`, secrets).slice(0, 500)
  })
}
