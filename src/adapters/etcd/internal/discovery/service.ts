/**
 * Discovery's watch of one service: list, follow the watch from the
 * listing's revision + 1, list again when the watch can no longer be
 * trusted; each complete endpoint set is offered to the stream's queue, bad
 * records are warned about once, and the watch's counters are kept for
 * metrics. Internal; `Discovery.watch` wraps it in a Stream.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as EndpointSet from "../../../../core/EndpointSet.js"
import * as EtcdRecord from "../../../../core/EtcdRecord.js"
import type { Snapshot, WatchOptions } from "../../Discovery.js"
import { type Etcd, type EtcdError, isTransient, prefixRange, type WatchSignal } from "../../Etcd.js"
import { repeatRounds } from "../rounds.js"
import { type RestartReason, ServiceWatch, track, untrack } from "../watchStats.js"
import { list, putOf } from "./listing.js"

/** What every service watch of one Discovery shares. */
export interface Watcher {
  readonly etcd: Etcd.Shape
  /** Records per listing page. */
  readonly pageSize: number
  /** Retry schedule of listings, and the pacing of relists. */
  readonly schedule: Schedule.Schedule<unknown>
  /** The Discovery's default cap on records per service (a watch's own wins). */
  readonly cap: number | undefined
}

/** The sets of one service, offered to `items` until a failure retrying cannot fix. */
export const watchService = (
  watcher: Watcher,
  service: string,
  items: Queue.Enqueue<Snapshot>,
  watchOptions: WatchOptions | undefined
) =>
  Effect.gen(function* () {
    const { etcd, schedule } = watcher
    const cap = watchOptions?.cap ?? watcher.cap ?? EndpointSet.DEFAULT_CAP
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
      const listing = yield* list(etcd, prefix, watcher.pageSize).pipe(
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
