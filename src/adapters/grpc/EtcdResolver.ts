/**
 * The `etcd` resolver: `etcd://HOST:PORT,HOST:PORT/SERVICE#N` (or
 * `etcd:///SERVICE#N`) follows the backends registered under `SERVICE/` in
 * etcd (Go's naming/endpoints records) and hands them to
 * `anchor_round_robin` with N connections each.
 *
 * Where the etcd client comes from, first match wins:
 * 1. the target's authority (`etcd://10.0.0.5:2379/svc`), with TLS and
 *    credentials read through `Config` (`Etcd.credentialsConfig`:
 *    `ETCD_CACERT`, `ETCD_CERT`, `ETCD_KEY`, `ETCD_USERNAME`,
 *    `ETCD_PASSWORD`; for an AnchoredChannel, from the app's ConfigProvider);
 * 2. for an `AnchoredChannel`, the `Etcd` service of the Effect context it
 *    was made in (its layer requires it; nothing else is tried);
 * 3. for a plain grpc-js channel, the client or options given to
 *    `register({ etcd })`;
 * 4. for a plain grpc-js channel, the `ETCD_ENDPOINTS` environment variable
 *    (same TLS/auth variables).
 * With none of these the channel constructor throws, saying how to give one.
 *
 * While etcd is unreachable the channel keeps the last known backends. If no
 * list arrives within `grpc_anchor.etcd_resolution_timeout_ms` (default
 * 5,000) of the first resolution, the resolver reports UNAVAILABLE (calls
 * without waitForReady fail, naming the service) and keeps trying.
 *
 * TLS: each connection checks the name in its record's metadata
 * `{"serverName": "..."}` when present, else its address's host, unless the
 * channel sets `grpc.ssl_target_name_override`.
 *
 * Connections per backend: the target's `#N` (or `#MIN..MAX`, an adaptive
 * count), unless the backend's record asks for its own in its metadata,
 * `{"grpc_anchor.connections": 4}` or `{"grpc_anchor.connections": "2..8"}`
 * (see `EtcdRecord`; `Registrar`'s `connections` option writes it). A bad
 * value there is logged once as a warning and the backend keeps the target's
 * count. Go interop: any object `Metadata` crashes Go's etcd resolver under
 * `round_robin` (etcd-io/etcd#19700), so fleets with Go clients leave
 * per-endpoint counts off.
 *
 * Target options: `?pick=` sets the pick mode (over the policy config's
 * `pickMode`); `?subset=K` connects to K of the discovered backends, chosen
 * by `Subset.select` from their canonical addresses and the channel's client
 * id (`grpc_anchor.client_id`, see `PassResolver.CLIENT_ID_OPTION`), and
 * recomputed on every change of the backend list (few clients move when one
 * backend joins or leaves).
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { register } from "grpc-anchor"
 * register({ etcd: { hosts: "127.0.0.1:2379" } }) // registers this resolver (and the others)
 * const client = new EchoClient("etcd:///billing#2", grpc.credentials.createInsecure())
 * ```
 *
 * @since 0.1.0
 */
import { experimental, status as Status, type ChannelOptions } from "@grpc/grpc-js"
import * as ConfigProvider from "effect/ConfigProvider"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import * as Address from "../../core/Address.js"
import * as EndpointSet from "../../core/EndpointSet.js"
import * as EtcdRecord from "../../core/EtcdRecord.js"
import type * as Subset from "../../core/Subset.js"
import * as Target from "../../core/Target.js"
import * as Discovery from "../etcd/Discovery.js"
import * as Etcd from "../etcd/Etcd.js"
import { stderrLogger } from "../internal/stderrLogger.js"
import { describeError, etcdLayer, type EtcdLayer } from "./internal/etcdSource.js"
import { CONTEXT_KEY, RESOLUTION_KEY } from "./internal/keys.js"
import { CLIENT_ID_OPTION as CLIENT_ID, clientIdOf, resolutionOf, subsetOf, subsetTracker } from "./internal/resolution.js"
import { serviceConfigFor } from "./internal/serviceConfig.js"
import { targetOf } from "./internal/targetOf.js"

/**
 * The URI scheme this resolver handles.
 *
 * @example
 * ```ts
 * `${EtcdResolver.SCHEME}:///billing#2` // "etcd:///billing#2"
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const SCHEME = "etcd"

/**
 * Channel option: milliseconds to wait for the first endpoint list before
 * reporting etcd as unavailable (default 5,000).
 *
 * @example
 * ```ts
 * new EchoClient("etcd:///billing", insecure, { [EtcdResolver.RESOLUTION_TIMEOUT_OPTION]: 2_000 })
 * ```
 *
 * @category settings
 * @since 0.1.0
 */
export const RESOLUTION_TIMEOUT_OPTION = "grpc_anchor.etcd_resolution_timeout_ms"

/** The first-resolution timeout: the channel option, else 5 s; a bad value throws (never a silent default). */
const resolutionTimeoutOf = (options: ChannelOptions): number => {
  const given: unknown = options[RESOLUTION_TIMEOUT_OPTION]
  if (given === undefined) return 5_000
  if (typeof given === "number" && Number.isInteger(given) && given > 0) return given
  throw new Error(
    `channel option ${RESOLUTION_TIMEOUT_OPTION} is ${JSON.stringify(given)}; expected a whole number of milliseconds above 0 (default 5000)`
  )
}

/**
 * Channel option naming this client for deterministic subsetting
 * (`?subset=K`); the same option as `PassResolver.CLIENT_ID_OPTION` (see
 * there for indices vs names).
 *
 * @example
 * ```ts
 * new EchoClient("etcd:///billing#2?subset=20", insecure, { [EtcdResolver.CLIENT_ID_OPTION]: 7 })
 * ```
 *
 * @category settings
 * @since 0.2.0
 */
export const CLIENT_ID_OPTION = CLIENT_ID

/**
 * What `register({ etcd })` accepts: options for the etcd client each
 * channel opens and closes itself (one member, or a cluster's members).
 *
 * @example
 * ```ts
 * register({ etcd: { hosts: ["10.0.0.5:2379", "10.0.0.6:2379"] } })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type EtcdSource = Etcd.EtcdOptions

let defaultSource: EtcdSource | undefined

/**
 * Sets (or clears, with `undefined`) the etcd client used by plain grpc-js
 * channels on `etcd:///SERVICE` targets; `register({ etcd })` calls it.
 * AnchoredChannel never uses it (its layer requires the `Etcd` service).
 *
 * @example
 * ```ts
 * EtcdResolver.setDefaultEtcd({ hosts: "127.0.0.1:2379" })
 * ```
 *
 * @category registration
 * @since 0.1.0
 */
export const setDefaultEtcd = (source: EtcdSource | undefined): void => {
  defaultSource = source
}

const parseEtcd = (uri: experimental.GrpcUri): Target.EtcdTarget => targetOf(uri, "Etcd")

const serverNameOf = (metadata: unknown): string | undefined => {
  if (typeof metadata !== "object" || metadata === null) return undefined
  const name = (metadata as { serverName?: unknown }).serverName
  return typeof name === "string" && name.length > 0 ? name : undefined
}

/**
 * The per-endpoint count an endpoint's metadata asks for but that did not
 * decode (the record codec kept the endpoint without `connections`), as the
 * JSON text of the bad value; undefined when there is none.
 */
const badConnectionsOf = (endpoint: EtcdRecord.Endpoint): string | undefined => {
  if (endpoint.connections !== undefined) return undefined
  const metadata = endpoint.metadata
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) return undefined
  if (!Object.prototype.hasOwnProperty.call(metadata, EtcdRecord.CONNECTIONS_KEY)) return undefined
  return JSON.stringify((metadata as { readonly [key: string]: unknown })[EtcdRecord.CONNECTIONS_KEY]) ?? "undefined"
}

/**
 * The grpc-js resolver class for `etcd:` targets (registered by
 * {@link setup}; grpc-js constructs it, not you).
 *
 * @example
 * ```ts
 * import { experimental } from "@grpc/grpc-js"
 * experimental.registerResolver(EtcdResolver.SCHEME, EtcdResolver.EtcdResolver) // what setup() does
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export class EtcdResolver implements experimental.Resolver {
  private readonly target: Target.EtcdTarget
  private readonly canonical: string
  private readonly layer: EtcdLayer
  private readonly serviceConfig: ReturnType<typeof serviceConfigFor>
  private readonly timeoutMs: number
  private readonly context: Context.Context<never> | undefined
  private readonly environment: ConfigProvider.ConfigProvider
  private readonly clientId: Subset.ClientId
  /** address -> the bad per-endpoint count last warned about there. */
  private warned = new Map<string, string>()
  private fiber: Fiber.Fiber<void> | undefined
  /** The subset's moves across this resolver's lists (metrics). */
  private readonly subsetMoves = subsetTracker()
  private destroyed = false
  private resolved = false
  private lastError: string | undefined

  constructor(
    uri: experimental.GrpcUri,
    private readonly listener: experimental.ResolverListener,
    options: ChannelOptions
  ) {
    this.target = parseEtcd(uri)
    this.canonical = Target.format(this.target)
    this.clientId = clientIdOf(options)
    this.context = options[CONTEXT_KEY] as Context.Context<never> | undefined
    // A plain channel reads the environment as it is when the channel is made
    // (Effect's default provider keeps the environment of its first use).
    this.environment = ConfigProvider.fromEnv()
    this.layer = etcdLayer(this.target, options, this.environment, defaultSource)
    this.serviceConfig = serviceConfigFor(options)
    this.timeoutMs = resolutionTimeoutOf(options)
  }

  updateResolution(): void {
    // The watch is live: there is nothing to re-resolve once it runs.
    if (this.fiber !== undefined || this.destroyed) return
    // In an Effect app (AnchoredChannel) the watch runs in the app's context,
    // so its logs go through the app's logger; otherwise warnings go to stderr.
    this.fiber = this.context === undefined
      ? Effect.runFork(
        this.program().pipe(Effect.provide(stderrLogger), Effect.provideService(ConfigProvider.ConfigProvider, this.environment))
      )
      : Effect.runForkWith(this.context)(this.program())
  }

  destroy(): void {
    this.destroyed = true
    const fiber = this.fiber
    this.fiber = undefined
    // Interrupting closes the watch and, when this resolver opened it, the etcd client.
    if (fiber !== undefined) Effect.runFork(Fiber.interrupt(fiber))
  }

  private program(): Effect.Effect<void> {
    const service = this.target.service
    const watch = Effect.gen({ self: this }, function* () {
      const discovery = yield* Discovery.make()
      const onListingError = (error: Etcd.EtcdError) => {
        this.lastError = error.message
      }
      yield* discovery.watch(service, { onListingError }).pipe(
        Stream.runForEach((snapshot) => Effect.suspend(() => this.report(snapshot.endpoints)))
      )
    }).pipe(Effect.provide(this.layer))
    // Beside the watch: once, if no list came in time, say why calls fail.
    const firstResolutionTimeout = Effect.sleep(this.timeoutMs).pipe(
      Effect.andThen(
        Effect.sync(() => {
          if (this.resolved) return
          const why = this.lastError === undefined ? "" : ` (last error: ${this.lastError})`
          this.fail(`no answer from etcd for service "${service}" within ${this.timeoutMs} ms${why}; still trying`)
        })
      )
    )
    // Never call the listener synchronously from updateResolution: start on the next turn.
    return Effect.yieldNow.pipe(
      Effect.andThen(Effect.all([watch, firstResolutionTimeout], { concurrency: 2, discard: true })),
      Effect.catch((error) => Effect.sync(() => this.fail(`etcd discovery of service "${service}" failed: ${describeError(error)}`))),
      // After a failure retrying cannot fix (e.g. bad credentials), the next
      // re-resolution request from the channel starts over.
      Effect.ensuring(Effect.sync(() => {
        this.fiber = undefined
      })),
      Effect.annotateLogs({ target: this.canonical })
    )
  }

  private report(endpoints: ReadonlyArray<EtcdRecord.Endpoint>): Effect.Effect<void> {
    if (this.destroyed) return Effect.void
    this.resolved = true
    const warnings = this.badCounts(endpoints)
    const all = EndpointSet.weighted(endpoints, this.target)
    const weighted = subsetOf(all, this.target.options.subset, this.clientId)
    const chosen = new Set(weighted.map((w) => w.address))
    const subset = this.target.options.subset === undefined
      ? undefined
      : this.subsetMoves(all.map((w) => w.address), weighted.map((w) => w.address))
    const addresses: Array<experimental.Endpoint> = []
    const serverNames = new Map<string, string>()
    for (const endpoint of endpoints) {
      if (!chosen.has(endpoint.address)) continue
      const parsed = Address.parse(endpoint.address)
      // The record codec has already validated the address; skip defensively.
      if (Result.isFailure(parsed)) continue
      addresses.push({ addresses: [{ host: parsed.success.host, port: parsed.success.port }] })
      const name = serverNameOf(endpoint.metadata)
      if (name !== undefined) serverNames.set(endpoint.address, name)
    }
    this.listener(
      experimental.statusOrFromValue(addresses),
      { [RESOLUTION_KEY]: resolutionOf(this.canonical, weighted, this.target.options, "keepFirst", serverNames, subset) },
      this.serviceConfig,
      addresses.length === 0 ? `service "${this.target.service}" has no endpoints registered in etcd` : ""
    )
    return Effect.forEach(warnings, (warning) => Effect.logWarning(warning.message).pipe(Effect.annotateLogs(warning.annotations)), {
      discard: true
    })
  }

  /**
   * Warnings for endpoints whose per-endpoint count is bad: once per
   * address and bad value (again after it was fixed and broken again).
   */
  private badCounts(
    endpoints: ReadonlyArray<EtcdRecord.Endpoint>
  ): ReadonlyArray<{ readonly message: string; readonly annotations: Record<string, unknown> }> {
    const out: Array<{ readonly message: string; readonly annotations: Record<string, unknown> }> = []
    const now = new Map<string, string>()
    for (const endpoint of endpoints) {
      const bad = badConnectionsOf(endpoint)
      if (bad === undefined) continue
      now.set(endpoint.address, bad)
      if (this.warned.get(endpoint.address) === bad) continue
      out.push({
        message:
          `endpoint ${endpoint.address} of service ${this.target.service}: ` +
          `Metadata[${JSON.stringify(EtcdRecord.CONNECTIONS_KEY)}] is ${bad.length > 120 ? `${bad.slice(0, 120)}…` : bad}, ` +
          `not a connection count (a whole number 1..${Target.MAX_COUNT} or "min..max"); ` +
          `using the target's #${Target.formatCount(this.target)}`,
        annotations: { service: this.target.service, address: endpoint.address, reason: "InvalidConnections" }
      })
    }
    this.warned = now
    return out
  }

  private fail(details: string): void {
    if (this.destroyed) return
    this.listener(
      experimental.statusOrFromError({ code: Status.UNAVAILABLE, details: `${this.canonical}: ${details}` }),
      {},
      this.serviceConfig,
      details
    )
  }

  /**
   * The `:authority` of an etcd channel: the service name, with characters
   * a host name cannot hold replaced by `.` (`prod/billing` -> `prod.billing`).
   */
  static getDefaultAuthority(uri: experimental.GrpcUri): string {
    return parseEtcd(uri).service.replace(/[^A-Za-z0-9._~-]/g, ".")
  }
}

/**
 * Registers the `etcd` scheme with the app's @grpc/grpc-js (`register()`
 * calls it, with the other resolvers and the policy).
 *
 * @example
 * ```ts
 * EtcdResolver.setup()
 * ```
 *
 * @category registration
 * @since 0.1.0
 */
export const setup = (): void => {
  experimental.registerResolver(SCHEME, EtcdResolver)
}
