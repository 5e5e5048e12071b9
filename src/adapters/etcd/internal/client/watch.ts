/**
 * One etcd watch that survives its member: a stream opened on the best
 * member with `hasleader`, kept honest by a heartbeat (a progress request
 * when the stream has been quiet; no answer within the member timeout means
 * the member is gone), and re-opened on another member from the revision
 * after the last event it delivered: nothing lost, nothing repeated.
 * Internal to the etcd adapters.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import { backoff } from "../backoff.js"
import { EtcdError } from "../error.js"
import { repeatRounds } from "../rounds.js"
import type { Client } from "./client.js"
import { runOnMember, StreamEnd } from "./memberStream.js"
import { type Bytes, type Event, methods, type WatchResponse } from "./proto.js"

/**
 * What a watch reports:
 * - `Data`: the events of one watch response (one etcd transaction, or a
 *   batch), and the header's revision; no events for a progress
 *   notification (etcd answered the watch's heartbeat while the keys were
 *   quiet);
 * - `Connected`: the watch was (re)created on `host`, whose store is at
 *   `revision` (lower than what was seen before means etcd was restored or
 *   wiped: the consumer should list again);
 * - `Cancelled`: etcd cancelled the watch for a reason no other member can
 *   fix (its start revision was compacted, permission denied). The stream
 *   ends after it.
 */
export type WatchSignal =
  | { readonly _tag: "Data"; readonly events: ReadonlyArray<Event>; readonly revision: bigint }
  | { readonly _tag: "Connected"; readonly revision: bigint; readonly host: string }
  | { readonly _tag: "Cancelled"; readonly reason: string; readonly error: EtcdError }

/** What to watch: a key, or the range [key, range_end), from `startRevision` on. */
export interface WatchRequest {
  readonly key: Bytes
  readonly range_end?: Bytes
  readonly startRevision: bigint
}

/**
 * The watch's signals, until it is cancelled (see {@link WatchSignal});
 * `operation` names it in errors. The stream never fails.
 */
export const watch = (client: Client, operation: string, request: WatchRequest): Stream.Stream<WatchSignal> =>
  Stream.callback<WatchSignal>((queue) =>
    Effect.gen(function* () {
      const memberTimeout = client.config.memberTimeout
      /** Quiet this long, the stream asks for progress. */
      const quiet = Math.max(50, Math.floor(memberTimeout * 0.4))
      const next = yield* Ref.make(request.startRevision)
      /** Watches refused for permission in a row: the first may be a stale token. */
      const denied = yield* Ref.make(0)

      const once = runOnMember(client, operation, methods.watch, (host, send) =>
        Effect.gen(function* () {
          const start = yield* Ref.get(next)
          send({
            create_request: {
              key: request.key,
              ...(request.range_end === undefined ? {} : { range_end: request.range_end }),
              start_revision: start
            }
          })
          const beat = { heard: yield* Clock.currentTimeMillis, askedAt: undefined as number | undefined }
          const cancelled = (response: WatchResponse) =>
            Effect.gen(function* () {
              const reason = response.cancel_reason
              if (response.compact_revision > 0n || reason.includes("compacted")) {
                const error = new EtcdError({
                  reason: "Compacted",
                  operation,
                  cause: undefined,
                  detail: `revision ${start} has been compacted (etcd keeps revisions from ${response.compact_revision})`
                })
                return yield* new StreamEnd({ reason: `etcd cancelled the watch (${error.reason}: ${error.detail})`, refused: error })
              }
              const error = client.toError(new Error(reason.length > 0 ? reason : "watch cancelled"), operation)
              if (error.reason === "PermissionDenied" && client.config.auth !== undefined && (yield* Ref.getAndUpdate(denied, (n) => n + 1)) === 0) {
                // An expired token is refused this way: authenticate once more before giving up.
                yield* client.resetToken
                return yield* new StreamEnd({ reason: `${host} refused the watch (${reason}); trying a fresh token` })
              }
              if (reason.length === 0 || error.reason === "Unavailable") {
                yield* client.failed(host)
                return yield* new StreamEnd({ reason: `${host} cancelled the watch (${reason || "no reason given"})` })
              }
              return yield* new StreamEnd({ reason: `etcd cancelled the watch (${error.reason}: ${error.detail})`, refused: error })
            })
          return {
            onMessage: (response: WatchResponse) =>
              Effect.gen(function* () {
                beat.heard = yield* Clock.currentTimeMillis
                beat.askedAt = undefined
                yield* client.succeeded(host, response)
                if (response.canceled) return yield* cancelled(response)
                if (response.created) {
                  yield* Ref.set(denied, 0)
                  yield* Queue.offer(queue, { _tag: "Connected", revision: response.header.revision, host })
                }
                if (response.events.length > 0) {
                  yield* Ref.set(next, response.events[response.events.length - 1]!.kv.mod_revision + 1n)
                  yield* Queue.offer(queue, { _tag: "Data", events: response.events, revision: response.header.revision })
                } else if (!response.created) {
                  // A progress notification: etcd answers while the keys are quiet.
                  yield* Queue.offer(queue, { _tag: "Data", events: [], revision: response.header.revision })
                }
              }),
            onTick: (now: number) =>
              Effect.gen(function* () {
                if (beat.askedAt !== undefined && now - beat.askedAt >= memberTimeout) {
                  yield* client.failed(host)
                  return yield* new StreamEnd({ reason: `${host} did not answer within ${memberTimeout} ms` })
                }
                if (beat.askedAt === undefined && now - beat.heard >= quiet) {
                  beat.askedAt = now
                  send({ progress_request: {} })
                }
              })
          }
        })
      )

      return yield* repeatRounds(backoff("50 millis", Duration.millis(memberTimeout)), "1 second", () =>
        once.pipe(
          Effect.catchTag("StreamEnd", (end) =>
            end.refused === undefined
              ? Effect.logDebug(`watch moves on: ${end.reason}`).pipe(Effect.annotateLogs({ operation }))
              : Queue.offer(queue, { _tag: "Cancelled", reason: end.reason, error: end.refused }).pipe(
                  Effect.andThen(Queue.end(queue)),
                  Effect.andThen(Effect.never)
                )
          )
        )
      )
    })
  )
