/**
 * The retry loop of the etcd adapters' long-lived work (a registration's
 * leases, a watch that is re-established): rounds that end and start again
 * while their scope is open. Internal to the etcd adapters.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
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
  settled: Duration.DurationInput,
  round: (n: number) => Effect.Effect<unknown, E, R>
): Effect.Effect<never, E, R> =>
  Effect.gen(function* () {
    const settledMillis = Duration.toMillis(settled)
    const pause = yield* Schedule.driver(Schedule.delays(schedule))
    let lastDelay = Duration.decode(settled)
    for (let n = 0; ; n++) {
      const started = yield* Clock.currentTimeMillis
      yield* round(n)
      if ((yield* Clock.currentTimeMillis) - started >= settledMillis) {
        yield* pause.reset
      } else {
        const waited = yield* Effect.option(pause.next(undefined))
        // None: the schedule has ended, and `next` returned at once without waiting.
        if (Option.isNone(waited)) yield* Effect.sleep(lastDelay)
        else if (Duration.greaterThan(waited.value, Duration.zero)) lastDelay = waited.value
      }
    }
  })
