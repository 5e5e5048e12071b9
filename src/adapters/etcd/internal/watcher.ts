/**
 * An etcd3 watcher as a scoped resource: its listeners are attached on
 * acquire and removed on release, and the watch is cancelled with a bound.
 * Internal to the etcd adapters.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { IWatchResponse, Watcher } from "etcd3"

export interface WatcherListeners {
  readonly data: (response: IWatchResponse) => void
  readonly connected?: (response: IWatchResponse) => void
  readonly disconnected: (error: unknown) => void
  /** etcd cancelled the watch (e.g. its revision was compacted). */
  readonly error: (error: unknown) => void
}

export const scopedWatcher = (
  create: () => Watcher,
  listeners: WatcherListeners,
  cancelTimeout: Duration.DurationInput
): Effect.Effect<Watcher, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const watcher = create()
        const state = { errored: false }
        const onError = (error: unknown) => {
          state.errored = true
          listeners.error(error)
        }
        watcher.on("data", listeners.data)
        if (listeners.connected !== undefined) watcher.on("connected", listeners.connected)
        watcher.on("disconnected", listeners.disconnected)
        watcher.on("error", onError)
        return { watcher, state, onError }
      }),
      ({ onError, state, watcher }) =>
        Effect.gen(function* () {
          watcher.off("data", listeners.data)
          if (listeners.connected !== undefined) watcher.off("connected", listeners.connected)
          watcher.off("disconnected", listeners.disconnected)
          // Keep a no-op error listener: an 'error' emitted with no listener
          // would throw inside etcd3's stream handler.
          watcher.off("error", onError)
          watcher.on("error", () => undefined)
          // etcd has already dropped a watcher it cancelled; asking it to
          // cancel again would never be answered.
          if (state.errored) return
          // Only the promise is interruptible, so that the timeout can abandon
          // it; the finalizer itself runs to the end.
          yield* Effect.tryPromise(() => watcher.cancel()).pipe(
            Effect.interruptible,
            Effect.timeout(cancelTimeout),
            Effect.catchAllCause((cause) => Effect.logDebug("cancelling the etcd watcher failed", cause))
          )
        })
    ),
    ({ watcher }) => watcher
  )
