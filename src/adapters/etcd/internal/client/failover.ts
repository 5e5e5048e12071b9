/**
 * A unary request with failover (clientv3's retry over endpoints, with
 * hedging): rounds over the members, best first, each asking the next member
 * when an attempt fails or stays unanswered for a while, until one answers,
 * etcd refuses the request, or the call timeout is over. Internal to the
 * etcd client.
 */
import type * as grpc from "@grpc/grpc-js"
import { status as GrpcStatus } from "@grpc/grpc-js"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { EtcdError, isMemberFault, isStaleToken, messageOf, tlsRefusal } from "../error.js"
import type { ClientConfig } from "./client.js"
import type { Health } from "./health.js"
import type { Method } from "./proto.js"

/** What a request needs of its client. */
export interface Requester {
  readonly config: ClientConfig
  readonly health: Health
  /** A unary call on `host` with a deadline of `ms`, unless the client is closed. */
  readonly call: <Req, Res>(
    host: string,
    method: Method<Req, Res>,
    request: Req,
    meta: grpc.Metadata,
    ms: number,
    operation: string
  ) => Effect.Effect<Res, grpc.ServiceError | EtcdError>
  readonly isClosed: () => boolean
  readonly closedError: (operation: string) => EtcdError
  readonly toError: (cause: unknown, operation: string) => EtcdError
  /** Forgets the auth token: the next request authenticates again. */
  readonly resetToken: Effect.Effect<void>
  /** A request still unanswered this long is also sent to the next member (ms). */
  readonly hedgeAfter: number
}

/** How one round of a request ended. */
type RoundOutcome<Res> =
  | { readonly _tag: "Answered"; readonly response: Res }
  | { readonly _tag: "Refused"; readonly error: EtcdError }
  | {
      readonly _tag: "AllFailed"
      readonly last: unknown
      /** Some member answered with etcd's own error, or did not answer in time: another round may work. */
      readonly electing: boolean
      /** Some member no longer took the auth token. */
      readonly staleToken: boolean
    }

const noAnswer = (operation: string, millis: number, last: unknown, toError: Requester["toError"]): EtcdError =>
  new EtcdError({
    reason: "Unavailable",
    operation,
    cause: last,
    detail: `no answer within ${Duration.format(Duration.millis(millis))}${
      last === undefined ? "" : ` (last error: ${toError(last, operation).detail})`
    }`
  })

/**
 * One round of a request over `hosts` (in order): the first member is
 * asked at once, the next one when an attempt fails or after
 * `hedgeAfter` without an answer (a hung member, or a follower whose
 * proposal went to a hung leader, must not hold the request for a whole
 * member timeout), the earlier attempts still running. The first answer
 * wins and the other attempts are cancelled. No attempt runs past
 * `deadline`.
 */
const round = <Req, Res>(
  client: Requester,
  operation: string,
  method: Method<Req, Res>,
  request: Req,
  meta: grpc.Metadata,
  hosts: ReadonlyArray<string>,
  attemptMs: number,
  deadline: number
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { config, health, call, toError, hedgeAfter } = client
      const outcome = yield* Deferred.make<RoundOutcome<Res>>()
      const progress = { launched: 0, failed: 0, last: undefined as unknown, electing: false, staleToken: false }
      /** Attempts not finished yet: host -> when it was asked. */
      const pending = new Map<string, number>()
      const allFailed = Effect.suspend(() =>
        Deferred.succeed(outcome, { _tag: "AllFailed", last: progress.last, electing: progress.electing, staleToken: progress.staleToken })
      )
      const launch: Effect.Effect<void, never, Scope.Scope> = Effect.gen(function* () {
        if (progress.launched >= hosts.length) return
        const host = hosts[progress.launched++]!
        const now = yield* Clock.currentTimeMillis
        const ms = Math.min(attemptMs, deadline - now)
        if (ms <= 0) {
          if (++progress.failed >= hosts.length) yield* allFailed
          return
        }
        pending.set(host, now)
        const attempt = call(host, method, request, meta, ms, operation).pipe(
          Effect.ensuring(Effect.sync(() => pending.delete(host))),
          Effect.matchEffect({
            onSuccess: (response) =>
              Effect.andThen(health.succeeded(host, response), Deferred.succeed(outcome, { _tag: "Answered", response })),
            onFailure: (error): Effect.Effect<unknown, never, Scope.Scope> => {
              if (error instanceof EtcdError) return Deferred.succeed(outcome, { _tag: "Refused", error })
              const staleToken = isStaleToken(error) && config.auth !== undefined
              // A certificate one member presents may be wrong while the others' are fine.
              const tls = tlsRefusal(messageOf(error)) !== undefined
              if (!staleToken && !tls && !isMemberFault(error)) {
                return Deferred.succeed(outcome, { _tag: "Refused", error: toError(error, operation) })
              }
              progress.last = error
              // etcd's own word (an election, a timed-out proposal) or no
              // answer in time (a proposal forwarded to a hung leader): asking again may work.
              progress.electing ||= /etcdserver:/.test(error.message) || error.code === GrpcStatus.DEADLINE_EXCEEDED
              progress.staleToken ||= staleToken
              return Effect.gen(function* () {
                if (!staleToken) {
                  yield* health.failed(host)
                  if (hosts.length > 1) {
                    yield* Effect.logDebug(`etcd ${operation}: ${host} failed (${toError(error, operation).detail}); trying the next member`)
                  }
                }
                if (++progress.failed < hosts.length) return yield* launch
                yield* allFailed
              })
            }
          })
        )
        yield* Effect.forkScoped(attempt)
      })
      yield* launch
      if (hosts.length > 1) {
        yield* Effect.forkScoped(
          Effect.sleep(Duration.millis(hedgeAfter)).pipe(Effect.andThen(launch), Effect.repeat({ times: hosts.length - 2 }))
        )
      }
      const result = yield* Deferred.await(outcome)
      if (result._tag === "Answered") {
        // Another member answered first: one that had not answered
        // within hedgeAfter is suspect (probed before it is used again).
        const now = yield* Clock.currentTimeMillis
        for (const [host, askedAt] of pending) {
          if (now - askedAt < hedgeAfter) continue
          yield* health.failed(host)
          yield* Effect.logDebug(`etcd ${operation}: ${host} did not answer within ${now - askedAt} ms while another member did`)
        }
      }
      return result
    })
  )

/**
 * Sends one request to the members in rounds (see {@link round}) until
 * one answers, etcd refuses it, or the call timeout is over. `metadata`
 * gives each round's metadata (the auth token, authenticating if need be).
 */
export const failover = <Req, Res>(
  client: Requester,
  operation: string,
  method: Method<Req, Res>,
  request: Req,
  metadata: Effect.Effect<grpc.Metadata, EtcdError>
) =>
  Effect.gen(function* () {
    const { config, toError } = client
    const start = yield* Clock.currentTimeMillis
    const deadline = start + config.callTimeout
    const timedOut = (last: unknown) => Effect.fail(noAnswer(operation, config.callTimeout, last, toError))
    let last: unknown = undefined
    let reauthenticated = false
    for (let n = 0; ; n++) {
      if (client.isClosed()) return yield* client.closedError(operation)
      const remaining = deadline - (yield* Clock.currentTimeMillis)
      if (remaining <= 0) return yield* timedOut(last)
      // The token (authenticating if need be) within the same deadline.
      const meta = yield* metadata.pipe(Effect.timeoutOrElse({ duration: Duration.millis(remaining), orElse: () => timedOut(last) }))
      const hosts = yield* client.health.ordered
      // A lone member gets the whole deadline; otherwise the member
      // timeout (doubled each round, for a slow cluster).
      const attemptMs = hosts.length === 1 ? remaining : config.memberTimeout * 2 ** Math.min(n, 8)
      const outcome = yield* round(client, operation, method, request, meta, hosts, attemptMs, deadline)
      if (outcome._tag === "Answered") return outcome.response
      if (outcome._tag === "Refused") return yield* outcome.error
      last = outcome.last
      if (outcome.staleToken && !reauthenticated) {
        // etcd no longer takes the token: authenticate again, at once.
        reauthenticated = true
        yield* client.resetToken
        continue
      }
      // Unreachable members fail fast (the caller has its own retry
      // schedule); during an election, or when members were only too slow,
      // wait a little and ask again (with a longer member timeout).
      if (!outcome.electing) return yield* toError(last, operation)
      const left = deadline - (yield* Clock.currentTimeMillis)
      if (left <= 0) return yield* timedOut(last)
      yield* Effect.sleep(Duration.millis(Math.min(left, 50 * 2 ** Math.min(n, 4))))
    }
  })
