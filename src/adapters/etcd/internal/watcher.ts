/**
 * An etcd3 watcher as a Stream of {@link WatchSignal}s: the watcher is
 * created and its listeners attached when the stream starts, and when the
 * stream ends the listeners are removed and the watch is cancelled, with a
 * bound. Internal to the etcd adapters.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { Etcd3, IWatchResponse, Watcher } from "etcd3"
import type { EtcdError } from "./error.js"

/**
 * What a watcher reports:
 * - `Data`: a watch response (the events of one etcd transaction, or a batch);
 * - `Connected`: the watch stream (re)connected; the header has etcd's revision;
 * - `Broken`: the watch stream broke; etcd3 would resume it on its own, from
 *   a revision that can skip events, so the watch can no longer be trusted;
 * - `Cancelled`: etcd cancelled the watch (e.g. its revision was compacted).
 *
 * `reason` says why the watch ended, for a log line.
 */
export type WatchSignal =
  | { readonly _tag: "Data"; readonly response: IWatchResponse }
  | { readonly _tag: "Connected"; readonly response: IWatchResponse }
  | { readonly _tag: "Broken"; readonly reason: string }
  | { readonly _tag: "Cancelled"; readonly reason: string; readonly error: EtcdError }

/** Bound on cancelling the watch when its stream ends. */
const CANCEL_TIMEOUT = Duration.seconds(2)

/** What the watcher needs of the Etcd service. */
export interface WatchClient {
  readonly client: Etcd3
  readonly toError: (cause: unknown, operation: string) => EtcdError
}

/**
 * The signals of the watcher `create` makes; `operation` names the watch in
 * its errors. The stream never ends on its own: its consumer decides which
 * signal ends the watch.
 */
export const watchSignals = (
  etcd: WatchClient,
  operation: string,
  create: (client: Etcd3) => Watcher
): Stream.Stream<WatchSignal> =>
  Stream.callback<WatchSignal>((queue) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const watcher = create(etcd.client)
        const state = { cancelled: false }
        const onData = (response: IWatchResponse) => Queue.offerUnsafe(queue, { _tag: "Data", response })
        const onConnected = (response: IWatchResponse) => Queue.offerUnsafe(queue, { _tag: "Connected", response })
        const onDisconnected = (cause: unknown) =>
          Queue.offerUnsafe(queue, { _tag: "Broken", reason: `the watch stream broke (${etcd.toError(cause, operation).detail})` })
        const onError = (cause: unknown) => {
          state.cancelled = true
          const error = etcd.toError(cause, operation)
          Queue.offerUnsafe(queue, { _tag: "Cancelled", reason: `etcd cancelled the watch (${error.reason}: ${error.detail})`, error })
        }
        watcher.on("data", onData)
        watcher.on("connected", onConnected)
        watcher.on("disconnected", onDisconnected)
        watcher.on("error", onError)
        return { watcher, state, onData, onConnected, onDisconnected, onError }
      }),
      ({ onConnected, onData, onDisconnected, onError, state, watcher }) =>
        Effect.gen(function* () {
          watcher.off("data", onData)
          watcher.off("connected", onConnected)
          watcher.off("disconnected", onDisconnected)
          // Keep a no-op error listener: an 'error' emitted with no listener
          // would throw inside etcd3's stream handler.
          watcher.off("error", onError)
          watcher.on("error", () => undefined)
          // etcd has already dropped a watcher it cancelled; asking it to
          // cancel again would never be answered.
          if (state.cancelled) return
          // Only the promise is interruptible, so that the timeout can abandon
          // it; the finalizer itself runs to the end.
          yield* Effect.tryPromise(() => watcher.cancel()).pipe(
            Effect.interruptible,
            Effect.timeout(CANCEL_TIMEOUT),
            Effect.catchCause((cause) => Effect.logDebug("cancelling the etcd watcher failed", cause))
          )
        })
    )
  )
