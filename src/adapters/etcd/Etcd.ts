/**
 * The etcd client as an Effect service: one `etcd3` client (microsoft/etcd3)
 * owned by a scope, unary calls bounded by a deadline, and every etcd3 error
 * mapped once to an {@link EtcdError} with a `reason`.
 *
 * One options shape, {@link EtcdOptions}, says how to reach etcd everywhere:
 * `Etcd.layer`, `registerEndpoint({ etcd })` and `register({ etcd })`.
 * `ETCD_ENDPOINTS` is read in one place, {@link hostsConfig}.
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
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaTransformation from "effect/SchemaTransformation"
import type * as Scope from "effect/Scope"
import { Etcd3, type IOptions } from "etcd3"
import { EtcdError, toEtcdError } from "./internal/error.js"
import { faultHandling } from "./internal/faultHandling.js"
import { readTls } from "./internal/tls.js"

export { backoff } from "./internal/backoff.js"
export { EtcdError, type EtcdErrorReason, isTransient, toEtcdError } from "./internal/error.js"

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/**
 * How to reach etcd: the one shape taken by {@link layer}, {@link make},
 * `registerEndpoint({ etcd })` and `register({ etcd })`.
 *
 * - `hosts`: `host:port` entries (an array or a comma list), optionally with
 *   `http://` / `https://` (https means TLS).
 * - `auth.password`: a `Redacted` (what {@link config} reads) or a plain
 *   string (what a Promise user has at hand); either way it never appears in
 *   an error message or a log line.
 * - `callTimeout` / `dialTimeout`: any `Duration.Input`: a `Duration`,
 *   `"5 seconds"`, or a number of milliseconds.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Etcd } from "grpc-anchor"
 * const options: Etcd.EtcdOptions = {
 *   hosts: "https://10.0.0.5:2379,https://10.0.0.6:2379",
 *   auth: { username: "billing", password: Redacted.make(process.env.ETCD_PASSWORD ?? "") }, // or a plain string
 *   tls: { caFile: "/etc/etcd/ca.pem" },
 *   callTimeout: "3 seconds" // or 3000 (milliseconds)
 * }
 * ```
 *
 * @since 0.1.0
 */
export interface EtcdOptions {
  /** `host:port` entries or a comma list, optionally with `http://`/`https://` (https means TLS). */
  readonly hosts: string | ReadonlyArray<string>
  readonly auth?: { readonly username: string; readonly password: string | Redacted.Redacted<string> }
  /** PEM files: CA bundle, and for mutual TLS a client certificate and key. */
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string }
  /** Deadline of one unary call (default 5 seconds; a number is milliseconds). Streams have none. */
  readonly callTimeout?: Duration.Input
  /** Connect timeout of a member (default 5 seconds; a number is milliseconds). */
  readonly dialTimeout?: Duration.Input
}

/**
 * The hosts of a comma list (or of an array of entries that may themselves
 * be comma lists), trimmed, empty entries dropped.
 *
 * @example
 * ```ts
 * import { Etcd } from "grpc-anchor"
 * Etcd.splitHosts(" 10.0.0.5:2379, 10.0.0.6:2379 ") // ["10.0.0.5:2379", "10.0.0.6:2379"]
 * ```
 *
 * @since 0.3.0
 */
export const splitHosts = (hosts: string | ReadonlyArray<string>): ReadonlyArray<string> =>
  (typeof hosts === "string" ? [hosts] : hosts)
    .flatMap((entry) => entry.split(","))
    .map((host) => host.trim())
    .filter((host) => host.length > 0)

const invalid = (detail: string) => new EtcdError({ reason: "InvalidArgument", operation: "connect", cause: undefined, detail })

/**
 * The shape of {@link EtcdOptions} as a Promise or JavaScript caller may get
 * it wrong. The password is checked apart, so that a bad one is never
 * echoed in the message; the durations by {@link durationOption}.
 */
const OptionsShape = Schema.Struct({
  hosts: Schema.Union([Schema.String, Schema.Array(Schema.String)]),
  auth: Schema.optional(Schema.Struct({ username: Schema.String, password: Schema.Unknown })),
  tls: Schema.optional(
    Schema.Struct({
      caFile: Schema.optional(Schema.String),
      certFile: Schema.optional(Schema.String),
      keyFile: Schema.optional(Schema.String)
    })
  )
})

const checkShape = (options: EtcdOptions): Effect.Effect<void, EtcdError> =>
  Effect.suspend(() => {
    const shape = Schema.decodeUnknownResult(OptionsShape)(options)
    if (Result.isFailure(shape)) return Effect.fail(invalid(`invalid etcd options: ${shape.failure.message.replace(/\s*\n\s*/g, " ")}`))
    const password = options.auth?.password
    if (options.auth !== undefined && typeof password !== "string" && !Redacted.isRedacted(password)) {
      return Effect.fail(invalid("invalid etcd options: auth.password must be a string or a Redacted string"))
    }
    return Effect.void
  })

const durationOption = (name: string, input: Duration.Input | undefined, fallback: Duration.Duration) =>
  Effect.suspend(() => {
    if (input === undefined) return Effect.succeed(fallback)
    const decoded = Duration.fromInput(input)
    return Option.isSome(decoded) && Duration.isFinite(decoded.value) && Duration.isPositive(decoded.value)
      ? Effect.succeed(decoded.value)
      : Effect.fail(invalid(`${name} must be a positive duration ("5 seconds", or a number of milliseconds), got ${JSON.stringify(input)}`))
  })

// ---------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------

/**
 * The Etcd service's shape.
 *
 * @since 0.1.0
 */
export declare namespace Etcd {
  /**
   * What the Etcd service offers.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { Etcd } from "grpc-anchor"
   * const value = Etcd.Etcd.use((etcd) => etcd.use("get x", (client) => client.get("x").string()))
   * ```
   *
   * @since 0.3.0
   */
  export interface Shape {
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
  /**
   * The former name of {@link Shape}.
   *
   * @deprecated use `Etcd.Shape`
   * @since 0.1.0
   */
  export type Service = Shape
}

/**
 * The Etcd service: one etcd3 client.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd } from "grpc-anchor"
 * const program = Effect.gen(function* () {
 *   const etcd = yield* Etcd.Etcd
 *   yield* etcd.use("put x", (client) => client.put("x").value("1").exec())
 * }).pipe(Effect.provide(Etcd.layer({ hosts: "127.0.0.1:2379" })))
 * ```
 *
 * @since 0.1.0
 */
export class Etcd extends Context.Service<Etcd, Etcd.Shape>()("grpc-anchor/Etcd") {}

/**
 * The service for a client someone else owns: it is not closed by this
 * library.
 *
 * @example
 * ```ts
 * import { Etcd3 } from "etcd3"
 * import { Etcd } from "grpc-anchor"
 * const service = Etcd.fromClient(new Etcd3({ hosts: "127.0.0.1:2379" }), { callTimeout: "2 seconds" })
 * ```
 *
 * @since 0.1.0
 */
export const fromClient = (
  client: Etcd3,
  options?: { readonly hosts?: ReadonlyArray<string>; readonly callTimeout?: Duration.Input; readonly secrets?: ReadonlyArray<string> }
): Etcd.Shape => {
  const callTimeout = Duration.fromInputUnsafe(options?.callTimeout ?? "5 seconds")
  const secrets = options?.secrets ?? []
  const toError = (cause: unknown, operation: string) => toEtcdError(cause, operation, secrets)
  return {
    client,
    hosts: options?.hosts ?? [],
    toError,
    use: (operation, f) =>
      Effect.tryPromise({ try: () => f(client), catch: (cause) => toError(cause, operation) }).pipe(
        Effect.timeoutOrElse({
          duration: callTimeout,
          orElse: () =>
            Effect.fail(
              new EtcdError({ reason: "Unavailable", operation, cause: undefined, detail: `no answer within ${Duration.format(callTimeout)}` })
            )
        })
      )
  }
}

/**
 * Builds an etcd3 client as a scoped resource, closed when the scope closes
 * (etcd3's close is synchronous and cannot hang). Nothing is dialled until
 * the first call. Fails with `InvalidArgument` for options that cannot work
 * (no host, an unreadable TLS file, a bad duration).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd } from "grpc-anchor"
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const etcd = yield* Etcd.make({ hosts: "127.0.0.1:2379", callTimeout: 2000 })
 *     return yield* etcd.use("get x", (client) => client.get("x").string())
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: EtcdOptions): Effect.Effect<Etcd.Shape, EtcdError, Scope.Scope> =>
  Effect.gen(function* () {
    yield* checkShape(options)
    const hosts = splitHosts(options.hosts)
    if (hosts.length === 0) return yield* invalid("no etcd hosts")
    const callTimeout = yield* durationOption("callTimeout", options.callTimeout, Duration.seconds(5))
    const dialTimeout = yield* durationOption("dialTimeout", options.dialTimeout, Duration.seconds(5))
    const callMillis = Duration.toMillis(callTimeout)
    const credentials = options.tls === undefined ? undefined : yield* readTls(options.tls)
    const auth =
      options.auth === undefined
        ? undefined
        : {
            username: options.auth.username,
            password: Redacted.isRedacted(options.auth.password) ? Redacted.value(options.auth.password) : options.auth.password
          }
    const secrets = auth === undefined ? [] : [auth.password]
    const clientOptions: IOptions = {
      hosts: [...hosts],
      dialTimeout: Duration.toMillis(dialTimeout),
      // A listing page or watch response may hold large values; grpc-js's
      // default 4 MiB limit would make it fail forever (etcd's Go client has no limit either).
      grpcOptions: { "grpc.max_receive_message_length": -1 },
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callMillis }),
      faultHandling: faultHandling(hosts),
      ...(credentials === undefined ? {} : { credentials }),
      ...(auth === undefined ? {} : { auth })
    }
    const client = yield* Effect.acquireRelease(
      Effect.try({ try: () => new Etcd3(clientOptions), catch: (cause) => toEtcdError(cause, "connect", secrets) }),
      // etcd3's close is synchronous (it shuts the gRPC channels), so it
      // cannot hang; the watchers and leases on it are closed before it by
      // their own finalizers, each bounded by a timeout.
      (client) =>
        Effect.sync(() => client.close()).pipe(Effect.catchCause((cause) => Effect.logWarning("closing the etcd client failed", cause)))
    )
    return fromClient(client, { hosts, callTimeout, secrets })
  })

/**
 * A layer with an Etcd client built from `options`, closed with the layer.
 *
 * @example
 * ```ts
 * import { Etcd } from "grpc-anchor"
 * const EtcdLive = Etcd.layer({ hosts: "127.0.0.1:2379", auth: { username: "app", password: "secret" } })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: EtcdOptions): Layer.Layer<Etcd, EtcdError> => Layer.effect(Etcd, make(options))

/**
 * A layer around a client you own (it is not closed).
 *
 * @example
 * ```ts
 * import { Etcd3 } from "etcd3"
 * import { Etcd } from "grpc-anchor"
 * const EtcdLive = Etcd.layerFromClient(new Etcd3({ hosts: "127.0.0.1:2379" }))
 * ```
 *
 * @since 0.1.0
 */
export const layerFromClient = (client: Etcd3): Layer.Layer<Etcd> => Layer.succeed(Etcd, fromClient(client))

/**
 * A layer with options read through `Config`, e.g. {@link config}.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { Etcd } from "grpc-anchor"
 * const EtcdLive = Etcd.layerConfig({ hosts: Etcd.hostsConfig, callTimeout: Config.Duration("ETCD_CALL_TIMEOUT") })
 * ```
 *
 * @since 0.1.0
 */
export const layerConfig = (config: Config.Wrap<EtcdOptions>): Layer.Layer<Etcd, EtcdError | Config.ConfigError> =>
  Layer.effect(Etcd, Effect.flatMap(Config.unwrap(config), make))

// ---------------------------------------------------------------------------
// Config: the one place that reads ETCD_* variables
// ---------------------------------------------------------------------------

/** A comma list of hosts, decoded to a non-empty list. */
const HostList = Schema.String.pipe(
  Schema.decodeTo(
    Schema.Array(Schema.String).check(Schema.isMinLength(1, { message: "lists no host (expected HOST:PORT[,HOST:PORT...])" })),
    SchemaTransformation.transform<ReadonlyArray<string>, string>({ decode: (text) => splitHosts(text), encode: (hosts) => hosts.join(",") })
  )
)

/**
 * `ETCD_ENDPOINTS`, a comma list of `host:port` (or `https://host:port`),
 * split into hosts. The only reader of that variable: a value that lists no
 * host is an error, a missing one is `ConfigError` (see
 * `Config.option` / `Config.withDefault`).
 *
 * @example
 * ```ts
 * import { Config, Effect } from "effect"
 * import { Etcd } from "grpc-anchor"
 * const hosts = Effect.gen(function* () {
 *   return yield* Config.option(Etcd.hostsConfig) // Option<ReadonlyArray<string>>
 * })
 * ```
 *
 * @since 0.3.0
 */
export const hostsConfig: Config.Config<ReadonlyArray<string>> = Config.schema(HostList, "ETCD_ENDPOINTS")

const optional = <A>(c: Config.Config<A>) => Config.option(c).pipe(Config.map(Option.getOrUndefined))

/**
 * TLS files and credentials from the environment, etcdctl-like names:
 * `ETCD_CACERT`, `ETCD_CERT`, `ETCD_KEY`, `ETCD_USERNAME`, `ETCD_PASSWORD`
 * (redacted). For callers that know their hosts already.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd } from "grpc-anchor"
 * const options = Effect.map(Etcd.credentialsConfig, (credentials) => ({ ...credentials, hosts: "10.0.0.5:2379" }))
 * ```
 *
 * @since 0.1.0
 */
export const credentialsConfig: Config.Config<Omit<EtcdOptions, "hosts">> = Config.all({
  caFile: optional(Config.String("ETCD_CACERT")),
  certFile: optional(Config.String("ETCD_CERT")),
  keyFile: optional(Config.String("ETCD_KEY")),
  username: optional(Config.String("ETCD_USERNAME")),
  password: optional(Config.Redacted("ETCD_PASSWORD"))
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
 * Options from the environment: {@link hostsConfig} (`ETCD_ENDPOINTS`,
 * default `127.0.0.1:2379`) and {@link credentialsConfig}.
 *
 * @example
 * ```ts
 * import { Etcd } from "grpc-anchor"
 * const EtcdLive = Etcd.layerConfig(Etcd.config)
 * ```
 *
 * @since 0.1.0
 */
export const config: Config.Config<EtcdOptions> = Config.all({
  hosts: hostsConfig.pipe(Config.withDefault(["127.0.0.1:2379"])),
  credentials: credentialsConfig
}).pipe(Config.map(({ credentials, hosts }): EtcdOptions => ({ hosts, ...credentials })))

/**
 * A layer for the given hosts, with TLS and credentials from the environment
 * ({@link credentialsConfig}); `ETCD_ENDPOINTS` is not read.
 *
 * @example
 * ```ts
 * import { Etcd } from "grpc-anchor"
 * const EtcdLive = Etcd.layerForHosts(["10.0.0.5:2379", "10.0.0.6:2379"])
 * ```
 *
 * @since 0.1.0
 */
export const layerForHosts = (hosts: string | ReadonlyArray<string>): Layer.Layer<Etcd, EtcdError | Config.ConfigError> =>
  Layer.effect(Etcd, Effect.flatMap(credentialsConfig, (credentials) => make({ ...credentials, hosts })))
