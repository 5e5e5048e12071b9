/**
 * Follows the endpoints of a service registered in etcd (Go's
 * `naming/endpoints` records under `${service}/`) as a Stream of complete
 * endpoint sets.
 *
 * How it stays exact:
 * - it lists the prefix (paged, all pages at the listing's revision), then
 *   watches from that revision + 1, so no event between the two is missed;
 * - the events of one watch response (one etcd transaction, or one batch of
 *   them) are applied together, so a consumer never sees half a transaction;
 * - whenever the watch cannot continue exactly where it was (etcd cancelled
 *   it because the revision was compacted, or etcd's revision went backwards
 *   after a restore or wipe) it lists again from scratch and diffs; a stream
 *   that merely broke (its member died, hung or lost its leader) is not such
 *   a case: the watch moves to another member from the revision after its
 *   last event, and nothing is listed again;
 * - while etcd is unreachable it keeps the last set (emits nothing) and lists
 *   again with {@link relistSchedule} until etcd answers.
 *
 * @example
 * ```ts
 * import { Discovery, Etcd } from "grpc-anchor"
 * const program = Effect.gen(function* () {
 *   const discovery = yield* Discovery.Discovery
 *   yield* discovery.watch("my-service").pipe(
 *     Stream.runForEach((snapshot) => Effect.log(snapshot.addresses))
 *   )
 * }).pipe(Effect.provide(Discovery.layer().pipe(Layer.provide(Etcd.layerConfig(Etcd.config)))))
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as EtcdRecord from "../../core/EtcdRecord.js"
import { backoff, Etcd, type EtcdError } from "./Etcd.js"
import { type Watcher, watchService } from "./internal/discovery/service.js"

/**
 * One complete view of a service: its endpoints (one per address, ordered by
 * etcd key), their addresses, and the etcd revision the view reflects.
 * Consecutive snapshots of a stream always differ in their endpoints
 * (addresses, or the metadata of an address).
 *
 * @example
 * ```ts
 * import { Discovery } from "grpc-anchor"
 * const describe = (snapshot: Discovery.Snapshot) => `${snapshot.service}@${snapshot.revision}: ${snapshot.addresses.join(", ")}`
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Snapshot {
  readonly service: string
  readonly endpoints: ReadonlyArray<EtcdRecord.Endpoint>
  readonly addresses: ReadonlyArray<string>
  /** The etcd revision (decimal) this snapshot reflects. */
  readonly revision: string
}

/**
 * Options of {@link Discovery.Shape.watch}.
 *
 * @example
 * ```ts
 * import { Discovery } from "grpc-anchor"
 * const options: Discovery.WatchOptions = { cap: 500, onListingError: (error) => console.error(error.message) }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface WatchOptions {
  /** At most this many records per service (default 10,000); more are ignored with one warning. */
  readonly cap?: number
  /** Told of every failed listing (retried or not), e.g. to say why no set has come yet. */
  readonly onListingError?: (error: EtcdError) => void
}

/**
 * The Discovery service's shape.
 *
 * @since 0.1.0
 */
export declare namespace Discovery {
  /**
   * What the Discovery service offers.
   *
   * @example
   * ```ts
   * import { Effect, Stream } from "effect"
   * import { Discovery } from "grpc-anchor"
   * const first = Discovery.Discovery.use((discovery) => Stream.runHead(discovery.watch("billing")))
   * ```
   *
   * @since 0.3.0
   */
  export interface Shape {
    /**
     * The endpoint sets of `service`, the first as soon as the first listing
     * succeeds, then one whenever the set changes. The stream fails only on
     * an error retrying cannot fix (`Unauthenticated`, `PermissionDenied`,
     * `InvalidArgument`, `Closed`); everything else is retried.
     */
    readonly watch: (service: string, options?: WatchOptions) => Stream.Stream<Snapshot, EtcdError>
  }
  /**
   * The former name of {@link Shape}.
   *
   * @deprecated use `Discovery.Shape`
   * @since 0.1.0
   */
  export type Service = Shape
}

/**
 * The Discovery service: endpoint sets of services registered in etcd.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Stream } from "effect"
 * import { Discovery, Etcd } from "grpc-anchor"
 * const program = Effect.gen(function* () {
 *   const discovery = yield* Discovery.Discovery
 *   yield* discovery.watch("billing").pipe(Stream.runForEach((snapshot) => Effect.log(snapshot.addresses)))
 * }).pipe(Effect.provide(Discovery.layer().pipe(Layer.provide(Etcd.layerConfig(Etcd.config)))))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Discovery extends Context.Service<Discovery, Discovery.Shape>()("grpc-anchor/Discovery") {}

/**
 * How often a listing is retried while etcd does not answer: from 100 ms,
 * doubling, at most 1 s apart, jittered.
 *
 * @example
 * ```ts
 * import { Discovery } from "grpc-anchor"
 * const DiscoveryLive = Discovery.layer({ relistSchedule: Discovery.relistSchedule })
 * ```
 *
 * @category schedules
 * @since 0.1.0
 */
export const relistSchedule: Schedule.Schedule<Duration.Duration> = backoff("100 millis", "1 second")

/**
 * Options of the Discovery service.
 *
 * @example
 * ```ts
 * import { Discovery } from "grpc-anchor"
 * const options: Discovery.DiscoveryOptions = { cap: 1_000, pageSize: 200 }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface DiscoveryOptions {
  /** Default cap on records per service (10,000). */
  readonly cap?: number
  /** Records per listing page (500). */
  readonly pageSize?: number
  /**
   * Retry schedule of listings (default {@link relistSchedule}); it also
   * spaces listings when watches keep ending at once (once a finite one has
   * ended, its last delay is kept there).
   */
  readonly relistSchedule?: Schedule.Schedule<unknown>
}

const sameSnapshot = (a: Snapshot, b: Snapshot): boolean =>
  a.endpoints.length === b.endpoints.length &&
  a.endpoints.every((endpoint, i) => EtcdRecord.sameEndpoint(endpoint, b.endpoints[i]!))

/**
 * Builds the Discovery service on the {@link Etcd} client in context.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Discovery, Etcd } from "grpc-anchor"
 * const program = Effect.gen(function* () {
 *   const discovery = yield* Discovery.make({ pageSize: 100 })
 *   return yield* Stream.runHead(discovery.watch("billing"))
 * }).pipe(Effect.provide(Etcd.layer({ hosts: "127.0.0.1:2379" })))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options?: DiscoveryOptions): Effect.Effect<Discovery.Shape, never, Etcd> =>
  Effect.gen(function* () {
    const watcher: Watcher = {
      etcd: yield* Etcd,
      pageSize: options?.pageSize ?? 500,
      schedule: options?.relistSchedule ?? relistSchedule,
      cap: options?.cap
    }

    const watch = (service: string, watchOptions?: WatchOptions): Stream.Stream<Snapshot, EtcdError> =>
      // Only the latest set matters to a slow consumer; a failure ends the stream after it.
      Stream.callback<Snapshot, EtcdError>((items) => watchService(watcher, service, items, watchOptions), { bufferSize: 1, strategy: "sliding" }).pipe(
        Stream.changesWith(sameSnapshot)
      )

    return { watch }
  })

/**
 * A Discovery layer on the {@link Etcd} layer.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Discovery, Etcd } from "grpc-anchor"
 * const DiscoveryLive = Discovery.layer().pipe(Layer.provide(Etcd.layer({ hosts: "127.0.0.1:2379" })))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: DiscoveryOptions): Layer.Layer<Discovery, never, Etcd> => Layer.effect(Discovery, make(options))

/**
 * A Discovery layer with options read through `Config`, e.g. {@link config}
 * or `{ cap: Config.Int("DISCOVERY_MAX_ENDPOINTS") }`.
 *
 * @example
 * ```ts
 * import { Discovery } from "grpc-anchor"
 * const DiscoveryLive = Discovery.layerConfig(Discovery.config)
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerConfig = (config: Config.Wrap<DiscoveryOptions>): Layer.Layer<Discovery, Config.ConfigError, Etcd> =>
  Layer.effect(Discovery, Effect.flatMap(Config.unwrap(config), make))

/**
 * The default Discovery config: `DISCOVERY_MAX_ENDPOINTS` (optional cap, a
 * whole number).
 *
 * @example
 * ```ts
 * import { Discovery } from "grpc-anchor"
 * const DiscoveryLive = Discovery.layerConfig(Discovery.config)
 * ```
 *
 * @category config
 * @since 0.1.0
 */
export const config: Config.Config<DiscoveryOptions> = Config.option(Config.Int("DISCOVERY_MAX_ENDPOINTS")).pipe(
  Config.map((cap) => (Option.isSome(cap) ? { cap: cap.value } : {}))
)
