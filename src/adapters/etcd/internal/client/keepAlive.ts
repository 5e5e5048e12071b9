/**
 * Keeping one lease alive through a cluster: keep-alives every TTL/3 on a
 * stream opened on the best member with `hasleader`; a keep-alive left
 * unanswered for the member timeout, a broken stream or a member without a
 * leader moves the stream to another member at once, well within the TTL.
 * The lease is reported lost only when etcd says so (a TTL of 0: expired or
 * revoked), never from the client's clock: a lease etcd restored after a
 * restart is kept. Internal to the etcd adapters.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { backoff } from "../backoff.js"
import { EtcdError } from "../error.js"
import { repeatRounds } from "../rounds.js"
import type { Client } from "./client.js"
import { runOnMember, StreamEnd } from "./memberStream.js"
import { type LeaseKeepAliveResponse, methods } from "./proto.js"

/**
 * What keeping a lease alive reports:
 * - `Alive`: etcd renewed the lease (`ttl` seconds left) through `host`;
 * - `Failing`: a member did not renew it (why in `error`); another is tried;
 * - `Lost`: etcd says the lease is gone (expired or revoked). The stream
 *   ends after it.
 */
export type KeepAliveSignal =
  | { readonly _tag: "Alive"; readonly ttl: number; readonly host: string }
  | { readonly _tag: "Failing"; readonly error: EtcdError }
  | { readonly _tag: "Lost"; readonly error: EtcdError }

/** The keep-alive signals of lease `id` (granted with `ttl` seconds), until it is lost. */
export const keepAlive = (client: Client, id: bigint, ttl: number): Stream.Stream<KeepAliveSignal> =>
  Stream.callback<KeepAliveSignal>((queue) =>
    Effect.gen(function* () {
      const operation = `keep-alive of lease ${id.toString(16)}`
      const memberTimeout = client.config.memberTimeout
      const interval = Math.max(100, Math.floor((ttl * 1_000) / 3))

      const once = runOnMember(client, operation, methods.leaseKeepAlive, (host, send) =>
        Effect.gen(function* () {
          const beat = { sentAt: yield* Clock.currentTimeMillis, answered: false }
          send({ ID: id })
          return {
            onMessage: (response: LeaseKeepAliveResponse) =>
              Effect.gen(function* () {
                yield* client.succeeded(host, response)
                if (response.TTL <= 0n) {
                  const error = new EtcdError({ reason: "NotFound", operation, cause: undefined, detail: `lease ${id.toString(16)} is expired or revoked` })
                  return yield* new StreamEnd({ reason: error.detail, refused: error })
                }
                beat.answered = true
                yield* Queue.offer(queue, { _tag: "Alive", ttl: Number(response.TTL), host })
              }),
            onTick: (now: number) =>
              Effect.gen(function* () {
                if (!beat.answered && now - beat.sentAt >= memberTimeout) {
                  yield* client.failed(host)
                  return yield* new StreamEnd({ reason: `${host} did not answer a keep-alive within ${memberTimeout} ms` })
                }
                if (beat.answered && now - beat.sentAt >= interval) {
                  beat.sentAt = now
                  beat.answered = false
                  send({ ID: id })
                }
              })
          }
        })
      )

      return yield* repeatRounds(backoff("50 millis", Duration.millis(memberTimeout)), Duration.millis(interval), () =>
        once.pipe(
          Effect.catchTag("StreamEnd", (end) =>
            end.refused?.reason === "NotFound"
              ? Queue.offer(queue, { _tag: "Lost", error: end.refused }).pipe(Effect.andThen(Queue.end(queue)), Effect.andThen(Effect.never))
              : Queue.offer(queue, {
                  _tag: "Failing",
                  error: end.refused ?? new EtcdError({ reason: "Unavailable", operation, cause: undefined, detail: end.reason })
                })
          )
        )
      )
    })
  )
