/**
 * The backoff of the etcd adapters, as an Effect `Schedule`. Internal; `backoff` is
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
