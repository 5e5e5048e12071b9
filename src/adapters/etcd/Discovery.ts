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
 * - whenever the watch cannot be trusted to continue exactly where it was (its
 *   stream broke, etcd cancelled it because the revision was compacted, or
 *   etcd's revision went backwards after a restore or wipe) it lists again
 *   from scratch and diffs: etcd3 resumes a broken watch from the response
 *   header's revision, which can skip events, so this adapter never relies on
 *   that resume;
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
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { IRangeResponse, IWatchResponse } from "etcd3"
import { Range } from "etcd3"
import * as EtcdRecord from "../../core/EtcdRecord.js"
import { backoff, Etcd, type EtcdError, isTransient } from "./Etcd.js"
import { scopedWatcher } from "./internal/watcher.js"

/**
 * One complete view of a service: its endpoints (one per address, ordered by
 * etcd key), their addresses, and the etcd revision the view reflects.
 * Consecutive snapshots of a stream always differ in their endpoints
 * (addresses, or the metadata of an address).
 *
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
 * Options of {@link Discovery.Service.watch}.
 *
 * @since 0.1.0
 */
export interface WatchOptions {
  /** At most this many records per service (default 10,000); more are ignored with one warning. */
  readonly cap?: number
  /** Told of every failed listing (retried or not), e.g. to say why no set has come yet. */
  readonly onListingError?: (error: EtcdError) => void
}

/**
 * The Discovery service.
 *
 * @since 0.1.0
 */
export declare namespace Discovery {
  /**
   * @since 0.1.0
   */
  export interface Service {
    /**
     * The endpoint sets of `service`, the first as soon as the first listing
     * succeeds, then one whenever the set changes. The stream fails only on
     * an error retrying cannot fix (`Unauthenticated`, `PermissionDenied`,
     * `InvalidArgument`, `Closed`); everything else is retried.
     */
    readonly watch: (service: string, options?: WatchOptions) => Stream.Stream<Snapshot, EtcdError>
  }
}

/**
 * The Discovery service tag.
 *
 * @since 0.1.0
 */
export class Discovery extends Context.Tag("grpc-anchor/Discovery")<Discovery, Discovery.Service>() {}

/**
 * How often a listing is retried while etcd does not answer: from 100 ms,
 * doubling, at most 2 s apart, jittered.
 *
 * @since 0.1.0
 */
export const relistSchedule: Schedule.Schedule<Duration.Duration> = backoff("100 millis", "2 seconds")

/**
 * Options of the Discovery service.
 *
 * @since 0.1.0
 */
export interface DiscoveryOptions {
  /** Default cap on records per service (10,000). */
  readonly cap?: number
  /** Records per listing page (500). */
  readonly pageSize?: number
  /** Retry schedule of listings (default {@link relistSchedule}). */
  readonly relistSchedule?: Schedule.Schedule<unknown>
}

type Signal =
  | { readonly _tag: "Data"; readonly response: IWatchResponse }
  | { readonly _tag: "Connected"; readonly response: IWatchResponse }
  | { readonly _tag: "Disconnected"; readonly error: unknown }
  | { readonly _tag: "Error"; readonly error: unknown }

type Item = { readonly _tag: "Snapshot"; readonly snapshot: Snapshot } | { readonly _tag: "Failed"; readonly error: EtcdError }

const sameSnapshot = (a: Snapshot, b: Snapshot): boolean =>
  a.endpoints.length === b.endpoints.length &&
  a.endpoints.every((endpoint, i) => EtcdRecord.sameEndpoint(endpoint, b.endpoints[i]!))

const CANCEL_TIMEOUT = Duration.seconds(2)

/**
 * Builds the Discovery service on the {@link Etcd} client in context.
 *
 * @since 0.1.0
 */
export const make = (options?: DiscoveryOptions): Effect.Effect<Discovery.Service, never, Etcd> =>
  Effect.gen(function* () {
    const etcd = yield* Etcd
    const pageSize = options?.pageSize ?? 500
    const schedule = options?.relistSchedule ?? relistSchedule

    /** All records under the prefix, paged, every page at the first page's revision. */
    const list = (prefix: string) =>
      etcd.use(`list ${prefix}`, async (client) => {
        const range = Range.prefix(prefix)
        const kvs: Array<IRangeResponse["kvs"][number]> = []
        let revision: string | undefined
        let start = range.start
        for (let page = 0; page < 1_000_000; page++) {
          let builder = client.getAll().inRange({ start, end: range.end }).sort("Key", "Ascend").limit(pageSize)
          if (revision !== undefined) builder = builder.revision(revision)
          const response = await builder.exec()
          revision ??= response.header.revision
          kvs.push(...response.kvs)
          const last = response.kvs[response.kvs.length - 1]
          if (!response.more || last === undefined) break
          start = Buffer.concat([last.key, Buffer.from([0])])
        }
        return { revision: BigInt(revision ?? "0"), kvs }
      })

    const watch = (service: string, watchOptions?: WatchOptions): Stream.Stream<Snapshot, EtcdError> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const cap = watchOptions?.cap ?? options?.cap ?? EtcdRecord.DEFAULT_CAP
          const prefix = EtcdRecord.prefix(service)
          const items = yield* Effect.acquireRelease(Queue.sliding<Item>(1), Queue.shutdown)
          const annotations = { service }

          let set = EtcdRecord.empty
          let revision = 0n
          let capWarned = false
          /** key -> mod_revision of the bad record last warned about there. */
          const warned = new Map<string, string>()

          const report = (skipped: ReadonlyArray<EtcdRecord.EtcdRecordError>, revisions: ReadonlyMap<string, string>) =>
            Effect.forEach(
              skipped,
              (error) => {
                if (error.problem === "OverCap") {
                  if (capWarned) return Effect.void
                  capWarned = true
                  return Effect.logWarning(
                    `service ${service} has more than ${cap} endpoint records; the others are ignored`
                  ).pipe(Effect.annotateLogs({ ...annotations, key: error.key, cap }))
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
            const endpoints = EtcdRecord.endpoints(set)
            return Queue.offer(items, {
              _tag: "Snapshot",
              snapshot: { service, endpoints, addresses: endpoints.map((e) => e.address), revision: revision.toString() }
            })
          })

          /** Applies puts/deletes with their mod revisions; forgets warnings of keys that changed. */
          const apply = (events: ReadonlyArray<{ readonly event: EtcdRecord.Event; readonly modRevision: string }>, from: EtcdRecord.EndpointSet) =>
            Effect.gen(function* () {
              const revisions = new Map<string, string>()
              for (const { event, modRevision } of events) revisions.set(event.key, modRevision)
              const result = EtcdRecord.applyBatch(
                from,
                service,
                events.map((e) => e.event),
                { cap }
              )
              const bad = new Set(result.skipped.map((e) => e.key))
              for (const key of revisions.keys()) if (!bad.has(key)) warned.delete(key)
              yield* report(result.skipped, revisions)
              return result.set
            })

          const relist = Effect.gen(function* () {
            const listing = yield* list(prefix).pipe(
              Effect.tapError((error) => {
                watchOptions?.onListingError?.(error)
                // Only transient errors are retried; the others end the stream.
                const log = isTransient(error)
                  ? Effect.logWarning(`listing ${prefix} failed; keeping the last endpoints and retrying`)
                  : Effect.logError(`listing ${prefix} failed with ${error.reason}; not retrying`)
                return log.pipe(Effect.annotateLogs({ ...annotations, reason: error.reason, error: error.message }))
              }),
              Effect.retry({ schedule, while: isTransient })
            )
            const next = yield* apply(
              listing.kvs.map((kv) => ({
                event: { _tag: "Put" as const, key: kv.key.toString("utf8"), value: kv.value.toString("utf8") },
                modRevision: kv.mod_revision
              })),
              EtcdRecord.empty
            )
            // Keys that disappeared while we were not watching no longer need their warning.
            const listed = new Set(listing.kvs.map((kv) => kv.key.toString("utf8")))
            for (const key of warned.keys()) if (!listed.has(key)) warned.delete(key)
            set = next
            revision = listing.revision
            capWarned = capWarned && set.records.size >= cap
            yield* publish
          })

          /** Follows the watch from revision + 1 until it can no longer be trusted; returns why. */
          const follow = Effect.scoped(
            Effect.gen(function* () {
              const signals = yield* Queue.unbounded<Signal>()
              yield* scopedWatcher(
                () => etcd.client.watch().prefix(prefix).startRevision((revision + 1n).toString()).watcher(),
                {
                  data: (response) => Queue.unsafeOffer(signals, { _tag: "Data", response }),
                  connected: (response) => Queue.unsafeOffer(signals, { _tag: "Connected", response }),
                  disconnected: (error) => Queue.unsafeOffer(signals, { _tag: "Disconnected", error }),
                  error: (error) => Queue.unsafeOffer(signals, { _tag: "Error", error })
                },
                CANCEL_TIMEOUT
              )

              for (let batches = 0; ; batches++) {
                const signal = yield* Queue.take(signals)
                switch (signal._tag) {
                  case "Data": {
                    const events = signal.response.events.map((e) => ({
                      event:
                        e.type === "Delete"
                          ? { _tag: "Delete" as const, key: e.kv.key.toString("utf8") }
                          : { _tag: "Put" as const, key: e.kv.key.toString("utf8"), value: e.kv.value.toString("utf8") },
                      modRevision: e.kv.mod_revision
                    }))
                    set = yield* apply(events, set)
                    for (const e of signal.response.events) {
                      const r = BigInt(e.kv.mod_revision)
                      if (r > revision) revision = r
                    }
                    if (events.length > 0) yield* publish
                    break
                  }
                  case "Connected": {
                    const current = BigInt(signal.response.header.revision)
                    if (current < revision) {
                      return `etcd's revision went back from ${revision} to ${current} (restored or wiped)`
                    }
                    break
                  }
                  case "Disconnected":
                    return `the watch stream broke (${etcd.toError(signal.error, "watch").detail})`
                  case "Error": {
                    const error = etcd.toError(signal.error, `watch ${prefix}`)
                    if (!isTransient(error)) return yield* error
                    return `etcd cancelled the watch (${error.reason}: ${error.detail})`
                  }
                }
              }
            })
          )

          const loop = Effect.gen(function* () {
            // A watch that ends right after it started (etcd keeps cancelling
            // it) must not turn into a busy loop of listings.
            const pause = yield* Schedule.driver(schedule)
            for (let round = 0; ; round++) {
              yield* relist
              const started = yield* Clock.currentTimeMillis
              const why = yield* follow
              yield* Effect.logInfo(`relisting ${prefix}: ${why}`).pipe(Effect.annotateLogs(annotations))
              if ((yield* Clock.currentTimeMillis) - started < 1_000) {
                yield* pause.next(undefined).pipe(Effect.ignore)
              } else {
                yield* pause.reset
              }
            }
          })

          yield* loop.pipe(
            Effect.catchAllCause((cause) =>
              Cause.isInterruptedOnly(cause)
                ? Effect.void
                : Queue.offer(items, {
                    _tag: "Failed",
                    error: Option.getOrElse(Cause.failureOption(cause), () =>
                      etcd.toError(Cause.squash(cause), `watch ${prefix}`)
                    )
                  })
            ),
            Effect.forkScoped
          )

          return Stream.fromQueue(items).pipe(
            Stream.mapEffect((item) => (item._tag === "Failed" ? item.error : Effect.succeed(item.snapshot))),
            Stream.changesWith(sameSnapshot)
          )
        })
      )

    return { watch }
  })

/**
 * A Discovery layer on the {@link Etcd} layer.
 *
 * @since 0.1.0
 */
export const layer = (options?: DiscoveryOptions): Layer.Layer<Discovery, never, Etcd> =>
  Layer.effect(Discovery, make(options))

/**
 * A Discovery layer with options read through `Config`, e.g.
 * `{ cap: Config.integer("DISCOVERY_MAX_ENDPOINTS") }`.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Config.Wrap<DiscoveryOptions>
): Layer.Layer<Discovery, ConfigError.ConfigError, Etcd> =>
  Layer.effect(Discovery, Effect.flatMap(Config.unwrap(config), make))

/**
 * The default Discovery config: `DISCOVERY_MAX_ENDPOINTS` (optional cap).
 *
 * @since 0.1.0
 */
export const config: Config.Config<DiscoveryOptions> = Config.option(Config.integer("DISCOVERY_MAX_ENDPOINTS")).pipe(
  Config.map((cap) => (Option.isSome(cap) ? { cap: cap.value } : {}))
)
