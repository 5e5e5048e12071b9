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
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as EndpointSet from "../../core/EndpointSet.js"
import * as EtcdRecord from "../../core/EtcdRecord.js"
import { backoff, Etcd, type EtcdError, isTransient, type KeyValue, prefixRange, type WatchSignal } from "./Etcd.js"
import { repeatRounds } from "./internal/rounds.js"
import { type RestartReason, ServiceWatch, track, untrack } from "./internal/watchStats.js"

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

/** A stored key-value as a put event, with its mod revision. */
const putOf = (kv: KeyValue) => ({
  event: { _tag: "Put" as const, key: kv.key.toString("utf8"), value: kv.value.toString("utf8") },
  modRevision: kv.mod_revision.toString()
})

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
    const etcd = yield* Etcd
    const pageSize = options?.pageSize ?? 500
    const schedule = options?.relistSchedule ?? relistSchedule

    /**
     * All records under the prefix, paged, every page at the first page's
     * revision; each page is one call, with its own call timeout.
     */
    const list = (prefix: string) =>
      Effect.gen(function* () {
        const range = prefixRange(prefix)
        const kvs: Array<KeyValue> = []
        let revision: bigint | undefined
        let start: Buffer = range.key
        for (;;) {
          const response = yield* etcd.range(`list ${prefix}`, {
            key: start,
            range_end: range.range_end,
            sort_order: "ASCEND",
            sort_target: "KEY",
            limit: pageSize,
            ...(revision === undefined ? {} : { revision })
          })
          revision ??= response.header.revision
          kvs.push(...response.kvs)
          const last = response.kvs[response.kvs.length - 1]
          if (!response.more || last === undefined) return { revision, kvs }
          start = Buffer.concat([last.key, Buffer.from([0])])
        }
      })

    /** The sets of one service, offered to `items` until a failure retrying cannot fix. */
    const run = (service: string, items: Queue.Enqueue<Snapshot>, watchOptions: WatchOptions | undefined) =>
      Effect.gen(function* () {
        const cap = watchOptions?.cap ?? options?.cap ?? EndpointSet.DEFAULT_CAP
        const prefix = EtcdRecord.prefix(service)
        const annotations = { service }

        let set = EndpointSet.empty
        let revision = 0n
        let capWarned = false
        // Counters for metrics, read at collection time; gone with the watch.
        const stats = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const watch = new ServiceWatch(service)
            track(watch)
            return watch
          }),
          (watch) => Effect.sync(() => untrack(watch))
        )
        const contact = Effect.map(Clock.currentTimeMillis, (now) => {
          stats.lastContact = now
        })
        /** key -> mod_revision of the bad record last warned about there. */
        const warned = new Map<string, string>()

        const report = (skipped: ReadonlyArray<EtcdRecord.EtcdRecordError>, revisions: ReadonlyMap<string, string>) =>
          Effect.forEach(
            skipped,
            (error) => {
              if (error.problem === "OverCap") {
                if (capWarned) return Effect.void
                capWarned = true
                return Effect.logWarning(`service ${service} has more than ${cap} endpoint records; the others are ignored`).pipe(
                  Effect.annotateLogs({ ...annotations, key: error.key, cap })
                )
              }
              const modRevision = revisions.get(error.key) ?? ""
              if (warned.get(error.key) === modRevision) return Effect.void
              if (warned.size >= cap) warned.clear()
              warned.set(error.key, modRevision)
              return Effect.logWarning(`skipping a bad endpoint record: ${error.message}`).pipe(
                Effect.annotateLogs({ ...annotations, key: error.key, reason: error.problem, modRevision })
              )
            },
            { discard: true }
          )

        const publish = Effect.suspend(() => {
          const endpoints = EndpointSet.endpoints(set)
          stats.endpoints = endpoints.length
          return Queue.offer(items, { service, endpoints, addresses: endpoints.map((e) => e.address), revision: revision.toString() })
        })

        /** Applies puts/deletes with their mod revisions; forgets warnings of keys that changed. */
        const apply = (
          events: ReadonlyArray<{ readonly event: EndpointSet.Event; readonly modRevision: string }>,
          from: EndpointSet.EndpointSet
        ) =>
          Effect.gen(function* () {
            const revisions = new Map<string, string>()
            for (const { event, modRevision } of events) revisions.set(event.key, modRevision)
            const result = EndpointSet.applyBatch(from, service, events.map((e) => e.event), { cap })
            const bad = new Set(result.skipped.map((e) => e.key))
            for (const key of revisions.keys()) if (!bad.has(key)) warned.delete(key)
            yield* report(result.skipped, revisions)
            return result.set
          })

        /** Failed listings in a row: the first is a warning, the retries after it debug lines. */
        let failedListings = 0
        const relist = Effect.gen(function* () {
          const listing = yield* list(prefix).pipe(
            Effect.tapError((error) => {
              watchOptions?.onListingError?.(error)
              failedListings++
              if (isTransient(error)) stats.restarts.unreachable++
              // Only transient errors are retried; the others end the stream.
              const log = !isTransient(error)
                ? Effect.logError(`listing ${prefix} failed with ${error.reason}; not retrying`)
                : failedListings === 1
                ? Effect.logWarning(`listing ${prefix} failed; keeping the last endpoints and retrying`)
                : Effect.logDebug(`listing ${prefix} failed again (attempt ${failedListings}); still retrying`)
              return log.pipe(Effect.annotateLogs({ ...annotations, reason: error.reason, error: error.message }))
            }),
            Effect.retry({ schedule, while: isTransient })
          )
          yield* contact
          if (failedListings > 0) {
            yield* Effect.logInfo(`listing ${prefix} succeeded after ${failedListings} failed attempts`).pipe(Effect.annotateLogs(annotations))
            failedListings = 0
          }
          const next = yield* apply(listing.kvs.map(putOf), EndpointSet.empty)
          // Keys that disappeared while we were not watching no longer need their warning.
          const listed = new Set(listing.kvs.map((kv) => kv.key.toString("utf8")))
          for (const key of warned.keys()) if (!listed.has(key)) warned.delete(key)
          set = next
          revision = listing.revision
          capWarned = capWarned && set.records.size >= cap
          yield* publish
        })

        /** Why a relist was needed, for the log and the metrics. */
        type Restart = { readonly why: string; readonly reason: RestartReason }
        /** Handles one watch signal; `Some(restart)` when the watch can no longer be trusted. */
        const onSignal = (signal: WatchSignal, connections: { n: number }): Effect.Effect<Option.Option<Restart>, EtcdError> =>
          Effect.gen(function* () {
            yield* contact
            switch (signal._tag) {
              case "Data": {
                if (signal.events.length === 0) return Option.none()
                const events = signal.events.map((e) =>
                  e.type === "DELETE"
                    ? { event: { _tag: "Delete" as const, key: e.kv.key.toString("utf8") }, modRevision: e.kv.mod_revision.toString() }
                    : putOf(e.kv)
                )
                set = yield* apply(events, set)
                for (const e of signal.events) if (e.kv.mod_revision > revision) revision = e.kv.mod_revision
                yield* publish
                return Option.none()
              }
              case "Connected":
                if (signal.revision < revision) {
                  return Option.some({
                    why: `etcd's revision went back from ${revision} to ${signal.revision} on ${signal.host} (restored or wiped)`,
                    reason: "revision_reset" as const
                  })
                }
                // The watch was created again on another member, from where it was: no relist.
                if (connections.n++ > 0) stats.restarts.member_failover++
                return Option.none()
              case "Cancelled":
                if (!isTransient(signal.error)) return yield* signal.error
                return Option.some({ why: signal.reason, reason: signal.error.reason === "Compacted" ? "compacted" as const : "cancelled" as const })
            }
          })

        /** Follows the watch from revision + 1 until it can no longer be trusted; returns why. */
        const follow = Effect.suspend(() => {
          const connections = { n: 0 }
          return etcd.watch(`watch ${prefix}`, { ...prefixRange(prefix), startRevision: revision + 1n }).pipe(
            Stream.mapEffect((signal) => onSignal(signal, connections)),
            Stream.filter(Option.isSome),
            Stream.runHead,
            Effect.map(Option.match({
              onNone: (): Restart => ({ why: "the watch ended", reason: "cancelled" }),
              onSome: (restart) => restart.value
            }))
          )
        })

        // List, follow, list again when the watch ends; a watch that ends
        // right after it started (etcd keeps cancelling it) must not turn
        // into a busy loop of listings.
        return yield* repeatRounds(schedule, "1 second", () =>
          Effect.gen(function* () {
            yield* relist
            const { reason, why } = yield* follow
            stats.restarts[reason]++
            yield* Effect.logInfo(`relisting ${prefix}: ${why}`).pipe(Effect.annotateLogs(annotations))
          })
        )
      })

    const watch = (service: string, watchOptions?: WatchOptions): Stream.Stream<Snapshot, EtcdError> =>
      // Only the latest set matters to a slow consumer; a failure ends the stream after it.
      Stream.callback<Snapshot, EtcdError>((items) => run(service, items, watchOptions), { bufferSize: 1, strategy: "sliding" }).pipe(
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
