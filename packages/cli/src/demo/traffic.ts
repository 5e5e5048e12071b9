/**
 * The demo's calls: `concurrency` fibers, each making one echo call at a
 * time, recording every answer and failure in the state of the phase it
 * started in. Stopping lets each fiber finish its call in flight.
 */
import * as grpc from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import { call, type Echo } from "../echo/echo.js"
import { oneLine } from "../internal/common.js"
import { CALL_DEADLINE_MS, currentPhase, now, type State } from "./state.js"

/** The running traffic; `stop` waits (bounded) for the calls in flight. */
export interface Traffic {
  readonly stop: Effect.Effect<void>
}

const errorText = (error: unknown): string => {
  const e = error as grpc.ServiceError
  return oneLine(typeof e.code === "number" ? `${grpc.status[e.code]}: ${e.details}` : String(error))
}

/**
 * Starts the traffic in the scope (stopped when it closes, if not before);
 * `changed` runs after every call, so waits on the call counts wake up.
 */
export const start = (
  state: State,
  client: Echo,
  concurrency: number,
  changed: Effect.Effect<void>
): Effect.Effect<Traffic, never, Scope.Scope> =>
  Effect.gen(function* () {
    let stopping = false
    const oneCall = Effect.gen(function* () {
      const phase = currentPhase(state)
      const startMs = now(state)
      state.inFlight++
      const result = yield* Effect.result(
        Effect.tryPromise({ try: () => call(client, { deadlineMs: CALL_DEADLINE_MS }), catch: (error) => error })
      )
      state.inFlight--
      phase.calls++
      if (result._tag === "Success") {
        const server = result.success
        state.okTotal++
        phase.answers.set(server, (phase.answers.get(server) ?? 0) + 1)
        const backend = state.backends.find((b) => b.name === server)
        if (backend !== undefined) backend.answered++
      } else {
        const endMs = now(state)
        state.failedTotal++
        phase.failed++
        if (state.killSeenMs !== undefined && startMs >= state.killSeenMs) state.failedAfterKillSeen++
        if (state.killSentMs === undefined || endMs < state.killSentMs) state.failedBeforeKill++
        if (state.failures.length < 1_000) {
          state.failures.push({ phase: phase.name, startMs: Math.round(startMs), endMs: Math.round(endMs), error: errorText(result.failure) })
        }
      }
      yield* changed
    })
    // A call is not interrupted (grpc-js would count it as cancelled): stopping ends each loop after its call.
    const loop = oneCall.pipe(Effect.uninterruptible, Effect.repeat({ while: () => !stopping }))
    const fibers = yield* Effect.forEach(Array.from({ length: concurrency }), () => Effect.forkScoped(loop))
    const stop = Effect.suspend(() => {
      stopping = true
      return Fiber.awaitAll(fibers).pipe(Effect.timeout(CALL_DEADLINE_MS + 1_000), Effect.ignore)
    })
    yield* Effect.addFinalizer(() => stop)
    return { stop }
  })
