/**
 * The etcd client as an Effect service, built for clusters: one gRPC
 * channel per member (with keepalive pings), every request bounded by a
 * deadline and moved to another member when its member fails or stays
 * silent past `memberTimeout`, watches and lease keep-alives that move to a
 * healthy member without losing or repeating anything, `hasleader` on every
 * stream (a member cut off from its peers is left), and the member list
 * learned from etcd (`autoSync`). Every failure is mapped once to an
 * {@link EtcdError} with a `reason`. It speaks etcd's v3 gRPC API directly
 * on `@grpc/grpc-js` (see the README for why not `etcd3`).
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
import * as grpc from "@grpc/grpc-js"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SchemaTransformation from "effect/SchemaTransformation"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import type * as EtcdMembers from "../../core/EtcdMembers.js"
import * as Client from "./internal/client/client.js"
import { type KeepAliveSignal, keepAlive } from "./internal/client/keepAlive.js"
import * as Proto from "./internal/client/proto.js"
import { watch, type WatchRequest, type WatchSignal } from "./internal/client/watch.js"
import { EtcdError, toEtcdError } from "./internal/error.js"
import { checkShape, durationOption, invalid } from "./internal/options.js"
import { readTls } from "./internal/tls.js"

export { backoff } from "./internal/backoff.js"
export { EtcdError, type EtcdErrorReason, isTransient, toEtcdError } from "./internal/error.js"
export type { KeepAliveSignal } from "./internal/client/keepAlive.js"
export type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  Event,
  KeyValue,
  LeaseGrantResponse,
  LeaseTimeToLiveResponse,
  Member,
  MemberListResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  StatusResponse,
  TxnRequest,
  TxnResponse
} from "./internal/client/proto.js"
export { prefixRange } from "./internal/client/proto.js"
export type { WatchRequest, WatchSignal } from "./internal/client/watch.js"

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
 * @category models
 * @since 0.1.0
 */
export interface EtcdOptions {
  /** `host:port` entries or a comma list, optionally with `http://`/`https://` (https means TLS). */
  readonly hosts: string | ReadonlyArray<string>
  readonly auth?: { readonly username: string; readonly password: string | Redacted.Redacted<string> }
  /** PEM files: CA bundle, and for mutual TLS a client certificate and key. */
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string }
  /** Deadline of one request, failover to other members included (default 5 seconds; a number is milliseconds). */
  readonly callTimeout?: Duration.Input
  /**
   * How long a member may stay silent before the client moves to another
   * (default 1 second): the deadline of one attempt of a request (the last
   * member left gets the rest of `callTimeout`), of an answer to a watch's
   * heartbeat, and of an answer to a lease keep-alive.
   */
  readonly memberTimeout?: Duration.Input
  /**
   * gRPC keepalive pings on each member's connection while a stream is open:
   * `time` between pings (default 5 seconds, etcd's
   * `--grpc-keepalive-min-time`; faster pings are refused by etcd) and
   * `timeout` for the answer (default 2 seconds).
   */
  readonly keepalive?: { readonly time?: Duration.Input; readonly timeout?: Duration.Input }
  /**
   * Learn the cluster's members from etcd's member list every so often
   * (default 30 seconds; `false`: only the listed hosts), as clientv3's
   * `AutoSyncInterval`: a config that lists one member finds the others.
   * The listed hosts are always kept.
   */
  readonly autoSync?: Duration.Input | false
  /** @deprecated unused: a member that does not answer is left after `memberTimeout`. */
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
 * @category parsing
 * @since 0.2.0
 */
export const splitHosts = (hosts: string | ReadonlyArray<string>): ReadonlyArray<string> =>
  (typeof hosts === "string" ? [hosts] : hosts)
    .flatMap((entry) => entry.split(","))
    .map((host) => host.trim())
    .filter((host) => host.length > 0)

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
   * const value = Etcd.Etcd.use((etcd) => etcd.range("get x", { key: "x" }))
   * ```
   *
   * @since 0.3.0
   */
  export interface Shape {
    // Every request may reach etcd more than once (a member that did not
    // answer in time may still apply it while another member is asked):
    // send idempotent requests (a txn guarded by a compare, a put of a whole value).
    /** The hosts the client was built with. */
    readonly hosts: ReadonlyArray<string>
    /** The members known now (listed, and learned with `autoSync`) and their health. */
    readonly members: Effect.Effect<ReadonlyArray<EtcdMembers.Member>>
    /** KV Range; `operation` names the request in its error. */
    readonly range: (operation: string, request: Proto.RangeRequest) => Effect.Effect<Proto.RangeResponse, EtcdError>
    readonly put: (operation: string, request: Proto.PutRequest) => Effect.Effect<Proto.PutResponse, EtcdError>
    readonly deleteRange: (operation: string, request: Proto.DeleteRangeRequest) => Effect.Effect<Proto.DeleteRangeResponse, EtcdError>
    readonly txn: (operation: string, request: Proto.TxnRequest) => Effect.Effect<Proto.TxnResponse, EtcdError>
    /**
     * Grants a lease of `ttl` seconds. Its id is chosen here, so a grant that
     * is retried on another member after its answer was lost is not granted
     * twice.
     */
    readonly leaseGrant: (ttl: number) => Effect.Effect<{ readonly id: bigint; readonly ttl: number }, EtcdError>
    /** Revokes a lease (its keys are deleted); succeeds when etcd has no such lease (already expired or revoked). */
    readonly leaseRevoke: (id: bigint) => Effect.Effect<void, EtcdError>
    readonly leaseTimeToLive: (id: bigint) => Effect.Effect<Proto.LeaseTimeToLiveResponse, EtcdError>
    /** Keeps lease `id` (of `ttl` seconds) alive while the stream runs, on whichever member answers. */
    readonly keepAlive: (id: bigint, ttl: number) => Stream.Stream<KeepAliveSignal>
    /** A watch that moves to another member when its member fails, from the revision after its last event. */
    readonly watch: (operation: string, request: WatchRequest) => Stream.Stream<WatchSignal>
    /** The status of the member that answers. */
    readonly status: Effect.Effect<Proto.StatusResponse, EtcdError>
    readonly memberList: Effect.Effect<Proto.MemberListResponse, EtcdError>
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
 * The Etcd service: one etcd client for a cluster (or a single member).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd } from "grpc-anchor"
 * const program = Effect.gen(function* () {
 *   const etcd = yield* Etcd.Etcd
 *   yield* etcd.put("put x", { key: "x", value: "1" })
 * }).pipe(Effect.provide(Etcd.layer({ hosts: "127.0.0.1:2379" })))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Etcd extends Context.Service<Etcd, Etcd.Shape>()("grpc-anchor/Etcd") {}

/** A random lease id in 1..2^63-1 (etcd's ids are positive int64). */
const randomLeaseId = (): bigint => {
  const id = randomBytes(8).readBigUInt64BE() & 0x7fff_ffff_ffff_ffffn
  return id === 0n ? 1n : id
}

/** Effect functions over a built client: what {@link make} returns. */
const service = (client: Client.Client, hosts: ReadonlyArray<string>): Etcd.Shape => ({
  hosts,
  members: client.members,
  range: (operation, request) => client.request(operation, Proto.methods.range, request),
  put: (operation, request) => client.request(operation, Proto.methods.put, request),
  deleteRange: (operation, request) => client.request(operation, Proto.methods.deleteRange, request),
  txn: (operation, request) => client.request(operation, Proto.methods.txn, request),
  leaseGrant: (ttl) =>
    Effect.suspend(() => {
      const id = randomLeaseId()
      return client.request("grant lease", Proto.methods.leaseGrant, { TTL: ttl, ID: id }).pipe(
        Effect.map((response) => ({ id: response.ID, ttl: Number(response.TTL) })),
        // The grant went through on a member whose answer was lost, and the
        // retry on another member found it: it is ours (a random 63-bit id).
        Effect.catchIf(
          (error) => error.detail.includes("lease already exists"),
          () => Effect.succeed({ id, ttl })
        )
      )
    }),
  leaseRevoke: (id) =>
    client.request(`revoke lease ${id.toString(16)}`, Proto.methods.leaseRevoke, { ID: id }).pipe(
      Effect.asVoid,
      // Already gone: what a revoke is for (and what a hedged twin of this revoke leaves behind).
      Effect.catchIf((error) => error.reason === "NotFound", () => Effect.void)
    ),
  leaseTimeToLive: (id) => client.request(`lease ${id.toString(16)} time to live`, Proto.methods.leaseTimeToLive, { ID: id }),
  keepAlive: (id, ttl) => keepAlive(client, id, ttl),
  watch: (operation, request) => watch(client, operation, request),
  status: client.request("status", Proto.methods.status, {}),
  memberList: client.request("member list", Proto.methods.memberList, {}),
  toError: client.toError
})

/**
 * Builds an etcd client as a scoped resource: its channels are closed when
 * the scope closes (closing cannot hang: nothing waits on a member). Nothing
 * is dialled until the first request, or the first member list sync a
 * second after it is built (`autoSync`). Fails with `InvalidArgument` for
 * options that cannot work (no host, an unreadable TLS file, a bad duration).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd } from "grpc-anchor"
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const etcd = yield* Etcd.make({ hosts: "127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379", callTimeout: 2000 })
 *     return yield* etcd.range("get x", { key: "x" })
 *   })
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: EtcdOptions): Effect.Effect<Etcd.Shape, EtcdError, Scope.Scope> =>
  Effect.gen(function* () {
    yield* checkShape(options)
    const hosts = splitHosts(options.hosts)
    if (hosts.length === 0) return yield* invalid("no etcd hosts")
    const callTimeout = yield* durationOption("callTimeout", options.callTimeout, Duration.seconds(5))
    const memberTimeout = yield* durationOption("memberTimeout", options.memberTimeout, Duration.seconds(1))
    const keepaliveTime = yield* durationOption("keepalive.time", options.keepalive?.time, Duration.seconds(5))
    const keepaliveTimeout = yield* durationOption("keepalive.timeout", options.keepalive?.timeout, Duration.seconds(2))
    const autoSync =
      options.autoSync === false ? undefined : yield* durationOption("autoSync", options.autoSync, Duration.seconds(30))
    const tls = options.tls !== undefined || hosts.some((host) => host.startsWith("https://"))
    const files = options.tls === undefined ? undefined : yield* readTls(options.tls)
    const credentials = yield* Effect.try({
      try: () =>
        tls
          ? grpc.credentials.createSsl(files?.rootCertificate ?? null, files?.privateKey ?? null, files?.certChain ?? null)
          : grpc.credentials.createInsecure(),
      catch: (cause) => toEtcdError(cause, "connect")
    })
    const auth =
      options.auth === undefined
        ? undefined
        : {
            username: options.auth.username,
            password: Redacted.isRedacted(options.auth.password) ? Redacted.value(options.auth.password) : options.auth.password
          }
    const client = yield* Client.make({
      hosts,
      credentials,
      auth,
      callTimeout: Duration.toMillis(callTimeout),
      memberTimeout: Duration.toMillis(memberTimeout),
      keepaliveTime: Duration.toMillis(keepaliveTime),
      keepaliveTimeout: Duration.toMillis(keepaliveTimeout),
      autoSync: autoSync === undefined ? undefined : Duration.toMillis(autoSync),
      secrets: auth === undefined ? [] : [auth.password]
    })
    return service(client, hosts)
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
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: EtcdOptions): Layer.Layer<Etcd, EtcdError> => Layer.effect(Etcd, make(options))

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
 * @category layers
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
 * @category config
 * @since 0.2.0
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
 * @category config
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
 * @category config
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
 * @category layers
 * @since 0.1.0
 */
export const layerForHosts = (hosts: string | ReadonlyArray<string>): Layer.Layer<Etcd, EtcdError | Config.ConfigError> =>
  Layer.effect(Etcd, Effect.flatMap(credentialsConfig, (credentials) => make({ ...credentials, hosts })))
