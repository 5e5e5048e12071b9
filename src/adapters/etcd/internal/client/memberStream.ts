/**
 * One bidirectional stream on one etcd member, as the watch and the lease
 * keep-alive run it: opened on the best member, fed every message and a
 * heartbeat tick, and ended (to be opened again on another member) when the
 * call breaks, the member is found failing by anyone, or the handlers say
 * so. Internal to the etcd client.
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { type EtcdError, isMemberFault, isStaleToken, isTransient } from "../error.js"
import type { Client } from "./client.js"
import type { Method } from "./proto.js"

/**
 * Why one stream ended: `refused` when etcd refused it for a reason no
 * other member can fix; otherwise it is opened again elsewhere.
 */
export class StreamEnd extends Data.TaggedError("StreamEnd")<{ readonly reason: string; readonly refused?: EtcdError }> {}

/** What a stream does with its messages and its heartbeat ticks (the time in ms); failing ends it. */
export interface Handlers<Res> {
  readonly onMessage: (message: Res) => Effect.Effect<void, StreamEnd>
  readonly onTick: (now: number) => Effect.Effect<void, StreamEnd>
}

/** How often a stream's heartbeat is checked. */
const TICK = Duration.millis(100)

/**
 * Runs one stream of `method` until it ends, always with a {@link StreamEnd}.
 * `start` sends the first requests and gives the handlers. A broken call
 * ends it as the member's fault (the member is marked failed), a stale token
 * (forgotten, so the next stream authenticates again), or etcd's refusal.
 */
export const runOnMember = <Req, Res>(
  client: Client,
  operation: string,
  method: Method<Req, Res>,
  start: (host: string, send: (request: Req) => boolean) => Effect.Effect<Handlers<Res>>
): Effect.Effect<never, StreamEnd> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { host, since, stream } = yield* client
        .open(operation, method)
        .pipe(Effect.mapError((error) => new StreamEnd({ reason: error.message, ...(isTransient(error) ? {} : { refused: error }) })))
      const { onMessage, onTick } = yield* start(host, stream.send)

      const broken = (cause: unknown) =>
        Effect.gen(function* () {
          const error = client.toError(cause, operation)
          if (isStaleToken(cause)) yield* client.resetToken
          else if (isMemberFault(cause)) yield* client.failed(host)
          else return yield* new StreamEnd({ reason: `etcd ended the stream (${error.reason}: ${error.detail})`, refused: error })
          return yield* new StreamEnd({ reason: `the stream on ${host} broke (${error.detail})` })
        })
      const tick = Effect.gen(function* () {
        // Someone else (a request, another stream, a probe) found this member failing.
        if (yield* client.failedSince(host, since)) return yield* new StreamEnd({ reason: `${host} stopped answering` })
        yield* onTick(yield* Clock.currentTimeMillis)
      })

      yield* Stream.merge(
        stream.messages.pipe(
          Stream.mapEffect(onMessage),
          // The stream's own end (from the handlers) passes; a failed call is classified.
          Stream.catch((cause) => (cause instanceof StreamEnd ? Stream.fail(cause) : Stream.fromEffect(broken(cause))))
        ),
        Stream.tick(TICK).pipe(Stream.mapEffect(() => tick)),
        { haltStrategy: "left" }
      ).pipe(Stream.runDrain)
      return yield* new StreamEnd({ reason: `${host} ended the stream` })
    })
  )
