/**
 * The backoff of the etcd adapters, as an Effect `Schedule` and as the
 * `IBackoff` etcd3 uses to re-open its watch stream. Internal; `backoff` is
 * re-exported by the public `Etcd` module.
 */
import * as Duration from "effect/Duration"
import * as Schedule from "effect/Schedule"

/**
 * The retry schedule of the etcd adapters: exponential from `base`, each
 * delay capped at `cap`, jittered (x0.8..1.2), forever. Callers bound it
 * themselves (a scope, a `while`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd } from "grpc-anchor"
 * const listing = Effect.succeed([]).pipe(Effect.retry(Etcd.backoff("100 millis", "2 seconds")))
 * ```
 *
 * @since 0.1.0
 */
export const backoff = (base: Duration.Input, cap: Duration.Input): Schedule.Schedule<Duration.Duration> =>
  Schedule.min([Schedule.exponential(base, 2), Schedule.spaced(cap)]).pipe(Schedule.jittered)

/** cockatiel's `IBackoff`, as etcd3 calls it: `duration` now, `next()` for the one after. */
interface WatchBackoff {
  readonly duration: number
  next(): WatchBackoff
}

/**
 * etcd3's delay before it re-opens a broken watch stream: from `baseMillis`,
 * doubling, at most `capMillis`, jittered. etcd3's default grows to 30 s,
 * which after a long etcd outage would leave every watch down for up to 30 s
 * after etcd is back.
 */
export const watchBackoff = (baseMillis: number, capMillis: number): { next(): WatchBackoff } => {
  const at = (attempt: number): WatchBackoff => ({
    duration: Math.min(capMillis, baseMillis * 2 ** attempt) * (0.8 + 0.4 * Math.random()),
    next: () => at(Math.min(attempt + 1, 30))
  })
  return { next: () => at(0) }
}
