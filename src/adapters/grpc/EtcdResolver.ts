/**
 * The `etcd` resolver: `etcd://HOST:PORT,HOST:PORT/SERVICE#N` (or
 * `etcd:///SERVICE#N`) follows the backends registered under `SERVICE/` in
 * etcd (Go's naming/endpoints records) and hands them to
 * `anchor_round_robin` with N connections each.
 *
 * Where the etcd client comes from, first match wins:
 * 1. the target's authority (`etcd://10.0.0.5:2379/svc`), with TLS and
 *    credentials from `ETCD_CACERT`, `ETCD_CERT`, `ETCD_KEY`,
 *    `ETCD_USERNAME`, `ETCD_PASSWORD`;
 * 2. the `Etcd` service of the Effect context `AnchoredChannel` was made in;
 * 3. the client or options given to `register({ etcd })`;
 * 4. the `ETCD_ENDPOINTS` environment variable (same TLS/auth variables).
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
 * @since 0.1.0
 */
import { experimental, status as Status, type ChannelOptions } from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import type { Etcd3 } from "etcd3"
import * as Address from "../../core/Address.js"
import type * as EtcdRecord from "../../core/EtcdRecord.js"
import * as Target from "../../core/Target.js"
import * as Discovery from "../etcd/Discovery.js"
import * as Etcd from "../etcd/Etcd.js"
import { stderrLogger } from "../internal/stderrLogger.js"
import { ETCD_CLIENT_KEY, RESOLUTION_KEY, RUNTIME_KEY, type Resolution } from "./internal/keys.js"
import { serviceConfigFor } from "./internal/serviceConfig.js"
import { targetOf } from "./internal/targetOf.js"

/**
 * The URI scheme this resolver handles.
 *
 * @since 0.1.0
 */
export const SCHEME = "etcd"

/**
 * Channel option: milliseconds to wait for the first endpoint list before
 * reporting etcd as unavailable.
 *
 * @since 0.1.0
 */
export const RESOLUTION_TIMEOUT_OPTION = "grpc_anchor.etcd_resolution_timeout_ms"

/**
 * What `register({ etcd })` accepts: a client you own, or options for a
 * client each channel opens and closes itself.
 *
 * @since 0.1.0
 */
export type EtcdSource = Etcd3 | Etcd.EtcdOptions

let defaultSource: EtcdSource | undefined

/**
 * Sets (or clears) the etcd client used by `etcd:///SERVICE` targets that
 * name no endpoints.
 *
 * @since 0.1.0
 */
export const setDefaultEtcd = (source: EtcdSource | undefined): void => {
  defaultSource = source
}

const isOptions = (source: EtcdSource): source is Etcd.EtcdOptions => "hosts" in source && !("getAll" in source)

const parseEtcd = (uri: experimental.GrpcUri): Target.EtcdTarget => targetOf(uri, "Etcd")

/** The given hosts, with TLS and credentials from the environment. */
const fromEnvironment = (hosts: ReadonlyArray<string>): Layer.Layer<Etcd.Etcd, Etcd.EtcdError | Error> =>
  Etcd.layerForHosts(hosts).pipe(
    Layer.mapError((error) => (error instanceof Etcd.EtcdError ? error : new Error(`etcd settings: ${error.message}`)))
  )

/** Where this channel's etcd client comes from (see the module doc). */
const etcdLayer = (target: Target.EtcdTarget, options: ChannelOptions): Layer.Layer<Etcd.Etcd, Etcd.EtcdError | Error> => {
  if (target.etcd.length > 0) return fromEnvironment(target.etcd.map(Address.format))
  const provided = options[ETCD_CLIENT_KEY] as Etcd.Etcd.Service | undefined
  if (provided !== undefined) return Layer.succeed(Etcd.Etcd, provided)
  if (defaultSource !== undefined) {
    return isOptions(defaultSource) ? Etcd.layer(defaultSource) : Etcd.layerFromClient(defaultSource)
  }
  const env = process.env["ETCD_ENDPOINTS"]
  if (env !== undefined && env.trim().length > 0) return fromEnvironment(env.split(","))
  throw new Error(
    `${Target.format(target)} names no etcd endpoints: write them in the target ` +
      `(etcd://127.0.0.1:2379/${target.service}#${target.count}), pass a client to register({ etcd }), ` +
      `provide the Etcd layer to AnchoredChannel, or set ETCD_ENDPOINTS`
  )
}

const serverNameOf = (metadata: unknown): string | undefined => {
  if (typeof metadata !== "object" || metadata === null) return undefined
  const name = (metadata as { serverName?: unknown }).serverName
  return typeof name === "string" && name.length > 0 ? name : undefined
}

/**
 * @since 0.1.0
 */
export class EtcdResolver implements experimental.Resolver {
  private readonly target: Target.EtcdTarget
  private readonly canonical: string
  private readonly layer: Layer.Layer<Etcd.Etcd, Etcd.EtcdError | Error>
  private readonly serviceConfig: ReturnType<typeof serviceConfigFor>
  private readonly timeoutMs: number
  private readonly runtime: Runtime.Runtime<never> | undefined
  private fiber: Fiber.RuntimeFiber<void, unknown> | undefined
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
    this.layer = etcdLayer(this.target, options)
    this.serviceConfig = serviceConfigFor(options)
    const timeout = options[RESOLUTION_TIMEOUT_OPTION]
    this.timeoutMs = typeof timeout === "number" && timeout > 0 ? timeout : 5_000
    this.runtime = options[RUNTIME_KEY] as Runtime.Runtime<never> | undefined
  }

  updateResolution(): void {
    // The watch is live: there is nothing to re-resolve once it runs.
    if (this.fiber !== undefined || this.destroyed) return
    // In an Effect app (AnchoredChannel) the watch runs in the app's runtime,
    // so its logs go through the app's logger; otherwise warnings go to stderr.
    this.fiber = this.runtime === undefined
      ? Effect.runFork(this.program().pipe(Effect.provide(stderrLogger)))
      : Runtime.runFork(this.runtime)(this.program())
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
    const watch = Effect.gen(this, function* () {
      const discovery = yield* Discovery.make()
      const onListingError = (error: Etcd.EtcdError) => {
        this.lastError = error.message
      }
      yield* discovery.watch(service, { onListingError }).pipe(
        Stream.runForEach((snapshot) => Effect.sync(() => this.report(snapshot.endpoints)))
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
    return Effect.zipRight(Effect.yieldNow(), Effect.zipLeft(watch, firstResolutionTimeout, { concurrent: true })).pipe(
      Effect.catchAll((error) => Effect.sync(() => this.fail(`etcd discovery of service "${service}" failed: ${error.message}`))),
      // After a failure retrying cannot fix (e.g. bad credentials), the next
      // re-resolution request from the channel starts over.
      Effect.ensuring(Effect.sync(() => {
        this.fiber = undefined
      })),
      Effect.annotateLogs({ target: this.canonical })
    )
  }

  private report(endpoints: ReadonlyArray<EtcdRecord.Endpoint>): void {
    if (this.destroyed) return
    this.resolved = true
    const addresses: Array<experimental.Endpoint> = []
    const counts = new Map<string, number>()
    const serverNames = new Map<string, string>()
    for (const endpoint of endpoints) {
      const parsed = Address.parse(endpoint.address)
      // The record codec has already validated the address; skip defensively.
      if (Either.isLeft(parsed)) continue
      addresses.push({ addresses: [{ host: parsed.right.host, port: parsed.right.port }] })
      counts.set(endpoint.address, this.target.count)
      const name = serverNameOf(endpoint.metadata)
      if (name !== undefined) serverNames.set(endpoint.address, name)
    }
    const resolution: Resolution = { target: this.canonical, counts, serverNames }
    this.listener(
      experimental.statusOrFromValue(addresses),
      { [RESOLUTION_KEY]: resolution },
      this.serviceConfig,
      addresses.length === 0 ? `service "${this.target.service}" has no endpoints registered in etcd` : ""
    )
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
 * Registers the `etcd` scheme with the app's @grpc/grpc-js.
 *
 * @since 0.1.0
 */
export const setup = (): void => {
  experimental.registerResolver(SCHEME, EtcdResolver)
}
