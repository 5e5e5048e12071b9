/**
 * The etcd client as an Effect service: one `etcd3` client (microsoft/etcd3)
 * owned by a scope, unary calls bounded by a deadline, and every etcd3 error
 * mapped once, here, to an {@link EtcdError} with a `reason`.
 *
 * @example
 * ```ts
 * import { Etcd } from "grpc-anchor"
 * const EtcdLive = Etcd.layer({ hosts: ["127.0.0.1:2379"] })
 * // or from ETCD_ENDPOINTS, ETCD_CACERT, ETCD_CERT, ETCD_KEY, ETCD_USERNAME, ETCD_PASSWORD:
 * const EtcdFromEnv = Etcd.layerConfig(Etcd.config)
 * ```
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  EtcdRoleNotFoundError,
  EtcdUserNotFoundError,
  EtcdWatchStreamEnded,
  Etcd3,
  GRPCFailedPreconditionError,
  GRPCGenericError,
  GRPCInvalidArgumentError,
  GRPCNotFoundError,
  GRPCOutOfRangeError,
  GRPCUnauthenticatedError,
  type IOptions,
  isRecoverableError
} from "etcd3"

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

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
 * `"list svc/"`), `cause` is etcd3's original error. The message never
 * contains the configured password.
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
 * @since 0.1.0
 */
export const isTransient = (error: EtcdError): boolean =>
  error.reason !== "Unauthenticated" &&
  error.reason !== "PermissionDenied" &&
  error.reason !== "InvalidArgument" &&
  error.reason !== "Closed"

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/**
 * A TLS handshake that failed over a certificate: a configuration problem
 * that retrying cannot fix, so it must not be retried forever in silence.
 * grpc-js reports it as UNAVAILABLE with OpenSSL's or Node's text, e.g.
 * "sslv3 alert bad certificate" (etcd refused our certificate) or "unable to
 * verify the first certificate" (we do not trust etcd's).
 */
const tlsRefusal = (message: string): string | undefined => {
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

/** The reason of an error that is not a TLS refusal; `message` is its text. */
const reasonOf = (cause: unknown, message: string): EtcdErrorReason => {
  // OpenSSL refusing a TLS key or certificate while the client is built
  // (e.g. a certificate given as the key): the options are wrong.
  if (cause instanceof Error && String((cause as { code?: unknown }).code).startsWith("ERR_OSSL")) return "InvalidArgument"
  if (cause instanceof EtcdLeaseInvalidError) return "NotFound"
  if (
    cause instanceof EtcdAuthenticationFailedError ||
    cause instanceof EtcdInvalidAuthTokenError ||
    cause instanceof GRPCUnauthenticatedError
  ) {
    return "Unauthenticated"
  }
  if (cause instanceof EtcdPermissionDeniedError) return "PermissionDenied"
  if (cause instanceof ClientClosedError) return "Closed"
  // etcd 3.4 cancels a watch whose start revision was compacted with an empty
  // cancel_reason; etcd3 turns that into "Watcher canceled: ". A range at a
  // compacted revision says so in the message.
  if (message.includes("has been compacted") || message.trim() === "Watcher canceled:") return "Compacted"
  if (cause instanceof GRPCNotFoundError || cause instanceof EtcdUserNotFoundError || cause instanceof EtcdRoleNotFoundError) {
    return "NotFound"
  }
  if (
    cause instanceof GRPCInvalidArgumentError ||
    cause instanceof GRPCOutOfRangeError ||
    cause instanceof GRPCFailedPreconditionError
  ) {
    return "InvalidArgument"
  }
  if (
    (cause instanceof Error && isRecoverableError(cause)) ||
    cause instanceof EtcdWatchStreamEnded ||
    cause instanceof GRPCGenericError ||
    // etcd3's per-host circuit breaker (cockatiel) refusing calls for a while
    // after failures: the member is down.
    (cause instanceof Error && (cause as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true) ||
    (cause instanceof Error && cause.name === "TimeoutException") ||
    /etcdserver: (request timed out|leader changed|no leader|too many requests|server stopped)/.test(message)
  ) {
    return "Unavailable"
  }
  return "Unknown"
}

const scrub = (text: string, secrets: ReadonlyArray<string>): string =>
  secrets.reduce((acc, secret) => (secret.length > 0 ? acc.split(secret).join("<redacted>") : acc), text)

/**
 * The one mapping from whatever etcd3 (or a timeout) threw to an
 * {@link EtcdError}. `secrets` (the password) are cut out of the message.
 *
 * @since 0.1.0
 */
export const toEtcdError = (cause: unknown, operation: string, secrets: ReadonlyArray<string> = []): EtcdError => {
  if (cause instanceof EtcdError) return cause
  const message = messageOf(cause)
  const refusal = tlsRefusal(message)
  const className = cause instanceof Error && cause.constructor.name !== "Error" ? `${cause.constructor.name}: ` : ""
  return new EtcdError({
    reason: refusal === undefined ? reasonOf(cause, message) : "Unauthenticated",
    operation,
    cause,
    // Scrubbed before it is cut, so that no part of a secret crossing the cut survives.
    detail: scrub(`${refusal === undefined ? "" : `${refusal}; `}${className}${message}`, secrets).slice(0, 500)
  })
}

// ---------------------------------------------------------------------------
// Retry schedules
// ---------------------------------------------------------------------------

/**
 * The retry schedule of the etcd adapters: exponential from `base`, each
 * delay capped at `cap`, jittered (x0.8..1.2), forever. Callers bound it
 * themselves (a scope, a `while`).
 *
 * @since 0.1.0
 */
export const backoff = (base: Duration.DurationInput, cap: Duration.DurationInput): Schedule.Schedule<Duration.Duration> =>
  Schedule.exponential(base, 2).pipe(
    Schedule.union(Schedule.spaced(cap)),
    Schedule.jittered,
    Schedule.map(([delay]) => delay)
  )

// ---------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------

/**
 * How to reach etcd.
 *
 * @since 0.1.0
 */
export interface EtcdOptions {
  /** `host:port` entries, optionally with `http://`/`https://` (https means TLS). */
  readonly hosts: string | ReadonlyArray<string>
  readonly auth?: { readonly username: string; readonly password: Redacted.Redacted<string> }
  /** PEM files: CA bundle, and for mutual TLS a client certificate and key. */
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string }
  /** Deadline of one unary call (default 5 seconds). Streams have none. */
  readonly callTimeout?: Duration.DurationInput
  /** Connect timeout of a member (default 5 seconds). */
  readonly dialTimeout?: Duration.DurationInput
}

/**
 * The Etcd service.
 *
 * @since 0.1.0
 */
export declare namespace Etcd {
  /**
   * @since 0.1.0
   */
  export interface Service {
    /** The etcd3 client, for calls this service does not wrap. */
    readonly client: Etcd3
    /** The hosts the client was built with. */
    readonly hosts: ReadonlyArray<string>
    /**
     * Runs one etcd3 call, bounded by the call timeout, with its error mapped
     * to an {@link EtcdError}; `operation` names it in that error.
     */
    readonly use: <A>(operation: string, f: (client: Etcd3) => Promise<A>) => Effect.Effect<A, EtcdError>
    /** {@link toEtcdError} with this client's secrets. */
    readonly toError: (cause: unknown, operation: string) => EtcdError
  }
}

/**
 * The Etcd service tag.
 *
 * @since 0.1.0
 */
export class Etcd extends Context.Tag("grpc-anchor/Etcd")<Etcd, Etcd.Service>() {}

const splitHosts = (hosts: string | ReadonlyArray<string>): ReadonlyArray<string> =>
  (typeof hosts === "string" ? hosts.split(",") : hosts).map((h) => h.trim()).filter((h) => h.length > 0)

/**
 * The service for a client someone else owns: it is not closed by this
 * library.
 *
 * @since 0.1.0
 */
export const fromClient = (
  client: Etcd3,
  options?: { readonly hosts?: ReadonlyArray<string>; readonly callTimeout?: Duration.DurationInput; readonly secrets?: ReadonlyArray<string> }
): Etcd.Service => {
  const callTimeout = Duration.decode(options?.callTimeout ?? "5 seconds")
  const secrets = options?.secrets ?? []
  const toError = (cause: unknown, operation: string) => toEtcdError(cause, operation, secrets)
  return {
    client,
    hosts: options?.hosts ?? [],
    toError,
    use: (operation, f) =>
      Effect.tryPromise({ try: () => f(client), catch: (cause) => toError(cause, operation) }).pipe(
        Effect.timeoutFail({
          duration: callTimeout,
          onTimeout: () =>
            new EtcdError({
              reason: "Unavailable",
              operation,
              cause: undefined,
              detail: `no answer within ${Duration.format(callTimeout)}`
            })
        })
      )
  }
}

/**
 * The path as it may be shown: a "path" holding PEM text (the key itself
 * pasted where its file name belongs, e.g. `ETCD_KEY="$(cat key.pem)"`) is a
 * secret and is never echoed.
 */
const showPath = (path: string): string =>
  path.includes("-----BEGIN") || path.length > 1_024 ? "(a value that looks like PEM content, not a file path)" : JSON.stringify(path)

const readTlsFile = (option: "caFile" | "certFile" | "keyFile", path: string): Effect.Effect<Buffer, EtcdError> =>
  Effect.tryPromise({
    try: () => readFile(path),
    catch: (error) => {
      const code = typeof (error as { code?: unknown }).code === "string" ? (error as { code: string }).code : messageOf(error)
      const detail = `cannot read tls.${option} ${showPath(path)}: ${code}`
      // Node's error repeats the path in its message and its `path` field, so
      // it is replaced rather than kept as the cause.
      return new EtcdError({ reason: "InvalidArgument", operation: "read TLS files", cause: new Error(detail), detail })
    }
  })

type GlobalPolicy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>

/**
 * etcd3's own retry of a failed call, as its default (up to 3 immediate
 * retries of recoverable errors, so a call can move to another member),
 * except for a TLS handshake refused over a certificate: retrying cannot
 * help, and with auth each attempt authenticates on a new channel that
 * shares the failed connection, so the later attempts only say "No
 * connection established. Last error: null" and the certificate error of the
 * first attempt would be lost. etcd3 only calls `execute` on this policy.
 */
const globalRetry: GlobalPolicy = {
  execute: async <T>(fn: (context: { readonly signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> => {
    const context = { signal: signal ?? new AbortController().signal }
    for (let retries = 0; ; retries++) {
      try {
        return await fn(context)
      } catch (error) {
        const retry =
          retries < 3 &&
          !context.signal.aborted &&
          error instanceof Error &&
          isRecoverableError(error) &&
          tlsRefusal(error.message) === undefined
        if (!retry) throw error
        await new Promise((resolve) => setTimeout(resolve, 0))
      }
    }
  }
} as unknown as GlobalPolicy

/** etcd3's `credentials` option from the TLS files (read in this order: CA, key, certificate). */
const readTls = (tls: NonNullable<EtcdOptions["tls"]>): Effect.Effect<NonNullable<IOptions["credentials"]>, EtcdError> =>
  Effect.gen(function* () {
    // null: the system's root certificates (grpc-js createSsl).
    const rootCertificate = tls.caFile === undefined ? (null as unknown as Buffer) : yield* readTlsFile("caFile", tls.caFile)
    const privateKey = tls.keyFile === undefined ? undefined : yield* readTlsFile("keyFile", tls.keyFile)
    const certChain = tls.certFile === undefined ? undefined : yield* readTlsFile("certFile", tls.certFile)
    return {
      rootCertificate,
      ...(privateKey === undefined ? {} : { privateKey }),
      ...(certChain === undefined ? {} : { certChain })
    }
  })

/**
 * Builds an etcd3 client as a scoped resource, closed when the scope closes
 * (etcd3's close is synchronous and cannot hang). Nothing is dialled until
 * the first call.
 *
 * @since 0.1.0
 */
export const make = (options: EtcdOptions): Effect.Effect<Etcd.Service, EtcdError, Scope.Scope> =>
  Effect.gen(function* () {
    const hosts = splitHosts(options.hosts)
    if (hosts.length === 0) {
      return yield* new EtcdError({ reason: "InvalidArgument", operation: "connect", cause: undefined, detail: "no etcd hosts" })
    }
    const callTimeout = Duration.decode(options.callTimeout ?? "5 seconds")
    const callMillis = Duration.toMillis(callTimeout)
    const credentials = options.tls === undefined ? undefined : yield* readTls(options.tls)
    const auth =
      options.auth === undefined ? undefined : { username: options.auth.username, password: Redacted.value(options.auth.password) }
    const secrets = auth === undefined ? [] : [auth.password]
    const clientOptions: IOptions = {
      hosts: [...hosts],
      dialTimeout: Duration.toMillis(Duration.decode(options.dialTimeout ?? "5 seconds")),
      // A listing page or watch response may hold large values; grpc-js's
      // default 4 MiB limit would make it fail forever (etcd's Go client has no limit either).
      grpcOptions: { "grpc.max_receive_message_length": -1 },
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callMillis }),
      faultHandling: { global: globalRetry },
      ...(credentials === undefined ? {} : { credentials }),
      ...(auth === undefined ? {} : { auth })
    }
    const client = yield* Effect.acquireRelease(
      Effect.try({ try: () => new Etcd3(clientOptions), catch: (cause) => toEtcdError(cause, "connect", secrets) }),
      // etcd3's close is synchronous (it shuts the gRPC channels), so it
      // cannot hang; the watchers and leases on it are closed before it by
      // their own finalizers, each bounded by a timeout.
      (client) =>
        Effect.sync(() => client.close()).pipe(
          Effect.catchAllCause((cause) => Effect.logWarning("closing the etcd client failed", cause))
        )
    )
    return fromClient(client, { hosts, callTimeout, secrets })
  })

/**
 * A layer with an Etcd client built from `options`.
 *
 * @since 0.1.0
 */
export const layer = (options: EtcdOptions): Layer.Layer<Etcd, EtcdError> => Layer.scoped(Etcd, make(options))

/**
 * A layer around a client you own (it is not closed).
 *
 * @since 0.1.0
 */
export const layerFromClient = (client: Etcd3): Layer.Layer<Etcd> => Layer.succeed(Etcd, fromClient(client))

/**
 * A layer with options read through `Config`, e.g. {@link config}.
 *
 * @since 0.1.0
 */
export const layerConfig = (config: Config.Config.Wrap<EtcdOptions>): Layer.Layer<Etcd, EtcdError | ConfigError.ConfigError> =>
  Layer.scoped(Etcd, Effect.flatMap(Config.unwrap(config), make))

const optional = <A>(c: Config.Config<A>) => Config.option(c).pipe(Config.map(Option.getOrUndefined))

/**
 * TLS files and credentials from the environment, etcdctl-like names:
 * `ETCD_CACERT`, `ETCD_CERT`, `ETCD_KEY`, `ETCD_USERNAME`, `ETCD_PASSWORD`
 * (redacted). For callers that know their hosts already.
 *
 * @since 0.1.0
 */
export const credentialsConfig: Config.Config<Omit<EtcdOptions, "hosts">> = Config.all({
  caFile: optional(Config.string("ETCD_CACERT")),
  certFile: optional(Config.string("ETCD_CERT")),
  keyFile: optional(Config.string("ETCD_KEY")),
  username: optional(Config.string("ETCD_USERNAME")),
  password: optional(Config.redacted("ETCD_PASSWORD"))
}).pipe(
  Config.map(({ caFile, certFile, keyFile, password, username }) => ({
    ...(username === undefined ? {} : { auth: { username, password: password ?? Redacted.make("") } }),
    ...(caFile === undefined && certFile === undefined && keyFile === undefined
      ? {}
      : {
          tls: {
            ...(caFile === undefined ? {} : { caFile }),
            ...(certFile === undefined ? {} : { certFile }),
            ...(keyFile === undefined ? {} : { keyFile })
          }
        })
  }))
)

/**
 * Options from the environment: `ETCD_ENDPOINTS` (comma list, default
 * `127.0.0.1:2379`) and {@link credentialsConfig}.
 *
 * @since 0.1.0
 */
export const config: Config.Config<EtcdOptions> = Config.all({
  hosts: Config.string("ETCD_ENDPOINTS").pipe(
    Config.withDefault("127.0.0.1:2379"),
    Config.map(splitHosts),
    Config.validate({ message: "ETCD_ENDPOINTS lists no host", validation: (hosts) => hosts.length > 0 })
  ),
  credentials: credentialsConfig
}).pipe(Config.map(({ credentials, hosts }): EtcdOptions => ({ hosts, ...credentials })))

/**
 * A layer for the given hosts, with TLS and credentials from the environment
 * ({@link credentialsConfig}); `ETCD_ENDPOINTS` is not read.
 *
 * @since 0.1.0
 */
export const layerForHosts = (
  hosts: string | ReadonlyArray<string>
): Layer.Layer<Etcd, EtcdError | ConfigError.ConfigError> =>
  Layer.scoped(Etcd, Effect.flatMap(credentialsConfig, (credentials) => make({ ...credentials, hosts })))
