/**
 * One gRPC channel per etcd member, and the two kinds of call the client
 * makes on it: a unary call with a deadline, and a bidirectional stream as
 * an Effect Stream of its messages. Internal to the etcd client.
 */
import * as grpc from "@grpc/grpc-js"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Method } from "./proto.js"

/**
 * Channel options of a member's channel:
 * - keepalive pings while calls are open (a watch, a keep-alive stream), so
 *   a connection to a member that stopped answering (hung process, frozen
 *   VM, black-holed network) is found dead and closed. etcd's server lets a
 *   client ping every 5 s (`--grpc-keepalive-min-time`, default 5 s; faster
 *   pings are answered with GOAWAY too_many_pings), so 5 s is the floor;
 *   the client's own heartbeats (a member timeout on every request, a
 *   progress request on quiet watches, replies to keep-alives) find a
 *   silent member faster.
 * - no limit on received messages: a listing page or watch response may be
 *   large (etcd's Go client has no limit either);
 * - reconnects within a second of a member coming back.
 */
export const channelOptions = (keepaliveTimeMs: number, keepaliveTimeoutMs: number): grpc.ChannelOptions => ({
  "grpc.keepalive_time_ms": keepaliveTimeMs,
  "grpc.keepalive_timeout_ms": keepaliveTimeoutMs,
  "grpc.max_receive_message_length": -1,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1_000,
  // A member's channel is one connection: no DNS round robin inside it.
  "grpc.service_config_disable_resolution": 1
})

/** The `host:port` a channel dials for a configured host (`http://` and `https://` dropped). */
export const dialAddress = (host: string): string => host.replace(/^https?:\/\//, "")

/**
 * A unary call on `client`, bounded by `deadlineMs`; cancelled when
 * interrupted.
 */
export const unary = <Req, Res>(
  client: grpc.Client,
  method: Method<Req, Res>,
  request: Req,
  metadata: grpc.Metadata,
  deadlineMs: number
): Effect.Effect<Res, grpc.ServiceError> =>
  Effect.callback<Res, grpc.ServiceError>((resume) => {
    const call = client.makeUnaryRequest(
      method.path,
      method.request.serialize,
      method.response.deserialize,
      request,
      metadata,
      { deadline: Date.now() + deadlineMs },
      (error, response) => resume(error !== null || response === undefined ? Effect.fail(error!) : Effect.succeed(response))
    )
    return Effect.sync(() => call.cancel())
  })

/** A bidirectional stream: its messages, and a way to send. */
export interface Duplex<Req, Res> {
  /** The messages, until the call ends (the stream ends) or fails. */
  readonly messages: Stream.Stream<Res, grpc.ServiceError>
  /** Sends one request; false once the call is over. */
  readonly send: (request: Req) => boolean
}

/**
 * Opens a bidirectional stream on `client`, cancelled when the scope closes.
 */
export const duplex = <Req, Res>(
  client: grpc.Client,
  method: Method<Req, Res>,
  metadata: grpc.Metadata
): Effect.Effect<Duplex<Req, Res>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const call = yield* Effect.acquireRelease(
      Effect.sync(() => client.makeBidiStreamRequest(method.path, method.request.serialize, method.response.deserialize, metadata, {})),
      (call) =>
        Effect.sync(() => {
          call.removeAllListeners("data")
          call.removeAllListeners("end")
          // An 'error' with no listener would throw; cancelling reports one.
          call.removeAllListeners("error")
          call.on("error", () => undefined)
          call.cancel()
        })
    )
    // Listeners from the start: an 'error' before anyone reads would
    // otherwise be thrown, and messages are kept until they are read.
    const incoming = yield* Queue.unbounded<Res, grpc.ServiceError | Cause.Done>()
    const state = { open: true }
    call.on("data", (message: Res) => Queue.offerUnsafe(incoming, message))
    call.on("error", (error: grpc.ServiceError) => {
      state.open = false
      Queue.failCauseUnsafe(incoming, Cause.fail(error))
    })
    call.on("end", () => {
      state.open = false
      Queue.endUnsafe(incoming)
    })
    const messages = Stream.fromQueue(incoming)
    return {
      messages,
      send: (request) => {
        if (!state.open) return false
        call.write(request)
        return true
      }
    }
  })
