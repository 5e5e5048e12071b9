/**
 * The retry loop of the etcd adapters' long-lived work (a registration's
 * leases, a watch that is re-established): rounds that end and start again
 * while their scope is open. Internal to the etcd adapters.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

/**
 * Runs `round(0)`, `round(1)`, ... forever (until it fails or is
 * interrupted). A round that lasted `settled` or longer is followed at once
 * by the next, with `schedule` started over; a shorter one waits the
 * schedule's next delay first, so a round that keeps ending right after it
 * started (a watch etcd keeps cancelling, a lease lost at once) backs off
 * instead of spinning. Once a finite schedule has ended its last delay is
 * kept (`settled` when it gave none), never none at all.
 */
export const repeatRounds = <E, R>(
  schedule: Schedule.Schedule<unknown>,
  settled: Duration.Input,
  round: (n: number) => Effect.Effect<unknown, E, R>
): Effect.Effect<never, E, R> =>
  Effect.gen(function* () {
    const settledMillis = Duration.toMillis(Duration.fromInputUnsafe(settled))
    let step = yield* Schedule.toStep(schedule)
    let lastDelay = Duration.fromInputUnsafe(settled)
    for (let n = 0; ; n++) {
      const started = yield* Clock.currentTimeMillis
      yield* round(n)
      const now = yield* Clock.currentTimeMillis
      if (now - started >= settledMillis) {
        step = yield* Schedule.toStep(schedule)
        continue
      }
      const delay = yield* step(now, undefined).pipe(
        Effect.map(([, delay]) => delay),
        // The schedule has ended: keep its last delay.
        Effect.catchIf(Cause.isDone, () => Effect.succeed(lastDelay))
      )
      if (Duration.isGreaterThan(delay, Duration.zero)) lastDelay = delay
      yield* Effect.sleep(lastDelay)
    }
  })
